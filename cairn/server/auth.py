"""Authentication and the audit of writes, as ASGI middleware around the app's routes.

With authentication on (``cairn server --auth``, ``CAIRN_AUTH=on``), every request but
``GET /api/v1/health``, ``POST /api/v1/auth/login`` and the web UI's login page with its
static files must carry an API token: ``Authorization: Bearer <token>``, or the
``cairn_token`` cookie (HttpOnly, set by the login when asked: the web UI's pages). Without
one, or with one that is unknown, expired, revoked or whose user is disabled, the answer is
401 in the error shape with ``WWW-Authenticate: Bearer`` (a web page's GET: a redirect to
the login page, which comes back to it). A token checked within ``auth_cache_ttl`` seconds
is trusted without a database read (on the event loop: a hash and a dict lookup); otherwise
it is checked on a worker thread.

The request then runs as its principal (:func:`cairn.service.identity.acting_as`), which the
service's checks read; Starlette's thread pool and the fast path's executor carry it (a
context variable) to the threads store calls run on.

Every request that may write (any method but GET, HEAD, OPTIONS), and every 401, becomes
an audit event (who, method and path, the client's address, the status answered), auth on
or off.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse

from cairn.core.errors import StoreUnavailable, Unauthenticated
from cairn.server.errors import cairn_error_response
from cairn.service.audit import from_address
from cairn.service.identity import acting_as

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from cairn.core.identity import Principal
    from cairn.core.settings import Settings
    from cairn.service import TrackingService

__all__ = ["COOKIE", "Authenticate", "check_exposure", "is_loopback"]

COOKIE = "cairn_token"
LOGIN_PAGE = "/login"  # the web UI's (cairn.ui.pages.login); the server needs no UI import
STATIC_PREFIX = "/static/"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name to bind) reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, insecure_no_auth: bool) -> str | None:
    """Why the server must not start as set (None: it may): binding an address other
    machines can reach needs authentication, unless ``insecure_no_auth`` says otherwise."""
    if settings.auth or insecure_no_auth or is_loopback(settings.host):
        return None
    return (
        f"--host {settings.host} lets other machines reach the server, and authentication "
        "is off: anyone who can reach the port could read, change and delete everything. "
        "Turn it on with --auth (or CAIRN_AUTH=on) after making an admin "
        "(`cairn users create NAME --admin`, `cairn tokens create NAME --user NAME`), or, "
        "if the network itself is trusted, say so with --insecure-no-auth"
    )


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of ``Authorization: Bearer``, else of the ``cairn_token`` cookie."""
    cookie = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return ""  # another scheme, or none: refused as a token that is not ours
        if name == b"cookie" and cookie is None:
            cookie = cookie_parser(value.decode("latin-1")).get(COOKIE)
    return cookie or None


class Authenticate:
    def __init__(self, app: ASGIApp, *, required: bool, prefix: str) -> None:
        self.app = app
        self.required = required
        # Open to all: the health check, the login that makes a token, and what the web
        # UI's login page needs to show (the page itself, its styles and scripts).
        self.open_paths = frozenset({f"{prefix}/health", f"{prefix}/auth/login", LOGIN_PAGE})
        self.open_prefixes = (STATIC_PREFIX,)
        self.auth_paths = f"{prefix}/auth/"
        self.api = f"{prefix}/"

    def _open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(self.open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # None before the lifespan has opened the store (an app driven without one, as some
        # tests do): nothing to check a token against or audit to, and no route that
        # needs the store can answer either.
        service: TrackingService | None = getattr(scope["app"].state, "service", None)
        client = scope.get("client")
        remote = client[0] if client else ""
        principal: Principal | None = None
        if self.required and not self._open(scope["path"]):
            if service is None:  # fail closed
                unopened = StoreUnavailable("the store is not open yet: try again shortly")
                await cairn_error_response(unopened)(scope, receive, send)
                return
            secret = bearer_token(scope["headers"])
            try:
                principal = await _authenticate(service, secret)
            except Unauthenticated as exc:
                refusal = _refuse(service, scope, remote, exc, secret is not None)
                if scope["method"] in _READS and not scope["path"].startswith(self.api):
                    refusal = _to_login(scope)  # a web page: to the login, then back here
                await refusal(scope, receive, send)
                return
        if scope["method"] in _READS or scope["path"].startswith(self.auth_paths):
            # Reads are not audited; logins and logouts are, by the service, in its words.
            with acting_as(principal), from_address(remote):
                await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before answering

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with acting_as(principal), from_address(remote):
            try:
                await self.app(scope, receive, watch)
            finally:
                if service is not None:
                    service.auth.audit.record(
                        f"request.{scope['method'].lower()}", target=scope["path"], status=status
                    )


async def _authenticate(service: TrackingService, secret: str | None) -> Principal:
    if secret is None:
        raise Unauthenticated(
            "this server requires an API token: send Authorization: Bearer <token> (the "
            "client reads CAIRN_TOKEN or the credentials file; `cairn tokens create` makes "
            "one)",
            reason="missing",
        )
    principal = service.auth.trusted(secret)
    if principal is None:
        # A database read: on a worker thread, never on the event loop.
        loop = asyncio.get_running_loop()
        principal = await loop.run_in_executor(None, service.auth.authenticate, secret)
    return principal


def _to_login(scope: Scope) -> ASGIApp:
    """A redirect to the login page, which comes back to this page (same server only)."""
    target = scope["path"]
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return RedirectResponse(f"{LOGIN_PAGE}?{urlencode({'next': target})}", status_code=303)


def _refuse(
    service: TrackingService, scope: Scope, remote: str, exc: Unauthenticated, sent: bool
) -> ASGIApp:
    reason = str(exc.details.get("reason", ""))
    service.auth.audit.record(
        "auth.rejected",
        target=f"{scope['method']} {scope['path']}",
        actor="",
        remote=remote,
        status=401,
        detail={"reason": reason},
    )
    response = cairn_error_response(exc)
    if sent:  # RFC 6750: a token was given, and it is not good
        response.headers["www-authenticate"] = 'Bearer realm="cairn", error="invalid_token"'
    return response
