"""Shared fixtures: database URLs for the metadata store, SQLite and PostgreSQL.

PostgreSQL comes from ``CAIRN_TEST_PG_URL`` (scripts/test.sh starts a throwaway cluster and sets
it); without it the PostgreSQL tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def _libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    """The libpq form psycopg takes (no ``+driver``), optionally for another database."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def _postgres_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL not available: {reason} (it must run in CI)", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """SQLAlchemy URL of the admin database of the test cluster, checked to answer."""
    url = os.environ.get("CAIRN_TEST_PG_URL")
    if not url:
        _postgres_unavailable("CAIRN_TEST_PG_URL is not set (scripts/postgres.sh start prints one)")
    try:
        import psycopg
    except ImportError:
        _postgres_unavailable("psycopg is not installed (pip install 'cairn[postgres]')")
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, ArgumentError) as exc:  # unreachable, refused, or a malformed URL
        _postgres_unavailable(f"cannot connect to {url}: {exc}")
    return url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database, dropped after the test."""
    import psycopg
    from psycopg import sql

    # Unique across pytest-xdist workers and concurrent runs sharing the cluster.
    name = f"cairn_t_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(pg_admin_url)
    with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a connection the test leaked must not keep the database alive.
        with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a new SQLite file in the test's own folder."""
    return f"sqlite:///{tmp_path / 'cairn.db'}"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest) -> str:
    """The metadata store URL, once per backend; only the PostgreSQL case needs the cluster."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The http backend runs on SQLite only: behind the server, PostgreSQL is the same
    service code the embedded PostgreSQL tests already cover."""
    dropped = [i for i in items if "http" in i.nodeid and "postgresql" in i.nodeid]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


@pytest.fixture(autouse=True)
def no_capture_unless_asked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs record their code and environment by default (an upload and a request each):
    the tests that count requests or objects would count those too. Only tests marked
    ``capture`` let runs capture; ``CAIRN_CAPTURE=none`` reaches clients in subprocesses."""
    if request.node.get_closest_marker("capture"):
        monkeypatch.delenv("CAIRN_CAPTURE", raising=False)
        return
    monkeypatch.setenv("CAIRN_CAPTURE", "none")
    monkeypatch.setattr("cairn.client._capture.RunCapture.start", lambda *_, **__: None)


# The web UI tests (tests/ui) write screenshots here; the run names the folder at its end.
# In this root conftest because under pytest-xdist only the controller writes the summary,
# and it loads no conftest below tests/ when given the whole folder.
UI_SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui"
_STARTED = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.time()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    started = config.stash.get(_STARTED, 0.0)
    if UI_SHOTS.is_dir() and any(p.stat().st_mtime >= started for p in UI_SHOTS.glob("*.png")):
        terminalreporter.write_line(f"web UI screenshots: {UI_SHOTS}")
