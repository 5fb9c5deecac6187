"""HTTP for the client, on urllib3: a pool of keep-alive connections, retries with backoff
until a deadline, proxies, and errors mapped back to the CairnError types the server
raised.

Every Cairn request is safe to repeat (idempotent by design, or by idempotency key), so
every method is retried: after a connection that failed, broke or timed out, and after a
502, 503 or 504 answer, with jittered exponential backoff (or the wait a 503's
``Retry-After`` asks for: a server whose store is busy says when to come back), until
``retry_timeout`` seconds have passed (:class:`DeadlineRetry`). A TLS certificate that is
not trusted, an ``https://`` URL answered in plain HTTP, or a proxy that refuses a tunnel
for good (407, 403, ...), is reported at once.

Retries are not silent: once a server has failed for half a second, one warning goes to the
``cairn.client`` logger (one per outage: again only after a call got through or gave up), and
giving up is logged at error level with the message of the error raised.

Proxies come from the environment (:mod:`cairn.client._proxies`): plain HTTP is sent to
the proxy with absolute URLs, HTTPS goes through a ``CONNECT`` tunnel (urllib3's
``ProxyManager``).
"""

from __future__ import annotations

import json as _json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.client import RemoteDisconnected
from types import TracebackType
from typing import IO, Any, Final, Protocol, Self, TypeVar, cast
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry
from urllib3.util.ssl_match_hostname import CertificateError

from cairn.client._proxies import Proxy, ascii_host, bracketed, proxy_for
from cairn.core.api import API_PREFIX
from cairn.core.errors import (
    CairnError,
    InvalidArgument,
    SchemaOutOfDate,
    StoreUnavailable,
    error_from_wire,
)
from cairn.core.validation import check_entity_id

log = logging.getLogger("cairn.client")

__all__ = [
    "NETWORK_ERRORS",
    "Body",
    "DeadlineRetry",
    "Response",
    "StreamedBody",
    "Transport",
    "check",
    "decode_error",
    "path_id",
]

T = TypeVar("T")

# Worth another try: the server may be restarting, or a proxy dropped us.
RETRY_STATUS: Final = frozenset({502, 503, 504})
# A connection that broke or timed out while a response body was being read (urllib3
# retries everything before that itself).
NETWORK_ERRORS: Final = (HTTPError, ConnectionError, TimeoutError)
_USER_AGENT: Final = "cairn-client"
_TUNNEL_REFUSED: Final = re.compile(r"Tunnel connection failed: (\d{3})")
_POOL_SIZE: Final = 8  # keep-alive connections kept per client (one per thread in use)
_BLOCK: Final = 1 << 20  # a streamed request body is read and sent in pieces of this size
_FIRST_DELAY: Final = 0.05  # seconds of backoff before the second retry; doubles after
_MAX_DELAY: Final = 2.0
# Seconds a server may fail before the warning: a blip (a restart, a stale keep-alive
# connection) passes unmentioned; a down server is named well within 2 s.
_QUIET: Final = 0.5
# What OpenSSL says when the answer to its hello is not TLS, but (mostly) plain HTTP.
_PLAIN_HTTP_SIGNS: Final = ("wrong version number", "record layer failure", "http request")


@dataclass(frozen=True, slots=True)
class Response:
    """A response read whole (every Cairn answer but an object's bytes is small)."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    def json(self) -> Any:
        return _json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class StreamedBody(Protocol):
    """A request body read piece by piece as it is sent, and rewound to try again."""

    def read(self, size: int = -1, /) -> bytes: ...

    def tell(self) -> int: ...

    def seek(self, position: int, whence: int = 0, /) -> int: ...


Body = bytes | StreamedBody


class _Outage:
    """A server's run of failed tries, shared by the calls of one transport (threads
    included), so that it is announced once rather than at every try."""

    def __init__(self, server: str) -> None:
        self.server = server  # "cairn server at URL", and the proxy on the way
        self._lock = threading.Lock()
        self._since: float | None = None  # when the first call that failed began
        self._warned = False

    def failed(self, cause: str, tries: _Tries) -> None:
        with self._lock:
            if self._since is None:
                self._since = tries.started
            if self._warned or time.monotonic() - self._since < _QUIET:
                return
            self._warned = True
        log.warning(
            "%s unreachable (%s), retrying until %s", self.server, cause, _clock(tries.deadline)
        )

    def over(self) -> None:
        """A call got through, or gave up: the next failure starts a new outage."""
        if self._since is not None:  # read unlocked: the common case costs nothing
            with self._lock:
                self._since = None
                self._warned = False


@dataclass(slots=True)
class _Tries:
    """One call's tries: when it began, until when it may retry, and how the last failed."""

    outage: _Outage
    started: float
    deadline: float
    cause: str | None = None  # why the last try failed
    exhausted: bool = False  # urllib3 gave up at the deadline

    @property
    def spent(self) -> float:
        return time.monotonic() - self.started


class DeadlineRetry(Retry):
    """urllib3's retries with jittered exponential backoff, for as long as a deadline
    allows rather than a number of times, and never after an error that no retry can
    mend (see :func:`_worth_retrying`). Each failure is noted in the call's
    :class:`_Tries`, which warns of the outage once."""

    def __init__(self, *args: Any, tries: _Tries, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tries = tries

    @property
    def deadline(self) -> float:
        return self.tries.deadline

    @classmethod
    def until(cls, tries: _Tries) -> DeadlineRetry:
        return cls(
            total=None,  # counted by time: see is_exhausted
            redirect=0,
            allowed_methods=None,  # every Cairn request is safe to repeat
            status_forcelist=RETRY_STATUS,
            raise_on_status=False,  # the last answer is decoded into the server's error
            backoff_factor=_FIRST_DELAY / 2,
            backoff_max=_MAX_DELAY,
            backoff_jitter=_FIRST_DELAY,  # many clients retrying at once arrive apart
            # A server's 503 says when its store may take the request (Retry-After):
            # honoured, but never past the deadline (a proxy's "come back in an hour").
            respect_retry_after_header=True,
            tries=tries,
        )

    def new(self, **kw: Any) -> Self:
        kw.setdefault("tries", self.tries)
        return super().new(**kw)

    def is_exhausted(self) -> bool:
        # One retry is always allowed, at once: a kept-alive connection the server closed
        # while idle fails the first try, and must not count against the deadline.
        past = time.monotonic() >= self.deadline and len(self.history) > 1
        return super().is_exhausted() or past

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        """The wait a 503 asks for (Retry-After, in seconds or as a date), cut to the time
        left before the deadline; None (the usual backoff) for a header that says nothing
        usable."""
        try:
            asked = super().get_retry_after(response)
        except HTTPError:  # not a number of seconds, nor a date
            return None
        if asked is None:
            return None
        return min(asked, max(0.0, self.deadline - time.monotonic()))

    def get_backoff_time(self) -> float:
        return min(super().get_backoff_time(), max(0.0, self.deadline - time.monotonic()))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if (error is not None and not _worth_retrying(error)) or (
            response is not None and _final(response)
        ):
            # As urllib3 gives up: an error is raised, an answer returned as it is.
            raise MaxRetryError(_pool, url, error)  # type: ignore[arg-type]  # as urllib3 does
        tries = self.tries
        tries.cause = f"HTTP {response.status}" if response is not None else _cause(error)
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError:
            tries.exhausted = True
            raise
        tries.outage.failed(tries.cause, tries)
        return retry


def _worth_retrying(error: Exception) -> bool:
    """Whether another try may succeed: not after an untrusted certificate or a plain-HTTP
    answer to TLS, nor after a proxy's refusal to open a tunnel that is not a 502, 503 or
    504."""
    if _untrusted(error) is not None or _plain_http(error) is not None:
        return False
    refusal = _tunnel_refusal(error)
    return refusal is None or refusal in RETRY_STATUS


def _final(response: urllib3.BaseHTTPResponse) -> bool:
    """A 503 that says no retry will mend it: the server's store needs a migration."""
    if response.status != 503:
        return False
    answer = Response(response.status, response.headers, response.data, "")
    return isinstance(decode_error(answer), SchemaOutOfDate)


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps (urllib3 wraps errors in its own, in several ways)."""
    found: list[BaseException] = []
    pending: list[BaseException] = [error]
    while pending and len(found) < 16:
        one = pending.pop()
        if one in found:
            continue
        found.append(one)
        inner = [getattr(one, "reason", None), getattr(one, "original_error", None)]
        inner += [one.__cause__, one.__context__, *one.args]
        pending += [e for e in inner if isinstance(e, BaseException)]
    return found


def _untrusted(error: BaseException) -> BaseException | None:
    """A certificate that failed verification, ours or (asked for one) the server's view
    of ours: no retry will change it."""
    for one in _causes(error):
        if isinstance(one, ssl.SSLCertVerificationError | CertificateError):
            return one
        if isinstance(one, ssl.SSLError) and "CERTIFICATE" in (one.reason or ""):
            return one
    return None


def _plain_http(error: BaseException) -> ssl.SSLError | None:
    """The TLS handshake's failure when the server answered in plain HTTP."""
    for one in _causes(error):
        if isinstance(one, ssl.SSLError) and any(s in str(one).lower() for s in _PLAIN_HTTP_SIGNS):
            return one
    return None


def _tls_reason(error: BaseException) -> str:
    """OpenSSL's reason in words (``WRONG_VERSION_NUMBER``: "wrong version number")."""
    reason = getattr(error, "reason", None)
    return reason.replace("_", " ").lower() if isinstance(reason, str) else str(error)


def _cause(error: BaseException | None) -> str:
    """Why a try failed, in a few words: "connection refused", "no answer in time", ..."""
    if error is None:
        return "no answer"
    causes = _causes(error)

    def found(kind: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
        return next((one for one in causes if isinstance(one, kind)), None)

    if found(ReadTimeoutError):
        return "no answer in time"
    tls = found(ssl.SSLError)
    if tls is not None:
        return f"TLS error: {_tls_reason(tls)}"
    if found(RemoteDisconnected):
        return "connection closed by the server"
    system = next((one for one in causes if isinstance(one, OSError) and one.strerror), None)
    if system is not None:  # refused, reset by peer, no route to host, name not known, ...
        return str(system.strerror).lower()
    if found(ConnectTimeoutError) and not found(NewConnectionError):
        return "connection timed out"
    if found((TimeoutError, Urllib3Timeout)):
        return "timed out"
    if found(ProtocolError):
        return "connection broken"
    return type(causes[-1]).__name__


def _clock(deadline: float) -> str:
    """A monotonic deadline as the local wall-clock time, HH:MM:SS."""
    return time.strftime("%H:%M:%S", time.localtime(time.time() + deadline - time.monotonic()))


def _tunnel_refusal(error: BaseException) -> int | None:
    """The status with which a proxy refused to open a tunnel, if that is the error."""
    for one in _causes(error):
        match = _TUNNEL_REFUSED.search(str(one)) if isinstance(one, OSError) else None
        if match is not None:
            return int(match.group(1))
    return None


class Transport:
    """Requests to one Cairn server through urllib3's pool of keep-alive connections."""

    def __init__(
        self, base_url: str, *, timeout: float, retry_timeout: float, token: str | None = None
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument("url", f"must be an http:// or https:// URL, got {base_url!r}")
        if parts.username is not None or parts.password is not None:
            # Never sent (a server authenticates no one yet), and they would show in every
            # error message: refused, without repeating them.
            raise InvalidArgument(
                "url", f"must not hold credentials: {parts.scheme}://{parts.hostname}..."
            )
        self.base_url = base_url.rstrip("/")
        # Sent with every request; never part of a URL, a message or a log line.
        if token is not None and (not token.isascii() or not token.isprintable() or " " in token):
            # http.client would refuse it later with the header's value in its message.
            raise InvalidArgument("token", "must be printable ASCII without spaces (not shown)")
        self._authorization = None if token is None else f"Bearer {token}"
        self.timeout = timeout
        self.retry_timeout = retry_timeout
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self.proxy: Proxy | None = proxy_for(parts)
        # The server as named in requests (an international host name in its ASCII form),
        # and the path it may live under behind a reverse proxy.
        host = ascii_host(self._host)
        if self.proxy is not None and not host.isascii():
            raise InvalidArgument("url", f"{self._host!r} is not a valid host name")
        port = f":{parts.port}" if parts.port else ""
        self._origin = f"{parts.scheme}://{bracketed(host)}{port}"
        self._prefix = parts.path + API_PREFIX
        options: dict[str, Any] = {
            "num_pools": 1,
            "maxsize": _POOL_SIZE,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "blocksize": _BLOCK,
        }
        self._manager: urllib3.PoolManager
        if self.proxy is None:
            self._manager = urllib3.PoolManager(**options)
        else:
            auth = self.proxy.authorization
            self._manager = urllib3.ProxyManager(
                f"http://{bracketed(self.proxy.host)}:{self.proxy.port}",
                proxy_headers={"proxy-authorization": auth} if auth else None,
                **options,
            )
        # The one pool of connections: to the server (or through the proxy's tunnel to it),
        # asked directly; or to the proxy, for plain HTTP, which goes by the manager (it
        # writes absolute URLs).
        self._pool = self._manager.connection_from_url(self._origin)
        self._direct = self.proxy is None or parts.scheme == "https"
        self._outage = _Outage(f"cairn server at {self.base_url}{self._through}")

    @property
    def _through(self) -> str:
        return f" through the proxy {self.proxy}" if self.proxy else ""

    def close(self) -> None:
        # urllib3 2 closes a manager's pools only when they are collected: closed here,
        # the server sees its connections end now.
        self._pool.close()
        self._manager.clear()

    # -- one exchange, retried by urllib3 -----------------------------------------------------
    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The absolute URL of an API path, with the query (lists repeat the key)."""
        return self._origin + self._target(path, params)

    def _target(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        target = quote(self._prefix + path, safe="/:@!$&'()*+,;=-._~")
        query = _query(params)
        return f"{target}?{query}" if query else target

    def open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Body | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        preload: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request and return its response (body read unless ``preload`` is
        False: then read it to the end and ``release_conn()``, or ``close()`` it).
        Connection failures and 502/503/504 answers are retried until ``retry_timeout``
        seconds have passed (the last such answer then raises the error it holds); a
        file-like body is rewound for each try."""
        # Every header in its usual capitals: urllib3's proxy manager adds its own Accept
        # and Host, which ours must replace rather than join.
        sent = {"User-Agent": _USER_AGENT}
        if self._authorization is not None:
            sent["Authorization"] = self._authorization
        sent.update((name.title(), value) for name, value in (headers or {}).items())
        if method in ("POST", "PUT", "PATCH"):
            if body is None:
                body = b""  # an explicit empty body: content-length 0
            # The server refuses a write without a type no web page can send unasked
            # (docs/rest-api.md): a bodiless POST (restore, resume) says JSON too.
            sent.setdefault("Content-Type", "application/json")
        now = time.monotonic()
        tries = _Tries(self._outage, now, now + self.retry_timeout)
        options: dict[str, Any] = {
            "body": cast("bytes | IO[bytes] | None", body),
            "headers": sent,
            "retries": DeadlineRetry.until(tries),
            "redirect": False,
            "preload_content": preload,
            "decode_content": False,
        }
        if timeout is not None:
            options["timeout"] = urllib3.Timeout(timeout)
        try:
            if self._direct:
                answer = self._pool.urlopen(method, self._target(path, params), **options)
            else:
                answer = self._manager.urlopen(method, self.url(path, params), **options)
        except MaxRetryError as exc:
            error = self.unreachable(exc.reason or exc, tries.spent if tries.exhausted else None)
            raise self._gave_up(error) if tries.exhausted else error from exc
        except HTTPError as exc:  # not retried at all (e.g. a body that cannot be rewound)
            raise self.unreachable(exc) from exc
        if tries.exhausted:  # the last 502/503/504, after retrying until the deadline
            answered = Response(answer.status, answer.headers, answer.data, self.url(path))
            answer.release_conn()
            error = decode_error(answered)
            raise self._gave_up(
                error_from_wire(
                    error.code,
                    f"{error.message} (retried for {tries.spent:.1f} s)",
                    error.details,
                )
            )
        self._outage.over()
        return answer

    def _gave_up(self, error: CairnError) -> CairnError:
        """Retries ended at the deadline: said at error level (a background call's error
        is raised later, elsewhere), and the next failure is a new outage."""
        log.error("%s", error.message)
        self._outage.over()
        return error

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Body | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send and read the whole answer; a 4xx/5xx answer raises the CairnError the
        server reported."""
        if json is not None:
            # Python's JSON, NaN and infinities included (the server reads them back).
            content = _json.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {**(headers or {}), "content-type": "application/json"}
        answer = self.open(
            method, path, params=params, body=content, headers=headers, timeout=timeout
        )
        return check(Response(answer.status, answer.headers, answer.data, self.url(path)))

    def get(self, path: str, /, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None) -> Any:
        response = self.request("POST", path, json=body)
        return None if response.status == 204 else response.json()

    # -- whole transfers, retried here ----------------------------------------------------------
    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again while it fails with a connection that broke mid-body (what
        urllib3 cannot retry: a response it has handed over), with the same backoff,
        until ``retry_timeout`` seconds have passed; then raise what went wrong."""
        started = time.monotonic()
        deadline = started + self.retry_timeout
        delay = _FIRST_DELAY
        while True:
            try:
                return attempt()
            except NETWORK_ERRORS as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    spent = time.monotonic() - started
                    raise self._gave_up(self.unreachable(exc, spent)) from exc
            time.sleep(min(delay, left))
            delay = min(delay * 2, _MAX_DELAY)

    def unreachable(self, error: BaseException, spent: float | None = None) -> CairnError:
        """The error that tells why the server could not be reached (or trusted), and for
        how long it was tried (``spent`` seconds, if it was retried)."""
        plain = _plain_http(error)
        if plain is not None:
            return StoreUnavailable(
                f"{self.base_url} answered in plain HTTP: use http:// "
                f"(TLS handshake failed: {_tls_reason(plain)})",
                url=self.base_url,
            )
        untrusted = _untrusted(error)
        if isinstance(untrusted, ssl.SSLCertVerificationError):
            return StoreUnavailable(
                f"cannot trust the TLS certificate of {self.base_url}: "
                f"{untrusted.verify_message} (a certificate of your own CA: point "
                "SSL_CERT_FILE at the CA's file)",
                url=self.base_url,
            )
        if untrusted is not None:
            return StoreUnavailable(
                f"the TLS handshake with {self.base_url} failed: {_tls_reason(untrusted)} "
                "(not retried: it would fail again)",
                url=self.base_url,
            )
        refusal = _tunnel_refusal(error)
        if refusal is not None and self.proxy is not None:
            return StoreUnavailable(
                f"the proxy {self.proxy} would not open a tunnel to {self._host}:{self._port}: "
                f"Tunnel connection failed: {refusal}",
                url=self.base_url,
            )
        reason = error.original_error if isinstance(error, ProxyError) else error
        tried = f", retried for {spent:.1f} s" if spent is not None else ""
        return StoreUnavailable(
            f"cannot reach the Cairn server at {self.base_url}{self._through}: "
            f"{_cause(error)}{tried} ({type(reason).__name__}: {reason})",
            url=self.base_url,
        )


def path_id(value: str, field: str) -> str:
    """An id that goes into a URL path: checked, so it cannot change the path."""
    return check_entity_id(value, field)


def check(response: Response) -> Response:
    """The response if it succeeded; else the server's error."""
    if response.status < 400:
        return response
    raise decode_error(response)


def decode_error(response: Response) -> CairnError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = error.get("details")
        decoded = error_from_wire(
            error["code"],
            str(error.get("message", "")),
            details if isinstance(details, dict) else {},
        )
        return decoded
    if response.status == 407:  # only a proxy answers this
        return StoreUnavailable(
            f"HTTP 407 from the proxy on the way to {response.url}: it asks for credentials "
            "(give them in the proxy URL: http://user:password@host:port)",
            url=response.url,
        )
    return CairnError(
        f"HTTP {response.status} from {response.url}: {response.text[:200]}",
        status=response.status,
    )


def _query(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for one in value if isinstance(value, list | tuple) else (value,):
            pairs.append((key, _query_value(one)))
    return urlencode(pairs)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
