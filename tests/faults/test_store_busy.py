"""Transient store failures are retryable and named (issue 12).

Another process holding the SQLite write lock past the busy timeout, a PostgreSQL deadlock,
serialization failure or dropped connection: the embedded client raises ``StoreBusy`` /
``StoreUnavailable`` naming the cause (never SQLAlchemy's or the driver's own error); over
HTTP the answer is a 503 with ``Retry-After`` in the one error shape, which the client
retries until its deadline, so a metric batch sent while the lock is held lands exactly once
when it goes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import text

import cairn
from cairn.core.errors import StorageFull, StoreBusy, StoreUnavailable
from cairn.core.settings import Settings
from cairn.store.metadata import MetadataStore
from tests.servers import serve_in_thread

BUSY = 0.2  # seconds: the busy timeout of the stores under test

_HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")  # the write lock, as another writer takes it
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
print("released", flush=True)
"""


@contextmanager
def lock_held(db: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Another process holds ``db``'s write lock for ``seconds`` (from when this yields)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(db), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)


def a_store(home: Path) -> str:
    """A store with one run in it; its id."""
    with cairn.Client(home=home) as client:
        client.set_project("p")
        client.set_experiment("e")
        return client.start_run("r").id


# -- embedded ---------------------------------------------------------------------------------
def test_a_lock_held_past_the_busy_timeout_is_store_busy_naming_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_id = a_store(home)
    settings = Settings(home=str(home), sqlite_busy_timeout=BUSY, capture="none")
    with cairn.Client(settings=settings) as client, lock_held(home / "cairn.db", 30):
        started = time.monotonic()
        with pytest.raises(StoreBusy) as caught:
            client.set_project("q")  # a write through the SQLAlchemy connection
        assert time.monotonic() - started < 10
        error = caught.value
        assert isinstance(error, StoreUnavailable)  # a StoreBusy is a StoreUnavailable
        assert error.code == "store_busy"
        assert "another process held its write lock" in error.message
        assert "0.2 s, CAIRN_SQLITE_BUSY_TIMEOUT" in error.message
        assert "database is locked" in error.details["cause"]
        assert str(home / "cairn.db") in error.message
        run = client.get_run(run_id)  # reads are not held by the lock
        with pytest.raises(StoreBusy):
            run.log_hyperparameter("lr", 0.1)
        entities = client._backend.entities
        with pytest.raises(StoreBusy):  # create_run's raw DB-API path
            entities.create_run(run.info.experiment_id, "r2")
    # The lock gone, the same writes go through.
    with cairn.Client(settings=settings) as client:
        client.set_project("q")
        client.set_experiment("e")
        client.start_run("r2")
    assert cairn.StoreBusy is StoreBusy


# -- over HTTP --------------------------------------------------------------------------------
def test_over_http_a_busy_store_is_503_with_retry_after(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_id = a_store(home)
    settings = Settings(home=str(home), sqlite_busy_timeout=BUSY)
    with serve_in_thread(settings) as url, lock_held(home / "cairn.db", 30):
        api = f"{url}/api/v1"
        experiment = httpx.get(f"{api}/runs/{run_id}", timeout=30).json()["experiment_id"]
        answers = [
            # A route of FastAPI's, and one the fast path answers ahead of it.
            httpx.post(f"{api}/projects", json={"name": "q"}, timeout=30),
            httpx.post(f"{api}/experiments/{experiment}/runs", json={"name": "x"}, timeout=30),
        ]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            error = answer.json()["error"]
            assert error["code"] == "store_busy"
            assert "write lock" in error["message"]
            assert "database is locked" in error["details"]["cause"]


@pytest.mark.timeout(60)
def test_a_metric_batch_sent_while_the_lock_is_held_lands_once_when_it_goes(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    run_id = a_store(home)
    held = 3.0
    with serve_in_thread(Settings(home=str(home), sqlite_busy_timeout=BUSY)) as url:
        client_settings = Settings(url=url, retry_timeout=30, flush_interval=0.05)
        with cairn.Client(settings=client_settings) as client:
            run = client.get_run(run_id)
            with lock_held(home / "cairn.db", held) as holder:
                locked_at = time.monotonic()
                for step in range(1_000):
                    run.log_metric("loss", step * 0.5, step=step)
                run.flush()  # waits: every try until the lock goes is a 503
                flushed = time.monotonic() - locked_at
                assert holder.stdout is not None
                assert holder.stdout.readline().strip() == "released"
            assert flushed >= held - 0.5, "the batch landed through a held lock"
            points = run.get_metric_history("loss")
    assert [(p.step, p.value) for p in points] == [(s, s * 0.5) for s in range(1_000)]


class _Busy(BaseHTTPRequestHandler):
    """Answers 503 with the server's Retry-After once, then no projects."""

    retry_after = "1"
    seen: ClassVar[list[float]] = []

    def do_GET(self) -> None:
        if self.command == "POST":  # read the body, or the connection desyncs
            self.rfile.read(int(self.headers.get("content-length", 0)))
        self.seen.append(time.monotonic())
        if len(self.seen) == 1:
            body = b'{"error": {"code": "store_busy", "message": "busy", "details": {}}}'
            self.send_response(503)
            self.send_header("retry-after", self.retry_after)
        else:
            # A listing pages through POST /search/projects; GET lists answer a list.
            body = b'{"projects": [], "next_cursor": null}' if self.command == "POST" else b"[]"
            self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.do_GET()

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.parametrize(
    ("retry_after", "deadline", "least", "most"),
    [("2", 10.0, 1.9, 5.0), ("3600", 1.5, 1.3, 5.0)],
)
def test_the_client_honours_retry_after_until_its_deadline(
    retry_after: str, deadline: float, least: float, most: float
) -> None:
    """A 503 saying ``Retry-After: 2`` is tried again after 2 s; one saying an hour is
    tried again when the deadline comes, not later."""
    handler = type("Busy", (_Busy,), {"retry_after": retry_after, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with cairn.Client(settings=Settings(url=url, retry_timeout=deadline)) as client:
            assert client.list_projects() == []
    finally:
        server.shutdown()
        server.server_close()
    seen = handler.seen
    assert len(seen) == 2
    assert least <= seen[1] - seen[0] <= most


# -- PostgreSQL -------------------------------------------------------------------------------
@pytest.fixture
def pg_store(pg_url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(pg_url, busy_timeout=BUSY)
    try:
        yield store
    finally:
        store.close()


def raise_sqlstate(store: MetadataStore, state: str, message: str) -> None:
    """PostgreSQL itself raises the error of ``state`` inside a write transaction."""
    with store.write() as tx:
        tx.conn.exec_driver_sql(
            f"DO $$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = '{state}'; END $$"
        )


@pytest.mark.parametrize(
    ("state", "said"),
    [
        ("40001", "could not serialize this transaction"),
        ("40P01", "deadlock with a concurrent transaction"),
    ],
)
def test_postgres_serialization_failures_are_store_busy(
    pg_store: MetadataStore, state: str, said: str
) -> None:
    with pytest.raises(StoreBusy, match=said) as caught:
        raise_sqlstate(pg_store, state, "conflict")
    assert caught.value.details["sqlstate"] == state
    with pg_store.write() as tx:  # the store goes on
        tx.conn.exec_driver_sql("SELECT 1")


def test_a_real_postgres_deadlock_is_store_busy(pg_store: MetadataStore) -> None:
    """Two write transactions lock two rows in opposite orders: PostgreSQL ends one."""
    with pg_store.write() as tx:
        tx.conn.exec_driver_sql("CREATE TABLE probe (id int PRIMARY KEY)")
        tx.conn.exec_driver_sql("INSERT INTO probe VALUES (1), (2)")
    both = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def writer(first: int, second: int) -> None:
        try:
            with pg_store.write() as tx:
                tx.conn.exec_driver_sql("SET LOCAL deadlock_timeout = '100ms'")
                tx.conn.execute(text("SELECT id FROM probe WHERE id = :i FOR UPDATE"), {"i": first})
                both.wait()
                tx.conn.execute(
                    text("SELECT id FROM probe WHERE id = :i FOR UPDATE"), {"i": second}
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1, errors
    assert isinstance(errors[0], StoreBusy)
    assert errors[0].details["sqlstate"] == "40P01"


def test_postgres_disk_full_is_storage_full(pg_store: MetadataStore) -> None:
    with pytest.raises(StorageFull, match="no room left") as caught:
        raise_sqlstate(pg_store, "53100", 'could not extend file "base/1/2": No space left')
    assert caught.value.details["sqlstate"] == "53100"
    assert not isinstance(caught.value, StoreUnavailable)  # 507, never retried


def test_a_dropped_postgres_connection_is_store_unavailable_and_the_next_write_works(
    pg_store: MetadataStore,
) -> None:
    for way in ("write", "run_writer"):
        with pytest.raises(StoreUnavailable) as caught:
            if way == "write":
                with pg_store.write() as tx:
                    tx.conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
            else:
                with pg_store.run_writer() as writer:
                    writer._cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        assert not isinstance(caught.value, StoreBusy)
        assert "lost the connection to the metadata store" in caught.value.message
        with pg_store.write() as tx:  # a new connection from the pool
            assert tx.conn.exec_driver_sql("SELECT 1").scalar_one() == 1
