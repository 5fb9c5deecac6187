"""What the server refuses before any route runs, with or without authentication.

A server on 127.0.0.1 is reachable from every web page its user opens: a page may send
requests to it (a form, a simple ``fetch``), and DNS rebinding makes ``attacker.example``
resolve to 127.0.0.1 so that the page may read the answers too. :class:`Perimeter` closes
both ways, in one pass over the request's headers:

* **Host**: the server answers only the names it is reached by (the address it binds,
  ``localhost``, ``127.0.0.1``, ``[::1]``, and ``CAIRN_ALLOWED_HOSTS``; any port). A
  rebound name is refused (400).
* **Cross-site writes**: a POST, PUT, PATCH or DELETE whose ``Origin`` is neither the
  server's own (the origin of its ``Host``) nor one of ``CAIRN_CORS_ORIGINS``, or that a
  browser marks ``Sec-Fetch-Site: cross-site`` / ``same-site`` without such an origin, is
  refused (403).
* **Content types**: under the API, a POST, PUT or PATCH must say it sends
  ``application/json``, ``application/octet-stream`` or the binary metric batch type. A
  browser sends those across sites only after a CORS preflight, which this server answers
  only for ``CAIRN_CORS_ORIGINS``: no HTML form and no simple ``fetch`` can write (400
  otherwise). A DELETE is never sent across sites without a preflight, so it needs none.

Starlette's ``TrustedHostMiddleware`` does the host part alone, answers in plain text, and
parses the header on every request; here the verdict on each ``Host`` value is kept (a
bounded table) and the other checks share the pass. CORS headers, when origins are
listed, are Starlette's ``CORSMiddleware`` (:func:`install_perimeter`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from cairn.core.columns import BATCH_MEDIA_TYPE
from cairn.core.settings import Settings
from cairn.server.errors import error_response

__all__ = [
    "DEFAULT_HOSTS",
    "WRITE_TYPES",
    "Perimeter",
    "allowed_hosts",
    "allowed_origins",
    "install_perimeter",
]

log = logging.getLogger("cairn.server")

DEFAULT_HOSTS: Final = ("localhost", "127.0.0.1", "::1")
# A bind to every address names no host a client would use: the names come from the setting.
_WILDCARD_BINDS: Final = frozenset({"", "0.0.0.0", "::"})
WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})
WRITE_TYPES: Final = ("application/json", "application/octet-stream", BATCH_MEDIA_TYPE)
_WRITE_TYPES: Final = frozenset(t.encode() for t in WRITE_TYPES)
_ACROSS: Final = frozenset({b"cross-site", b"same-site"})
_DEFAULT_PORTS: Final = {"http": ":80", "https": ":443"}
_VERDICTS: Final = 256  # Host values whose verdict is kept (a client sends one or two)


def allowed_hosts(settings: Settings) -> list[str]:
    """The host names (lower case, IPv6 without brackets) or ``*.domain`` patterns the
    server answers to; ``*`` answers to any."""
    names = list(DEFAULT_HOSTS)
    bound = _bare(settings.host.strip().lower())
    if bound not in _WILDCARD_BINDS:
        names.append(bound)
    names += [_bare(n.strip().lower()) for n in settings.allowed_hosts.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def allowed_origins(settings: Settings) -> list[str]:
    """The web origins (besides the server's own) whose pages may write."""
    return [o.strip().lower().rstrip("/") for o in settings.cors_origins.split(",") if o.strip()]


def install_perimeter(app: Starlette, settings: Settings, api_prefix: str) -> None:
    """Add the perimeter, and Starlette's CORS headers when origins are listed, as the
    app's outermost middleware: call it after every other ``add_middleware``. CORS
    answers preflights inside the perimeter (which checks their Host), before anything
    else (authentication) sees them. Tokens travel in ``Authorization``, never in
    cookies: no credentials mode."""
    origins = allowed_origins(settings)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key"],
            expose_headers=["x-cairn-digest", "retry-after", "content-length"],
        )
    app.add_middleware(
        Perimeter,
        hosts=allowed_hosts(settings),
        origins=origins,
        api_prefix=api_prefix,
        warning=_wildcard_warning(settings),
    )


def _wildcard_warning(settings: Settings) -> str | None:
    """What to say at start-up when the server binds every address but knows none of the
    machine's names: requests for them would be refused, which looks like a broken server."""
    if settings.host.strip() not in _WILDCARD_BINDS or settings.allowed_hosts.strip():
        return None
    return (
        f"listening on {settings.host or 'every address'}, but only requests for localhost, "
        "127.0.0.1 and [::1] are answered: set CAIRN_ALLOWED_HOSTS to the names clients "
        "use to reach this machine (e.g. CAIRN_ALLOWED_HOSTS=cairn-host,10.0.0.5)"
    )


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _host_name(value: str) -> str | None:
    """The name in a ``Host`` header (IPv6 without brackets), or None if it is malformed."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if rest and not (rest[0] == ":" and rest[1:].isdigit() and len(rest) <= 6):
        return None
    return name or None


class Perimeter:
    """ASGI middleware: the refusals described in the module's docstring, each in the one
    error shape. ``api_prefix``: the paths whose writes must carry a non-simple type."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: Iterable[str],
        origins: Iterable[str] = (),
        api_prefix: str = "/api/",
        warning: str | None = None,
    ) -> None:
        self.app = app
        self._warning = warning  # logged once the server starts (its logging is set up)
        names = [h.lower() for h in hosts]
        self._any_host = "*" in names
        self._exact = frozenset(n for n in names if not n.startswith("*"))
        self._domains = tuple(n[1:] for n in names if n.startswith("*."))  # ".example.com"
        self._origins = frozenset(o.encode() for o in origins)
        self._prefix = api_prefix
        self._verdicts: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self._warning:
                log.warning("%s", self._warning)
                self._warning = None
            await self.app(scope, receive, send)
            return
        host = origin = site = kind = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                site = value
            elif name == b"content-type":
                kind = value
        if host is None or not self._host_allowed(host):
            shown = "no Host header" if host is None else repr(host.decode("latin-1"))
            response = error_response(
                400,
                "invalid_argument",
                f"host: this server does not answer to {shown}; a name clients use to reach "
                "it must be listed in CAIRN_ALLOWED_HOSTS",
                {"field": "host"},
            )
            await response(scope, receive, send)
            return
        method = scope["method"]
        if method in WRITES:
            refusal = self._write_refusal(scope, method, host, origin, site, kind)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _host_allowed(self, value: bytes) -> bool:
        verdict = self._verdicts.get(value)
        if verdict is None:
            verdict = self._judge(value)
            if len(self._verdicts) < _VERDICTS:
                self._verdicts[value] = verdict
        return verdict

    def _judge(self, value: bytes) -> bool:
        name = _host_name(value.decode("latin-1").strip().lower())
        if name is None:
            return False
        if self._any_host or name in self._exact:
            return True
        return any(name.endswith(domain) and len(name) > len(domain) for domain in self._domains)

    def _write_refusal(
        self,
        scope: Scope,
        method: str,
        host: bytes,
        origin: bytes | None,
        site: bytes | None,
        kind: bytes | None,
    ) -> ASGIApp | None:
        trusted = origin is not None and (
            origin.lower() in self._origins or _same_origin(origin, host)
        )
        if (origin is not None or site in _ACROSS) and not trusted:
            field = "origin" if origin is not None else "sec-fetch-site"
            said = (origin if origin is not None else site or b"").decode("latin-1")
            return error_response(
                403,
                "permission_denied",
                f"{field}: a write from another site ({said!r}) is refused; a web origin "
                "that may write must be listed in CAIRN_CORS_ORIGINS",
                {"field": field},
            )
        if method in _WITH_BODY and scope["path"].startswith(self._prefix):
            media = None if kind is None else kind.split(b";", 1)[0].strip().lower()
            if media not in _WRITE_TYPES and _routed(scope):
                got = "no content-type header" if kind is None else repr(kind.decode("latin-1"))
                return error_response(
                    400,
                    "invalid_argument",
                    f"content-type: a {method} must send {', '.join(WRITE_TYPES)} "
                    f"(an empty body too), got {got}",
                    {"field": "content-type"},
                )
        return None


def _routed(scope: Scope) -> bool:
    """A route takes this method on this path (else the app's 404 or 405 says so). Asked
    only of a write already found wanting: a router's walk costs more than the checks."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", ())
    return any(not isinstance(r, Mount) and r.matches(scope)[0] is Match.FULL for r in routes)


def _same_origin(origin: bytes, host: bytes) -> bool:
    """``origin`` is the server's own: its host and port are the request's ``Host`` (the
    Host was allowed already), default ports aside."""
    scheme, sep, netloc = origin.decode("latin-1").strip().lower().partition("://")
    if not sep:
        return False  # "null" (a sandboxed page, a file), or malformed
    default = _DEFAULT_PORTS.get(scheme)
    if default is None:
        return False
    target = host.decode("latin-1").strip().lower()
    return netloc.removesuffix(default) == target.removesuffix(default)
