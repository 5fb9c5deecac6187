"""A real Cairn server for tests: uvicorn in a thread, on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from cairn.core.settings import Settings
from cairn.server import create_app
from cairn.server.serve import PROTOCOL


@contextmanager
def serve_in_thread(settings: Settings, **config: Any) -> Iterator[str]:
    """Serve ``create_app(settings)``; yields its base URL, stops it at the end.
    ``config`` goes to ``uvicorn.Config`` (with ``ssl_certfile``, the URL is https)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound before uvicorn starts: no port races
    port = sock.getsockname()[1]
    app = create_app(settings, service=None)
    config = {"http": PROTOCOL, "log_level": "warning", **config}  # as `cairn server` does
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.005)
    try:
        scheme = "https" if config.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
