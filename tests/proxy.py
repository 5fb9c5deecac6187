"""Network faults for real, on loopback: a TCP proxy in front of a server that drops,
cuts short or holds requests as a test's plan says, and records what went through."""

from __future__ import annotations

import abc
import contextlib
import enum
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self


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
