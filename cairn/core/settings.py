"""The one declared table of settings.

Each setting has a name, an environment variable (``CAIRN_*``), a type, a
default and a line of documentation. The table feeds the environment reader,
the CLI flags (later) and docs/settings.md (a test checks they agree). This
module is pure: the caller hands it the environment mapping.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cairn.core.errors import InvalidArgument

__all__ = [
    "CAPTURE_CHOICES",
    "CAPTURE_VARIABLES",
    "SETTINGS",
    "SQLITE_SYNCHRONOUS_CHOICES",
    "SYMLINKS_CHOICES",
    "Setting",
    "Settings",
    "settings_from",
]


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    secret: bool = False


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _optional_str(text: str) -> str | None:
    return text or None


def _optional_positive_int(text: str) -> int | None:
    return _positive_int(text) if text.strip() else None


# A host name or IPv4 address, a bracketed IPv6 address, or a wildcard of a domain.
_HOST_PATTERN = re.compile(r"\*|(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?|\[[0-9a-f:.]+\]")
_ORIGIN = re.compile(r"https?://([a-z0-9_.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


def _hosts(text: str) -> str:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    for name in names:
        if not _HOST_PATTERN.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a host name, an IP address ([::1] for IPv6), "
                "'*.domain' or '*' (no scheme, no port: any port is allowed)"
            )
    return ",".join(names)


def _origins(text: str) -> str:
    origins = [origin.strip().lower().rstrip("/") for origin in text.split(",") if origin.strip()]
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin: scheme://host[:port], e.g. "
                "https://notebooks.example.com (no path; '*' is not accepted)"
            )
    return ",".join(origins)


DIRECT_IO_CHOICES = ("auto", "on", "off")


def _direct_io(text: str) -> str:
    value = text.strip().lower()
    if value not in DIRECT_IO_CHOICES:
        raise ValueError(f"must be one of {', '.join(DIRECT_IO_CHOICES)}")
    return value


CAPTURE_CHOICES = ("all", "code", "environment", "none")
# Variables a captured Python environment keeps unless the setting says otherwise: what
# changes how training runs; never credentials (refused whatever is allowed).
CAPTURE_VARIABLES = (
    "CUDA_*,CUBLAS_*,CUDNN_*,NCCL_*,OMP_*,MKL_*,OPENBLAS_*,PYTHONHASHSEED,TORCH_*,TF_CPP_*,"
    "TF_FORCE_*,TF_ENABLE_*,TF_XLA_*,TF_GPU_*,XLA_*,JAX_*,HF_*,TOKENIZERS_PARALLELISM"
)


SQLITE_SYNCHRONOUS_CHOICES = ("normal", "full")

SYMLINKS_CHOICES = ("inside", "refuse", "follow")


def _symlinks(text: str) -> str:
    value = text.strip().lower()
    if value not in SYMLINKS_CHOICES:
        raise ValueError(f"must be one of {', '.join(SYMLINKS_CHOICES)}")
    return value


def _sqlite_synchronous(text: str) -> str:
    value = text.strip().lower()
    if value not in SQLITE_SYNCHRONOUS_CHOICES:
        raise ValueError(f"must be one of {', '.join(SQLITE_SYNCHRONOUS_CHOICES)}")
    return value


_ON = ("on", "true", "1", "yes")
_OFF = ("off", "false", "0", "no")


def _on_off(text: str) -> bool:
    value = text.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ValueError("must be on or off")


def _chunk_size(text: str) -> int:
    value = int(text)
    if value != 0 and not (16 << 10 <= value <= 4 << 20 and value & (value - 1) == 0):
        raise ValueError("must be 0 (off) or a power of two from 16384 (16 KiB) to 4194304 (4 MiB)")
    return value


def _capture(text: str) -> str:
    value = text.strip().lower()
    if value not in CAPTURE_CHOICES:
        raise ValueError(f"must be one of {', '.join(CAPTURE_CHOICES)}")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "home",
        "CAIRN_HOME",
        str,
        ".cairn",
        "Folder of the embedded store: `cairn.db` (SQLite) and `objects/`.",
    ),
    Setting(
        "store_uri",
        "CAIRN_STORE_URI",
        _optional_str,
        None,
        "SQLAlchemy URL of the metadata store, e.g. `postgresql+psycopg://user@host/db`. "
        "Unset: SQLite at `$CAIRN_HOME/cairn.db`.",
        secret=True,
    ),
    Setting(
        "objects_uri",
        "CAIRN_OBJECTS_URI",
        _optional_str,
        None,
        "Where objects (artifact bytes) live: a folder, or `s3://bucket/prefix` for an S3 "
        "bucket (AWS or any S3-compatible server; credentials from the standard AWS "
        "variables and files). Unset: `$CAIRN_HOME/objects`.",
    ),
    Setting(
        "direct_io",
        "CAIRN_DIRECT_IO",
        _direct_io,
        "auto",
        "Whether the object folder writes and reads objects over 8 MiB around the page "
        "cache (`O_DIRECT`): `on`, `off`, or `auto` (on in `cairn server`, off in the "
        "embedded client).",
    ),
    Setting(
        "s3_endpoint_url",
        "CAIRN_S3_ENDPOINT_URL",
        _optional_str,
        None,
        "Endpoint of an S3-compatible server for an `s3://` `objects_uri`, e.g. "
        "`http://127.0.0.1:9000` (MinIO, Swift, Ceph). Unset: AWS S3.",
    ),
    Setting(
        "s3_region",
        "CAIRN_S3_REGION",
        _optional_str,
        None,
        "Region of the `s3://` bucket. Unset: `AWS_REGION` / `AWS_DEFAULT_REGION` or the AWS "
        "profile's, else `us-east-1`.",
    ),
    Setting(
        "chunk_size",
        "CAIRN_CHUNK_SIZE",
        _chunk_size,
        256 * 1024,
        "Average chunk size, in bytes, of content-defined chunking: objects of at least "
        "`chunk_min_file` bytes are stored as chunks (between a quarter and four times this "
        "size) and a recipe listing them, so a changed big file stores only the chunks that "
        "changed. A power of two from 16 KiB to 4 MiB; `0`: every object stored whole.",
    ),
    Setting(
        "chunk_min_file",
        "CAIRN_CHUNK_MIN_FILE",
        _positive_int,
        4 * 1024 * 1024,
        "Objects smaller than this many bytes are stored whole, never chunked.",
    ),
    Setting(
        "max_attribute_bytes",
        "CAIRN_MAX_ATTRIBUTE_BYTES",
        _positive_int,
        1024 * 1024,
        "Largest attribute value, in bytes of its JSON encoding.",
    ),
    Setting(
        "flush_interval",
        "CAIRN_FLUSH_INTERVAL",
        _positive_float,
        0.5,
        "Seconds the background logger waits before writing a partial batch.",
    ),
    Setting(
        "batch_size",
        "CAIRN_BATCH_SIZE",
        _positive_int,
        50_000,
        "Metric points written per transaction by the background logger, at most.",
    ),
    Setting(
        "max_queue",
        "CAIRN_MAX_QUEUE",
        _positive_int,
        2_000_000,
        "Metric points the background logger holds before a log call waits for a write.",
    ),
    Setting(
        "heartbeat_interval",
        "CAIRN_HEARTBEAT_INTERVAL",
        _positive_float,
        30.0,
        "Seconds between the heartbeats a process sends for its running runs (a metric "
        "batch counts as one).",
    ),
    Setting(
        "heartbeat_timeout",
        "CAIRN_HEARTBEAT_TIMEOUT",
        _positive_float,
        180.0,
        "Seconds without a heartbeat after which a running run reads as `crashed` (its "
        "process died without ending it). Read by whoever reads the run: the server, or "
        "the embedded client.",
    ),
    Setting(
        "sigterm_timeout",
        "CAIRN_SIGTERM_TIMEOUT",
        _positive_float,
        5.0,
        "Seconds a process stopped by SIGTERM spends storing its queued metrics and "
        "ending its runs as `killed` before it ends as it would have.",
    ),
    Setting(
        "capture",
        "CAIRN_CAPTURE",
        _capture,
        "all",
        "What a new run records of its code and environment, off the training thread: "
        "`all`, `code` (the git work tree: remote, commit, branch, the uncommitted diff), "
        "`environment` (Python version, installed distributions, command line, allowed "
        "variables) or `none`.",
    ),
    Setting(
        "capture_variables",
        "CAIRN_CAPTURE_VARIABLES",
        str,
        CAPTURE_VARIABLES,
        "Comma-separated name patterns of the environment variables a run captures. "
        "Names that look like secrets (`*TOKEN*`, `*SECRET*`, `*PASS*`, `*KEY*`, ...) are "
        "never captured, and credentials in URLs are taken out of values.",
    ),
    Setting(
        "sqlite_busy_timeout",
        "CAIRN_SQLITE_BUSY_TIMEOUT",
        _positive_float,
        60.0,
        "Seconds an SQLite writer waits for another process's write lock.",
    ),
    Setting(
        "sqlite_synchronous",
        "CAIRN_SQLITE_SYNCHRONOUS",
        _sqlite_synchronous,
        "normal",
        "How hard the embedded SQLite store (WAL) syncs a commit: `normal` (an acknowledged "
        "write survives a crash of the process, not a power loss or kernel crash) or `full` "
        "(survives both; an fsync per commit).",
    ),
    Setting(
        "max_search_limit",
        "CAIRN_MAX_SEARCH_LIMIT",
        _positive_int,
        10_000,
        "Largest page a search or listing returns (`limit=`); a larger limit is refused, "
        "never cut short silently. Read by whoever runs the query: the server, or the "
        "embedded client.",
    ),
    Setting(
        "symlinks",
        "CAIRN_SYMLINKS",
        _symlinks,
        "inside",
        "What logging a folder as an artifact does with a symbolic link in it: `inside` "
        "(stores what a link points to if that stays inside the folder; a link that leaves "
        "it, or is broken, is refused with an error naming it), `refuse` (any link is "
        "refused) or `follow` (follows every link, as `cp -rL` does: only for folders whose "
        "links you trust). Special files (FIFOs, sockets, devices) are always refused.",
    ),
    Setting(
        "stat_cache",
        "CAIRN_STAT_CACHE",
        _optional_str,
        None,
        "SQLite file where logging a folder remembers each file's digest with its stat "
        "(device, inode, size, mtime, ctime), so that logging it again reads only files "
        "whose stat changed (or that were written less than 2 s before they were read); "
        "`off`: no cache, every file is read. Unset: `$XDG_CACHE_HOME/cairn/stat-cache.sqlite` "
        "(`~/.cache/cairn/stat-cache.sqlite`). Read by the client that logs.",
    ),
    Setting(
        "temp_grace",
        "CAIRN_TEMP_GRACE",
        _positive_float,
        3600.0,
        "Seconds after its last write that the server takes a temp file of an unfinished "
        "object write (an upload cut off, a server killed mid-upload) for abandoned: "
        "removed at start-up and by a sweep every few minutes.",
    ),
    Setting(
        "gc_grace",
        "CAIRN_GC_GRACE",
        _positive_float,
        86400.0,
        "Seconds an object must have gone unwritten before `cairn gc` may delete it "
        "unreferenced (a write stores its object before the row that references it), and "
        "the age of leftover temp files and multipart uploads it sweeps. `--grace` overrides.",
    ),
    Setting(
        "url",
        "CAIRN_URL",
        _optional_str,
        None,
        "URL of a Cairn server for `cairn.Client()` and the CLI, e.g. `http://127.0.0.1:5000`. "
        "Unset: the embedded store.",
    ),
    Setting(
        "request_timeout",
        "CAIRN_REQUEST_TIMEOUT",
        _positive_float,
        30.0,
        "Seconds the HTTP client waits for one request before retrying it.",
    ),
    Setting(
        "retry_timeout",
        "CAIRN_RETRY_TIMEOUT",
        _positive_float,
        120.0,
        "Seconds the HTTP client keeps retrying a failed request (with backoff) before "
        "the error surfaces.",
    ),
    Setting("host", "CAIRN_HOST", str, "127.0.0.1", "Address `cairn server` binds."),
    Setting("port", "CAIRN_PORT", _positive_int, 5000, "Port `cairn server` listens on."),
    Setting(
        "workers",
        "CAIRN_WORKERS",
        _positive_int,
        1,
        "Server processes `cairn server` runs against the same store.",
    ),
    Setting(
        "max_request_bytes",
        "CAIRN_MAX_REQUEST_BYTES",
        _positive_int,
        64 * 1024 * 1024,
        "Largest request body the server accepts, except artifact uploads (streamed).",
    ),
    Setting(
        "allowed_hosts",
        "CAIRN_ALLOWED_HOSTS",
        _hosts,
        "",
        "Comma-separated host names the server answers to besides the address it binds, "
        "`localhost`, `127.0.0.1` and `[::1]` (any port): the names clients reach it by, "
        "e.g. `cairn.example.com,10.0.0.5`; `*.example.com` takes a domain, `*` any name. "
        "A request for any other `Host` is refused (400): this stops DNS rebinding.",
    ),
    Setting(
        "cors_origins",
        "CAIRN_CORS_ORIGINS",
        _origins,
        "",
        "Comma-separated web origins (`https://host[:port]`) whose pages may call the API "
        "from a browser: they get CORS headers and may write. Unset: no CORS headers, and "
        "a write from any other web page is refused (403).",
    ),
    Setting(
        "max_upload_bytes",
        "CAIRN_MAX_UPLOAD_BYTES",
        _optional_positive_int,
        None,
        "Largest object the server stores, whether it arrives in one upload or as parts "
        "joined by `POST /objects/compose`; larger is refused (413) before a byte is "
        "written. Unset: no limit but the disk's.",
    ),
    Setting(
        "project_quota_bytes",
        "CAIRN_PROJECT_QUOTA_BYTES",
        _optional_positive_int,
        None,
        "Bytes of artifacts each project may hold (the sizes of its own, its experiments' "
        "and its runs' artifacts, deleted runs included); an artifact or upload that "
        "would pass it is refused (507 `quota_exceeded`). Read by whoever records the "
        "artifact: the server, or the embedded client. Unset: no quota.",
    ),
    Setting(
        "auth",
        "CAIRN_AUTH",
        _on_off,
        False,
        "Whether `cairn server` requires an API token (`Authorization: Bearer`) on every "
        "route but `/api/v1/health`: `on` or `off` (`cairn server --auth`). Off is refused "
        "on a non-loopback address unless `--insecure-no-auth` is given.",
    ),
    Setting(
        "auth_cache_ttl",
        "CAIRN_AUTH_CACHE_TTL",
        _positive_float,
        5.0,
        "Seconds a server process trusts a token it has checked, and a user's role in a "
        "project, without reading the database again: a revoked token, a disabled user or a "
        "revoked role is refused within this time (at once by the process that made the "
        "change; see [roles.md](roles.md)).",
    ),
    Setting(
        "login_token_lifetime",
        "CAIRN_LOGIN_TOKEN_LIFETIME",
        _positive_float,
        43_200.0,
        "Seconds a token made by a password login (`POST /api/v1/auth/login`, the web UI) "
        "stays valid.",
    ),
    Setting(
        "token",
        "CAIRN_TOKEN",
        _optional_str,
        None,
        "API token the HTTP client and the CLI send to the server. Unset: the credentials file's.",
        secret=True,
    ),
    Setting(
        "credentials_file",
        "CAIRN_CREDENTIALS_FILE",
        _optional_str,
        None,
        "File of API tokens the HTTP client reads when no token is given (refused if group "
        "or others may read it). Unset: `$XDG_CONFIG_HOME/cairn/credentials` "
        "(`~/.config/cairn/credentials`).",
    ),
    Setting(
        "ssl_certfile",
        "CAIRN_SSL_CERTFILE",
        _optional_str,
        None,
        "TLS certificate (PEM, with its chain) `cairn server` serves HTTPS with. Unset: "
        "plain HTTP.",
    ),
    Setting(
        "ssl_keyfile",
        "CAIRN_SSL_KEYFILE",
        _optional_str,
        None,
        "Private key (PEM) of `ssl_certfile`.",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    home: str = ".cairn"
    store_uri: str | None = None
    objects_uri: str | None = None
    direct_io: str = "auto"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    chunk_size: int = 256 * 1024
    chunk_min_file: int = 4 * 1024 * 1024
    max_attribute_bytes: int = 1024 * 1024
    flush_interval: float = 0.5
    batch_size: int = 50_000
    max_queue: int = 2_000_000
    heartbeat_interval: float = 30.0
    heartbeat_timeout: float = 180.0
    sigterm_timeout: float = 5.0
    capture: str = "all"
    capture_variables: str = CAPTURE_VARIABLES
    sqlite_busy_timeout: float = 60.0
    sqlite_synchronous: str = "normal"
    max_search_limit: int = 10_000
    symlinks: str = "inside"
    stat_cache: str | None = None
    temp_grace: float = 3600.0
    gc_grace: float = 86400.0
    url: str | None = None
    request_timeout: float = 30.0
    retry_timeout: float = 120.0
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    max_request_bytes: int = 64 * 1024 * 1024
    allowed_hosts: str = ""
    cors_origins: str = ""
    max_upload_bytes: int | None = None
    project_quota_bytes: int | None = None
    auth: bool = False
    auth_cache_ttl: float = 5.0
    login_token_lifetime: float = 43_200.0
    token: str | None = None
    credentials_file: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        # Secrets (a store URL may carry a password) never print.
        parts = []
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            shown = "'***'" if setting.secret and value is not None else repr(value)
            parts.append(f"{setting.name}={shown}")
        return f"Settings({', '.join(parts)})"


def settings_from(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings from an environment mapping; explicit overrides (not None) win."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is not None:
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as exc:
                raise InvalidArgument(setting.env, f"invalid value {raw!r}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
