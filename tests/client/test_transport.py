"""The HTTP client's transport against a bare loopback server that does exactly what a
test needs: close kept-alive connections, answer errors, show what arrived."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.client._transport import Transport
from cairn.core.digest import digest_bytes
from cairn.core.errors import InvalidArgument, NotFound, StoreUnavailable
from cairn.core.settings import Settings
from tests.proxy import LoopbackServer, read_request
from tests.servers import serve_in_thread


class OneShotServer(LoopbackServer):
    """Answers one request per connection, announcing keep-alive, then closes it: what a
    server does when an idle keep-alive connection times out."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.requests: list[bytes] = []
        self.connections = 0
        super().__init__(threaded=False)

    def handle(self, conn: socket.socket) -> None:
        self.connections += 1
        with conn:
            conn.settimeout(5)
            request = read_request(conn)
            if request is None:
                return
            self.requests.append(request[0])
            reason = {200: "OK", 404: "Not Found"}.get(self.status, "Whatever")
            conn.sendall(
                f"HTTP/1.1 {self.status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(self.body)}\r\n\r\n".encode()
                + self.body
            )


@pytest.fixture
def server() -> Iterator[OneShotServer]:
    serving = OneShotServer()
    yield serving
    serving.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced_at_once(
    server: OneShotServer,
) -> None:
    # No retry time at all: only the immediate replacement of a stale connection can pass.
    transport = Transport(server.url, timeout=5, retry_timeout=0)
    try:
        for _ in range(3):
            assert transport.request("GET", "/x").json() == {}
    finally:
        transport.close()
    assert server.connections == 3


class KeepAliveServer(LoopbackServer):
    """Answers one request, keeps the connection open, and notes when the client ends it."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        super().__init__(threaded=True)

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            if read_request(conn) is None:
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            with contextlib.suppress(OSError):
                if conn.recv(1) == b"":
                    self.ended.set()


def test_closing_the_transport_ends_its_kept_alive_connections() -> None:
    server = KeepAliveServer()
    try:
        transport = Transport(server.url, timeout=5, retry_timeout=0)
        assert transport.request("GET", "/x").json() == {}
        assert not server.ended.wait(0.2)  # kept alive for the next request
        transport.close()
        assert server.ended.wait(5), "the connection outlived close()"
    finally:
        server.close()


def test_query_path_prefix_and_head(server: OneShotServer) -> None:
    transport = Transport(server.url + "/behind/a/proxy/", timeout=5, retry_timeout=0)
    try:
        transport.request(
            "GET", "/runs/r1/metrics", params={"key": ["a b", "ü"], "deleted": True, "n": 3}
        )
        transport.request("POST", "/things", json={"x": float("nan")})
    finally:
        transport.close()
    line, *headers = server.requests[0].decode("latin-1").split("\r\n")
    headers = [h.lower() for h in headers]
    assert line == (
        "GET /behind/a/proxy/api/v1/runs/r1/metrics?key=a+b&key=%C3%BC&deleted=true&n=3 HTTP/1.1"
    )
    assert "user-agent: cairn-client" in headers
    posted = server.requests[1].decode("latin-1").lower()
    assert "content-type: application/json" in posted
    assert "content-length: 9" in posted  # {"x":NaN}: Python's JSON, as the server reads it


def test_an_error_answer_raises_the_servers_error_type(server: OneShotServer) -> None:
    server.status = 404
    server.body = b'{"error": {"code": "not_found", "message": "no run r1", "details": {}}}'
    transport = Transport(server.url, timeout=5, retry_timeout=0)
    try:
        with pytest.raises(NotFound, match="no run r1"):
            transport.request("GET", "/runs/r1")
    finally:
        transport.close()


def test_an_unreachable_server_is_reported_after_the_retry_time() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        transport = Transport(f"http://127.0.0.1:{port}", timeout=1, retry_timeout=0.2)
        with pytest.raises(StoreUnavailable, match="cannot reach the Cairn server"):
            transport.request("GET", "/health")


@pytest.mark.parametrize("url", ["ftp://host/x", "127.0.0.1:5000", "http://", "http:///path"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Transport(url, timeout=1, retry_timeout=0)
    assert caught.value.field == "url"


# -- TLS ----------------------------------------------------------------------------------
def test_https_end_to_end(
    certificate: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = certificate
    settings = Settings(home=str(tmp_path / "home"))
    with serve_in_thread(settings, ssl_keyfile=str(key), ssl_certfile=str(cert)) as url:
        assert url.startswith("https://")
        # Unknown to the system's trust store: refused at once, saying why.
        strict = Settings(url=url, retry_timeout=30)
        with (
            cairn.Client(settings=strict) as client,
            pytest.raises(StoreUnavailable, match="certificate"),
        ):
            client.set_project("p")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted from here on
        data = os.urandom(9 * 1024 * 1024 + 1)  # sent while hashed (sendfile falls back)
        (tmp_path / "w.bin").write_bytes(data)
        with cairn.Client(url) as client:
            run = client.set_experiment_run("r")
            run.log_metric("loss", 0.5)
            info = run.log_artifact("w.bin", tmp_path / "w.bin")
            assert info.digest == digest_bytes(data)
            back = run.download_artifact("w.bin", tmp_path / "back.bin")
            assert back.read_bytes() == data
            client.flush()
            assert run.get_metric_history("loss")[0].value == 0.5


def test_credentials_in_the_server_url_are_refused_unrepeated() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Transport("http://ann:s3cret@models.example:5000", timeout=1, retry_timeout=0)
    assert caught.value.field == "url" and "s3cret" not in str(caught.value)
