"""Fixtures of the client suite. The same tests run against each backend:

- ``embedded``: ``cairn.Client(home=..., store=...)`` on the store under test (SQLite and
  PostgreSQL, from ``store_url``);
- ``http``: ``cairn.Client(url)`` against a real server on loopback that serves the same
  home and store (SQLite; the server's own PostgreSQL path is the embedded one);
- ``http-auth``: the same with authentication on, the client sending an admin's token
  (named as the OS user, so owners read the same), for the modules in :data:`AUTH_MODULES`.

Clients are closed when the test ends. A test that depends on in-process settings is
marked ``embedded_only``."""

from __future__ import annotations

import getpass
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


# The client suite's modules that also run through a server with authentication on: every
# aggregate's calls, with a token, as the plain http backend runs them.
AUTH_MODULES = frozenset(
    {
        "test_artifacts",
        "test_entities",
        "test_hyperparameters",
        "test_labels",
        "test_metrics",
        "test_search",
    }
)
# With authentication on, owners come from the token, whatever the client says
# (tests/service/test_roles.py): this test is about the client's word.
AUTH_EXEMPT = frozenset({"test_owner_is_the_os_user_unless_given"})


def _off_the_auth_subset(item: pytest.Item) -> bool:
    if "http-auth" not in item.nodeid:
        return False
    module = Path(item.nodeid.partition("::")[0]).stem
    return module not in AUTH_MODULES or item.name.partition("[")[0] in AUTH_EXEMPT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if _off_the_auth_subset(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


@pytest.fixture(params=["embedded", "http", "http-auth"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name != "embedded" and request.node.get_closest_marker("embedded_only"):
        pytest.skip("about in-process settings of the embedded client")
    return name


@pytest.fixture
def server_token(backend: str, home: Path, store_url: str) -> str | None:
    """For the http-auth backend: an admin's token, made on the store before it is served."""
    if backend != "http-auth":
        return None
    from cairn.service import open_service

    service = open_service(Settings(home=str(home), store_uri=store_url))
    try:
        name = getpass.getuser()
        service.auth.create_user(name, admin=True)
        return service.auth.create_token("tests", user=name).secret
    finally:
        service.close()


@pytest.fixture
def server_url(
    backend: str, home: Path, store_url: str, server_token: str | None
) -> Iterator[str | None]:
    """A real server on the test's home and store, for the http backends."""
    if backend == "embedded":
        yield None
        return
    settings = Settings(home=str(home), store_uri=store_url, auth=server_token is not None)
    with serve_in_thread(settings) as url:
        yield url


@pytest.fixture
def open_client(
    home: Path, store_url: str, server_url: str | None, server_token: str | None
) -> Iterator[MakeClient]:
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
        if server_token is not None and options.get("url") == server_url:
            options.setdefault("token", server_token)
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
