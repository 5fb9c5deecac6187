"""HTTP for the client: keep-alive connections, retries with backoff, and errors mapped
back to the CairnError types the server raised.

Built on the standard library's ``http.client``: a Cairn call is one small request on a
loopback or LAN connection, where a general-purpose client's own overhead was most of
the cost (measured here: httpx 0.9 ms of client CPU per request, urllib3 0.4 ms,
``http.client`` 0.2 ms). It also lets big bodies go out with ``sendfile`` and come in
with ``readinto`` straight into the caller's buffers.

Proxies come from the environment (:mod:`cairn.client._proxies`): plain HTTP is sent
to the proxy with absolute URLs, HTTPS goes through a ``CONNECT`` tunnel.
"""

from __future__ import annotations

import errno
import http.client
import json as _json
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from cairn.client._proxies import Proxy, ascii_host, bracketed, proxy_for
from cairn.core.api import API_PREFIX
from cairn.core.errors import (
    CairnError,
    InvalidArgument,
    SchemaOutOfDate,
    StoreUnavailable,
    error_from_wire,
)

__all__ = [
    "NETWORK_ERRORS",
    "BodyWriter",
    "Response",
    "Transient",
    "Transport",
    "decode_error",
]

T = TypeVar("T")

# Worth another try: the server may be restarting, or a proxy dropped us.
RETRY_STATUS: Final = frozenset({502, 503, 504})
# A connection that broke, timed out or never opened. Every Cairn request is safe to
# repeat (idempotent by design or by idempotency key), so all of these are retried.
NETWORK_ERRORS: Final = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    http.client.HTTPException,
    ssl.SSLError,  # a TLS connection torn mid-record; certificate failures are not retried
)
_USER_AGENT: Final = "cairn-client"
_TUNNEL_REFUSED: Final = re.compile(r"Tunnel connection failed: (\d{3})")
_UNREACHABLE: Final = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH})
_MAX_IDLE: Final = 8  # idle keep-alive connections kept per client

# Writes a request body of the announced content-length to the socket.
BodyWriter = Callable[[socket.socket], None]


@dataclass(frozen=True, slots=True)
class Response:
    """A response read whole (every Cairn answer but an object's bytes is small)."""

    status: int
    headers: http.client.HTTPMessage
    content: bytes
    url: str

    def json(self) -> Any:
        return _json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Transient(Exception):
    """A 502/503/504 answer: worth retrying; carries the error it decoded to."""

    def __init__(self, error: CairnError) -> None:
        super().__init__(str(error))
        self.error = error


class _Connection(http.client.HTTPConnection):
    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        # A small body goes out in the same segment as the head: one send, and the
        # server sees the whole request in one read (http.client sends them apart).
        # (``_buffer`` holds the head's lines in every CPython we support; without it,
        # the two sends of the standard library.)
        head: list[bytes] | None = getattr(self, "_buffer", None)
        if isinstance(message_body, bytes) and len(message_body) <= 64 * 1024 and head is not None:
            head.extend((b"", message_body))
            message = b"\r\n".join(head)
            del head[:]
            self.send(message)
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _TLSConnection(http.client.HTTPSConnection, _Connection):
    pass


class Transport:
    """Requests to one Cairn server, on a small pool of keep-alive connections (one
    per thread at a time, so the metric batcher and the caller never share one)."""

    def __init__(self, base_url: str, *, timeout: float, retry_timeout: float) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument("url", f"must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry_timeout = retry_timeout
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path + API_PREFIX  # a server behind a proxy may live under a path
        self.proxy: Proxy | None = proxy_for(parts)
        # What a proxy is told the server is called (an IDN host in its ASCII form).
        self._proxied_host = ascii_host(self._host)
        if self.proxy is not None and not self._proxied_host.isascii():
            raise InvalidArgument("url", f"{self._host!r} is not a valid host name")
        # Plain HTTP through a proxy names the server in each request line.
        self._origin = ""
        if self.proxy is not None and not self._tls:
            port = f":{parts.port}" if parts.port else ""
            self._origin = f"http://{bracketed(self._proxied_host)}{port}"
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- one exchange -----------------------------------------------------------------------
    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The request target: API prefix, path, and the query (lists repeat the key)."""
        target = quote(self._prefix + path, safe="/:@!$&'()*+,;=-._~")
        query = _query(params)
        return f"{target}?{query}" if query else target

    @contextmanager
    def exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | BodyWriter | None = None,
        length: int | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Iterator[http.client.HTTPResponse]:
        """Send one request and yield its response, body unread. The connection goes
        back to the pool if the caller read the body to its end, else it is closed.
        A kept-alive connection the server has since closed is replaced at once."""
        target = self._origin + self.url(path, params)
        for fresh in (False, True):
            conn = self._take(fresh)
            sent = False
            try:
                if timeout is not None:
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                self._send(conn, method, target, body, length, headers or {})
                sent = True
                response = conn.getresponse()
            except ssl.SSLCertVerificationError as exc:
                conn.close()  # no retry will make the certificate trusted
                raise StoreUnavailable(
                    f"cannot trust the TLS certificate of {self.base_url}: {exc.verify_message}"
                    " (a certificate of your own CA: point SSL_CERT_FILE at the CA's file)",
                    url=self.base_url,
                ) from exc
            except NETWORK_ERRORS as exc:
                conn.close()
                # A reused connection may have been closed by the server while idle:
                # that is no failure of the server, so try once more on a new one.
                if fresh or not getattr(conn, "_cairn_reused", False) or not _is_stale(exc, sent):
                    raise
                continue
            except OSError as exc:
                conn.close()
                if exc.errno in _UNREACHABLE:  # no route (yet): retried like a refusal
                    raise ConnectionError(exc.errno, exc.strerror) from exc
                # http.client's own error when a proxy answers CONNECT with a refusal.
                refusal = _TUNNEL_REFUSED.match(str(exc)) if self.proxy is not None else None
                if refusal is None:
                    raise
                error = StoreUnavailable(
                    f"the proxy {self.proxy} would not open a tunnel to "
                    f"{self._host}:{self._port}: {exc}",
                    url=self.base_url,
                )
                error.__cause__ = exc
                if int(refusal.group(1)) in RETRY_STATUS:  # the server may be restarting
                    raise Transient(error) from exc
                raise error from exc
            except BaseException:
                conn.close()
                raise
            try:
                yield response
            except BaseException:
                conn.close()
                raise
            self._give(conn, response, timeout is not None)
            return

    def _send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | BodyWriter | None,
        length: int | None,
        headers: Mapping[str, str],
    ) -> None:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.putheader("user-agent", _USER_AGENT)
        if self._origin and self.proxy is not None and self.proxy.authorization:
            conn.putheader("proxy-authorization", self.proxy.authorization)
        for name, value in headers.items():
            conn.putheader(name, value)
        if isinstance(body, bytes):
            conn.putheader("content-length", str(len(body)))
            conn.endheaders(body)
        elif body is not None:
            if length is None:
                raise ValueError("a streamed body needs its length")
            conn.putheader("content-length", str(length))
            conn.endheaders()
            assert conn.sock is not None  # connected by endheaders
            body(conn.sock)
        else:
            if method in ("POST", "PUT", "PATCH"):
                conn.putheader("content-length", "0")
            conn.endheaders()

    def _take(self, fresh: bool) -> http.client.HTTPConnection:
        with self._lock:
            if self._closed:
                raise CairnError("this client is closed")
            if self._idle and not fresh:
                conn = self._idle.pop()
                conn._cairn_reused = True  # type: ignore[attr-defined]
                return conn
        kind = _TLSConnection if self._tls else _Connection
        if self.proxy is None:
            conn = kind(self._host, self._port, timeout=self.timeout)
        else:
            conn = kind(self.proxy.host, self.proxy.port, timeout=self.timeout)
            auth = (
                {"proxy-authorization": self.proxy.authorization}
                if self.proxy.authorization
                else {}
            )
            if self._tls:
                conn.set_tunnel(self._proxied_host, self._port, headers=auth)
        conn._cairn_reused = False  # type: ignore[attr-defined]
        return conn

    def _give(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, reset: bool
    ) -> None:
        if not response.isclosed() or response.will_close:
            conn.close()  # body left unread, or the server ends the connection
            return
        if reset:
            conn.timeout = self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(self.timeout)
        with self._lock:
            if not self._closed and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    # -- whole requests, with retries -------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send and read the answer, retrying (see :meth:`retrying`); a 4xx/5xx answer
        raises the CairnError the server reported."""
        if json is not None:
            # Python's JSON, NaN and infinities included (the server reads them back).
            content = _json.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {**(headers or {}), "content-type": "application/json"}

        def once() -> Response:
            with self.exchange(
                method, path, params=params, body=content, headers=headers, timeout=timeout
            ) as answer:
                response = self._read(answer, path)
            return check(response)  # outside: an error answer keeps its connection alive

        return self.retrying(once)

    def _read(self, answer: http.client.HTTPResponse, path: str) -> Response:
        return Response(answer.status, answer.headers, answer.read(), self.base_url + path)

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None) -> Any:
        response = self.request("POST", path, json=body)
        return None if response.status == 204 else response.json()

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt``, again after network failures and 502/503/504 answers, with
        jittered exponential backoff, until ``retry_timeout`` seconds have passed (plus
        at most one attempt's own timeout); then raise what went wrong."""
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.05
        while True:
            try:
                return attempt()
            except Transient as exc:
                failure: Exception = exc.error
            except NETWORK_ERRORS as exc:
                failure = exc
            left = deadline - time.monotonic()
            if left <= 0:
                if isinstance(failure, CairnError):
                    raise failure
                through = f" through the proxy {self.proxy}" if self.proxy else ""
                raise StoreUnavailable(
                    f"cannot reach the Cairn server at {self.base_url}{through}: "
                    f"{type(failure).__name__}: {failure}",
                    url=self.base_url,
                ) from failure
            # Jittered, so many clients retrying at once do not arrive in step.
            time.sleep(min(delay * (0.5 + random.random()), left))
            delay = min(delay * 2, 2.0)


def check(response: Response) -> Response:
    """The response if it succeeded; else the server's error (:class:`Transient` if
    worth retrying)."""
    if response.status < 400:
        return response
    error = decode_error(response)
    if response.status in RETRY_STATUS and not isinstance(error, SchemaOutOfDate):
        raise Transient(error)
    raise error


def decode_error(response: Response) -> CairnError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = error.get("details")
        return error_from_wire(
            error["code"],
            str(error.get("message", "")),
            details if isinstance(details, dict) else {},
        )
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


def _is_stale(exc: BaseException, sent: bool) -> bool:
    """Whether ``exc`` is how a connection the server closed while idle fails: at the
    send, or as an empty answer (never a timeout: that server is alive and slow)."""
    if isinstance(exc, TimeoutError):
        return False
    if not sent:
        return isinstance(exc, ConnectionError)
    return isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
