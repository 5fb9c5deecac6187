"""Network faults for real, on loopback: a TCP proxy in front of a server that drops,
cuts short or holds requests as a test's plan says, and records what went through."""

from __future__ import annotations

import abc
import base64
import contextlib
import enum
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST rather than a FIN: the connection is torn, not ended."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Action(enum.Enum):
    FORWARD = "forward"
    DROP_BEFORE = "drop before forwarding"  # the server never sees the request
    DROP_AFTER = "drop after forwarding"  # the server answered; the answer is lost
    CUT_SHORT = "cut the answer short"  # half the server's answer, then a reset
    STALL = "hold the answer"  # the server answered; the client times out waiting


@dataclass
class Seen:
    """One request as the proxy saw it."""

    method: str
    path: str
    headers: dict[str, str]
    action: Action
    status: int | None = None  # the server's answer, if it was asked

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")


# What to do with a request (the proxy asks in arrival order, one request at a time).
Plan = Callable[[Seen], Action]


def forward_all(_: Seen) -> Action:
    return Action.FORWARD


class LoopbackServer(abc.ABC):
    """A socket listening on 127.0.0.1 whose connections go to :meth:`handle`, each on a
    thread of its own (``threaded``) or one after the other on the accepting thread."""

    def __init__(self, *, threaded: bool) -> None:
        self._threaded = threaded
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @abc.abstractmethod
    def handle(self, conn: socket.socket) -> None:
        """Serve one accepted connection (and close it)."""

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            if self._threaded:
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
            else:
                self.handle(conn)


class DroppingProxy(LoopbackServer):
    """A TCP proxy on loopback in front of ``upstream``, one HTTP request a connection
    (it asks both sides for ``Connection: close``), doing to each request what
    ``plan`` says. Requests and answers pass whole through memory: for test sizes."""

    def __init__(self, upstream: tuple[str, int], plan: Plan = forward_all) -> None:
        self.upstream = upstream
        self.plan = plan
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        super().__init__(threaded=True)

    def count(self, action: Action | None = None, method: str = "", prefix: str = "") -> int:
        """Requests seen (with that action, method and path prefix under /api/v1)."""
        return sum(
            (action is None or s.action is action)
            and s.method.startswith(method)
            and s.path.removeprefix("/api/v1").startswith(prefix)
            for s in self.seen
        )

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            request = read_request(conn)
        except OSError:
            conn.close()
            return
        if request is None:
            conn.close()
            return
        head, body = request
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        named = {
            name.strip().lower(): value.strip()
            for name, _, value in (h.partition(":") for h in headers)
        }
        with self._lock:
            seen = Seen(method, path.split("?", 1)[0], named, Action.FORWARD)
            seen.action = self.plan(seen)
            self.seen.append(seen)
        action = seen.action
        if action is Action.DROP_BEFORE:
            conn.close()  # a FIN, nothing answered: "server disconnected"
            return
        kept = [h for h in headers if not h.lower().startswith("connection:")]
        forwarded = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        try:
            with socket.create_connection(self.upstream, timeout=10) as up:
                up.sendall(forwarded + body)
                response = read_to_eof(up)  # uvicorn closes after a Connection: close request
        except OSError:
            reset(conn)
            raise
        seen.status = int(response.split(b" ", 2)[1])
        if action is Action.DROP_AFTER:
            reset(conn)  # applied upstream, and the client never hears of it
            return
        if action is Action.CUT_SHORT:
            with contextlib.suppress(OSError):
                conn.sendall(response[: len(response) // 2])
            reset(conn)
            return
        if action is Action.STALL:  # until the client's read timeout gives up on us
            with conn, contextlib.suppress(OSError):
                conn.recv(1)  # b"": the client closed the connection
            return
        with conn:
            conn.sendall(response)


def read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
    """Head and body of one HTTP/1.1 request with a Content-Length (or none)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        assert name.strip().lower() != b"transfer-encoding", "chunked requests not handled"
    parts = [body]
    got = len(body)
    while got < length:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return head, b"".join(parts)


def read_to_eof(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(1 << 20):
        parts.append(chunk)
    return b"".join(parts)


class ForwardProxy(LoopbackServer):
    """An HTTP forward proxy on loopback, as a client's ``HTTP_PROXY`` names one: requests
    in absolute form (``GET http://host:port/path``) and ``CONNECT host:port`` tunnels.

    Only the proxy can resolve the host names in ``names`` (to loopback addresses), so a
    request that reaches such a server went through it. Plain requests go one per
    connection (``Connection: close`` both ways), so ``seen`` holds every request line and
    its headers (names in lower case); a tunnel is recorded by its ``CONNECT``. With
    ``credentials`` ("user:password") it answers 407 without the matching
    ``Proxy-Authorization``; ``refuse_tunnels`` makes it answer ``CONNECT`` with that
    status instead (502: the server is down). Bodies pass through memory: test sizes."""

    def __init__(
        self,
        names: dict[str, str],
        credentials: str | None = None,
        refuse_tunnels: int | None = None,
    ) -> None:
        self.names = names
        self.expected = (
            None
            if credentials is None
            else "Basic " + base64.b64encode(credentials.encode()).decode()
        )
        self.refuse_tunnels = refuse_tunnels
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(threaded=True)

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
        head, found, rest = data.partition(b"\r\n\r\n")
        if not found:
            conn.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        self.seen.append((method, target, headers))
        if self.expected is not None and headers.get("proxy-authorization") != self.expected:
            self._answer(conn, "407 Proxy Authentication Required", "proxy-authenticate: Basic")
            return
        if method == "CONNECT" and self.refuse_tunnels is not None:
            self._answer(conn, f"{self.refuse_tunnels} Refused")
            return
        authority = target if method == "CONNECT" else urlsplit(target).netloc
        host, _, port = authority.rpartition(":")
        if host not in self.names or not port.isdigit():
            self._answer(conn, "502 Bad Gateway")
            return
        try:
            upstream = socket.create_connection((self.names[host], int(port)), timeout=10)
        except OSError:
            self._answer(conn, "502 Bad Gateway")
            return
        with conn, upstream:
            if method == "CONNECT":
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.sendall(rest)
                conn.settimeout(None)
                upstream.settimeout(None)
                back = threading.Thread(target=_relay, args=(upstream, conn), daemon=True)
                back.start()
                _relay(conn, upstream)
                back.join(10)
                return
            body = [rest]
            missing = int(headers.get("content-length", "0")) - len(rest)
            while missing > 0 and (chunk := conn.recv(1 << 20)):
                body.append(chunk)
                missing -= len(chunk)
            kept = [line for line in lines[1:] if not line.lower().startswith("connection:")]
            forwarded = "\r\n".join([lines[0], *kept, "Connection: close", "", ""])
            # Sent on in absolute form: servers accept it (RFC 9112 3.2.2).
            upstream.sendall(forwarded.encode("latin-1") + b"".join(body))
            _relay(upstream, conn)  # the server closes after its answer

    @staticmethod
    def _answer(conn: socket.socket, status: str, *headers: str) -> None:
        lines = [f"HTTP/1.1 {status}", *headers, "content-length: 0", "connection: close"]
        with conn, contextlib.suppress(OSError):
            conn.sendall("\r\n".join([*lines, "", ""]).encode())


def _relay(src: socket.socket, dst: socket.socket) -> None:
    """Copy ``src`` to ``dst`` until ``src`` ends, then end ``dst``'s sending side."""
    with contextlib.suppress(OSError):
        while chunk := src.recv(1 << 20):
            dst.sendall(chunk)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
