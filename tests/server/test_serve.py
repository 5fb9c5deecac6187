"""The connection layer of cairn/server/serve.py: the buffered protocol still speaks
HTTP/1.1 correctly (keep-alive, HEAD, 100 Continue, large and streamed bodies, pipelined
requests) on a real uvicorn server. And the JSON log lines."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from cairn.server.serve import PROTOCOL, AccessLog, json_formatter


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the body back; ?stream=N answers N chunks of 64 KiB."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    query = scope["query_string"].decode()
    if query.startswith("stream="):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(int(query.removeprefix("stream="))):
            chunk = bytes([65 + i % 26]) * 65536
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=["uvloop", "asyncio"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config: dict[str, Any] = {"http": PROTOCOL, "loop": request.param, "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.005)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def test_http_over_the_buffered_protocol(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # keep-alive; bodies below and above the hold size, and over the 1 MiB read buffer
    for size in (0, 1, 1000, 100_000, 3 * 1024 * 1024 + 7):
        body = os.urandom(size)  # no two reads of the shared read buffer look alike
        conn.request("POST", "/", body=body)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, body)
    conn.request("HEAD", "/")  # a head and no body at all
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"")
    conn.request("GET", "/?stream=20")  # chunked, 20 chunks
    response = conn.getresponse()
    assert response.read() == b"".join(bytes([65 + i % 26]) * 65536 for i in range(20))
    conn.close()


def test_a_body_of_many_small_chunks(port: int) -> None:
    body = os.urandom(20_000)
    chunked = b"".join(b"1\r\n%s\r\n" % body[i : i + 1] for i in range(len(body)))
    request = b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request + chunked + b"0\r\n\r\n")  # many pieces in one read
        answer = b""
        while not answer.endswith(body):
            chunk = sock.recv(1 << 16)
            assert chunk, f"closed after {len(answer)} bytes"
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_in_one_read(port: int) -> None:
    one, two = os.urandom(5000), os.urandom(70_000)
    requests = b"".join(
        b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s" % (len(b), b)
        for b in (one, two)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(requests)
        answers = b""
        while not answers.endswith(two):
            chunk = sock.recv(1 << 16)
            assert chunk, f"closed after {len(answers)} bytes"
            answers += chunk
    first, second = answers.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first.endswith(b"\r\n\r\n" + one) and second.endswith(b"\r\n\r\n" + two)


def test_100_continue_is_not_held_back(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        answer = b""
        while not answer.endswith(b"hello"):
            answer += sock.recv(1000)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(
    "created",
    [
        1_700_000_000.0,
        1_700_000_000.0005,
        1_700_000_000.9995,
        1_700_000_000.9999996,
        1727904011.7679994,
    ],
)
def test_log_times_are_iso_8601_utc_to_the_millisecond(created: float) -> None:
    formatter = json_formatter()
    formatter.format(logging.makeLogRecord({"created": created - 1}))  # a second made before
    entry = json.loads(formatter.format(logging.makeLogRecord({"created": created})))
    expected = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
    assert entry["time"] == expected.replace("+00:00", "Z")


def test_an_access_line_is_one_json_object_with_the_request_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def teapot(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def sink(_: Any) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": "/tea", "client": ("127.0.0.1", 5)}
    with caplog.at_level(logging.INFO, logger="cairn.access"):
        asyncio.run(AccessLog(teapot)(scope, None, sink))  # type: ignore[arg-type]
    [record] = caplog.records
    entry = json.loads(json_formatter().format(record))
    assert entry["message"].startswith("GET /tea 418 ")
    assert (entry["level"], entry["logger"]) == ("INFO", "cairn.access")
    extras = {k: entry[k] for k in list(entry)[5:]}
    assert list(extras) == ["method", "path", "status", "duration_ms", "client"]
    assert extras["client"] == "127.0.0.1:5" and extras["duration_ms"] >= 0
