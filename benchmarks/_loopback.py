"""The work of an artifact transfer over a bare loopback socket: no HTTP, no framework.

A baseline for section 5 of ``server.py``: the same bytes cross a TCP connection on
127.0.0.1 (sent with ``sendfile``, as the client sends a file), and the receiving end
hashes them (BLAKE3, as Cairn does) and writes them through the page cache, one step
after the other in one thread. An upload ends with ``fsync`` (the server stores
durably); a download does not (the client does not either). It is not all of Cairn's
work (the client also hashes what it uploads, on a second thread), and Cairn overlaps
the steps and writes big objects around the page cache: the ratio shows what the
machine allows for plain, unpipelined code, not what HTTP costs alone.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from cairn.core.digest import new_hasher

_BUFFER = 1 << 20
_TIMEOUT_S = 60.0


def upload_seconds(src: Path, folder: Path) -> float:
    """Send ``src`` to a receiver that hashes it and writes it durably into ``folder``."""
    out = folder / "loopback-up.bin"
    try:
        return _transfer(src, out, durable=True)
    finally:
        out.unlink(missing_ok=True)


def download_seconds(src: Path, dst: Path) -> float:
    """Send ``src`` (a stored object) to a receiver that hashes it into ``dst``."""
    try:
        return _transfer(src, dst, durable=False)
    finally:
        dst.unlink(missing_ok=True)


def _transfer(src: Path, dst: Path, *, durable: bool) -> float:
    size = src.stat().st_size
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(_TIMEOUT_S)  # a sender that failed to connect stops the wait
        sender = _Sender(src, size, listener.getsockname()[1])
        sender.start()
        conn, _ = listener.accept()
    with conn:
        conn.settimeout(_TIMEOUT_S)
        start = time.perf_counter()
        conn.sendall(b"g")  # the sender waits for this: connecting is not timed
        received = _receive(conn, dst, size, durable=durable)
        seconds = time.perf_counter() - start
    sender.join()
    if sender.error is not None:
        raise sender.error
    if received != size:
        raise RuntimeError(f"loopback baseline received {received} of {size} bytes")
    return seconds


def _receive(conn: socket.socket, dst: Path, size: int, *, durable: bool) -> int:
    buffer = memoryview(bytearray(_BUFFER))
    hasher = new_hasher()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    received = 0
    try:
        while received < size and (n := conn.recv_into(buffer)):
            hasher.update(buffer[:n])
            written = 0
            while written < n:
                written += os.write(fd, buffer[written:n])
            received += n
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    hasher.hexdigest()
    return received


class _Sender(threading.Thread):
    """Connects, waits for the go, then ``sendfile``s the whole file (the GIL is free
    while the kernel sends, so a thread does not slow the receiver)."""

    def __init__(self, src: Path, size: int, port: int) -> None:
        super().__init__(name="loopback-sender", daemon=True)
        self.src, self.size, self.port = src, size, port
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=_TIMEOUT_S) as sock,
                open(self.src, "rb") as file,
            ):
                sock.recv(1)
                # socket.sendfile waits for room itself (the socket has a timeout, so
                # it is non-blocking underneath); it uses os.sendfile, as the client does.
                if sock.sendfile(file, 0, self.size) != self.size:
                    raise RuntimeError(f"{self.src} shrank while it was being sent")
        except BaseException as exc:  # re-raised by the receiving thread
            self.error = exc
