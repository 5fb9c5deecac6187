"""A client that retries says so: one warning per outage on the ``cairn.client`` logger,
an error that says for how long it tried, and no retrying at all where no retry can help
(an ``https://`` URL answered in plain HTTP). Real loopback sockets throughout."""

from __future__ import annotations

import contextlib
import http.server
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.client._transport import Transport
from cairn.core.errors import CairnError, StoreUnavailable
from cairn.core.settings import Settings
from tests.proxy import LoopbackServer, read_request
from tests.servers import serve_in_thread

WARNING = re.compile(
    r"cairn server at (\S+) unreachable \(([^)]+)\), retrying until \d\d:\d\d:\d\d"
)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name.startswith("cairn") and r.levelno == logging.WARNING
    ]


def errors_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("cairn") and r.levelno >= logging.ERROR]


def closed_port() -> tuple[socket.socket, int]:
    """A loopback port that refuses connections: bound (so no one else takes it), not
    listening."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    return sock, port


def test_a_down_server_is_announced_once_then_the_error_says_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sock, port = closed_port()
    url = f"http://127.0.0.1:{port}"
    with sock, cairn.Client(settings=Settings(url=url, retry_timeout=3)) as client:
        started = time.time()
        with pytest.raises(StoreUnavailable) as raised:
            client.list_projects()
        elapsed = time.time() - started
    warned = warnings_of(caplog)
    assert len(warned) == 1, [r.getMessage() for r in warned]
    match = WARNING.fullmatch(warned[0].getMessage())
    assert match is not None, warned[0].getMessage()
    assert match.groups() == (url, "connection refused")
    assert warned[0].name == "cairn.client"
    assert warned[0].created - started < 2.0  # soon after the first failure
    message = str(raised.value)
    assert message.startswith(f"cannot reach the Cairn server at {url}: connection refused")
    assert re.search(r"retried for 3\.\d s", message), message
    assert 3.0 <= elapsed < 7.0
    # Giving up is logged too, once, with the same words.
    assert [r.getMessage() for r in errors_of(caplog)] == [message]


class ComingBack:
    """A loopback port that refuses connections until :meth:`up`, and again after
    :meth:`down`; while up, every request is answered ``{}`` (connection: close)."""

    def __init__(self) -> None:
        self._sock, self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._serving: threading.Thread | None = None
        self._stop = threading.Event()

    def up(self) -> None:
        self._stop.clear()
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self._serving = threading.Thread(target=self._serve, args=(self._sock,), daemon=True)
        self._serving.start()

    def _serve(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                if read_request(conn) is not None:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: 2\r\nconnection: close\r\n\r\n{}"
                    )

    def down(self) -> None:
        """Stop listening; the port stays bound, refusing connections."""
        self._stop.set()
        if self._serving is not None:
            self._serving.join(5)
        self._sock.close()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))

    def close(self) -> None:
        self.down()
        self._sock.close()


@pytest.fixture
def coming_back() -> Iterator[ComingBack]:
    server = ComingBack()
    yield server
    server.close()


def wait_for_warnings(caplog: pytest.LogCaptureFixture, count: int, within: float) -> float:
    """Seconds until ``count`` warnings were logged (fails after ``within``)."""
    started = time.monotonic()
    while len(warnings_of(caplog)) < count:
        assert time.monotonic() - started < within, "no warning came"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_server_that_comes_back_gets_the_call_and_a_later_outage_warns_again(
    coming_back: ComingBack, caplog: pytest.LogCaptureFixture
) -> None:
    transport = Transport(coming_back.url, timeout=5, retry_timeout=20)
    answers: list[object] = []

    def call() -> None:
        answers.append(transport.request("GET", "/x").json())

    try:
        for outage in (1, 2):
            calling = threading.Thread(target=call)
            calling.start()
            assert wait_for_warnings(caplog, outage, within=2.5) < 2.5
            time.sleep(0.3)  # more failed tries: still one warning
            assert len(warnings_of(caplog)) == outage
            coming_back.up()
            calling.join(10)
            assert not calling.is_alive()
            assert answers == [{}] * outage  # the call got through
            # Back to normal: calls go through without a word.
            assert transport.request("GET", "/x").json() == {}
            coming_back.down()
    finally:
        transport.close()
    assert len(warnings_of(caplog)) == 2
    assert errors_of(caplog) == []


class Unavailable(LoopbackServer):
    """Answers every request 503, as a proxy does for a server that is down."""

    def __init__(self) -> None:
        super().__init__(threaded=True)

    def handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            read_request(conn)
            conn.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n"
                b"connection: close\r\n\r\ndown"
            )


def test_retried_503_answers_warn_once_and_the_last_one_says_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Unavailable()
    transport = Transport(server.url, timeout=5, retry_timeout=1.5)
    try:
        with pytest.raises(CairnError) as raised:
            transport.request("GET", "/x")
    finally:
        transport.close()
        server.close()
    assert raised.value.details["status"] == 503
    assert re.fullmatch(
        r"HTTP 503 from \S+/api/v1/x: down \(retried for 1\.\d s\)", str(raised.value)
    ), str(raised.value)
    warned = [r.getMessage() for r in warnings_of(caplog)]
    assert len(warned) == 1 and "unreachable (HTTP 503)" in warned[0], warned
    assert [r.getMessage() for r in errors_of(caplog)] == [str(raised.value)]


def test_https_to_a_plain_http_server_fails_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with serve_in_thread(Settings(home=str(tmp_path / "home"))) as url:
        https = url.replace("http://", "https://")
        with cairn.Client(settings=Settings(url=https, retry_timeout=30)) as client:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as raised:
                client.list_projects()
            elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert str(raised.value) == (
        f"{https} answered in plain HTTP: use http:// (TLS handshake failed: wrong version number)"
    )
    assert warnings_of(caplog) == [] and errors_of(caplog) == []


def test_https_to_python_http_server_fails_at_once() -> None:
    """The same from another plain-HTTP server (Python's own, which answers 400)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    https = f"https://127.0.0.1:{server.server_address[1]}"
    transport = Transport(https, timeout=5, retry_timeout=30)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"answered in plain HTTP: use http://"):
            transport.request("GET", "/health")
        assert time.monotonic() - started < 1.0
    finally:
        transport.close()
        server.shutdown()
        server.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
