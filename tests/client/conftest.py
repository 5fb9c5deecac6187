"""Fixtures of the client suite. The same tests run against each backend:

- ``embedded``: ``cairn.Client(home=..., store=...)`` on the store under test (SQLite and
  PostgreSQL, from ``store_url``);
- ``http``: ``cairn.Client(url)`` against a real server on loopback that serves the same
  home and store (SQLite; the server's own PostgreSQL path is the embedded one).

Clients are closed when the test ends. A test that depends on in-process settings is
marked ``embedded_only``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import cairn
from cairn.core.settings import Settings
from tests.servers import serve_in_thread

E = TypeVar("E", bound=cairn.CairnError)
MakeClient = Callable[..., cairn.Client]
MakeSettings = Callable[..., Settings]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The client's home folder (its object store lives in ``home/objects``)."""
    return tmp_path / "home"


@pytest.fixture
def make_settings(home: Path, store_url: str) -> MakeSettings:
    """Settings for the store under test, with some changed."""

    def make(**changes: Any) -> Settings:
        return Settings(home=str(home), store_uri=store_url, **changes)

    return make


@pytest.fixture(params=["embedded", "http"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "http" and request.node.get_closest_marker("embedded_only"):
        pytest.skip("about in-process settings of the embedded client")
    return name


@pytest.fixture
def server_url(backend: str, home: Path, store_url: str) -> Iterator[str | None]:
    """A real server on the test's home and store, for the http backend."""
    if backend != "http":
        yield None
        return
    with serve_in_thread(Settings(home=str(home), store_uri=store_url)) as url:
        yield url


@pytest.fixture
def open_client(home: Path, store_url: str, server_url: str | None) -> Iterator[MakeClient]:
    """Open another client on the same home and store (through the server for the http
    backend); every one is closed at the end."""
    made: list[cairn.Client] = []

    def make(**options: Any) -> cairn.Client:
        if server_url is not None and "settings" not in options:
            options.setdefault("url", server_url)
            options.setdefault("settings", Settings(retry_timeout=5.0))
        elif "settings" not in options:
            options.setdefault("home", home)
            options.setdefault("store", store_url)
        client = cairn.Client(**options)
        made.append(client)
        return client

    yield make
    for client in reversed(made):
        client.close()


@pytest.fixture
def client(open_client: MakeClient) -> cairn.Client:
    return open_client()


def object_files(home: Path) -> list[Path]:
    """Every file of the object store under ``home/objects``."""
    root = home / "objects"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def expect_error(
    error: type[E], what: object, call: Callable[..., object], *args: Any, **kwargs: Any
) -> E:
    """``call(*args, **kwargs)`` must raise ``error``; ``what`` names the case if not."""
    try:
        call(*args, **kwargs)
    except error as exc:
        return exc
    except Exception as exc:
        pytest.fail(f"{what!r}: {type(exc).__name__} raised instead of {error.__name__}: {exc}")
    pytest.fail(f"{what!r}: {error.__name__} was not raised")


# -- TLS ----------------------------------------------------------------------------------
@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and ``cairn.test`` (key, cert), made by the
    openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:cairn.test"),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert
