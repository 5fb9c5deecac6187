"""Everything that differs between SQLite and PostgreSQL lives here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.sql.dml import Insert

from cairn.core.errors import InvalidArgument, StoreUnavailable

__all__ = [
    "engine_options",
    "insert_ignore",
    "install_hooks",
    "is_missing_driver",
    "lock_schema",
    "lock_series",
    "name_of",
    "placeholder",
    "write_begin",
]

SUPPORTED = ("sqlite", "postgresql")


def name_of(url: str) -> str:
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise InvalidArgument("store_uri", f"is not a valid database URL: {exc}") from None
    if backend not in SUPPORTED:
        raise InvalidArgument(
            "store_uri", f"must be an sqlite:// or postgresql+psycopg:// URL, got {backend}://"
        )
    return backend


def engine_options(url: str, busy_timeout: float) -> dict[str, Any]:
    if name_of(url) == "sqlite":
        return {
            "connect_args": {"timeout": busy_timeout, "check_same_thread": False},
        }
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}


def install_hooks(engine: Engine) -> None:
    """SQLite: WAL, foreign keys, and BEGIN IMMEDIATE for writes.

    pysqlite's own transaction handling starts transactions lazily and DEFERRED;
    a deferred reader that later writes can fail with SQLITE_BUSY without the
    busy timeout applying. Writers therefore take the write lock up front.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("cairn_write", False)
        conn.exec_driver_sql(_SQLITE_WRITE_BEGIN if write else "BEGIN")


_SQLITE_WRITE_BEGIN = "BEGIN IMMEDIATE"


def write_begin(engine: Engine) -> str | None:
    """The statement that opens a write transaction on a bare DB-API connection of this
    engine (see install_hooks), or None where the driver opens one by itself (psycopg)."""
    return _SQLITE_WRITE_BEGIN if engine.dialect.name == "sqlite" else None


def placeholder(engine: Engine) -> str:
    """The DB-API parameter marker for hand-written hot-path SQL."""
    return "?" if engine.dialect.name == "sqlite" else "%s"


def insert_ignore(engine: Engine, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: the race-safe half of get-or-create."""
    # preserve_rowcount: psycopg reports -1 for INSERTs unless asked; callers need 0/1.
    stmt: Insert
    if engine.dialect.name == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:
        stmt = postgresql.insert(table).on_conflict_do_nothing()
    return stmt.execution_options(preserve_rowcount=True)


def lock_schema(conn: Connection) -> None:
    """Serialize schema creation between processes.

    SQLite's BEGIN IMMEDIATE already holds the database lock; PostgreSQL needs
    an advisory lock, released at the end of the transaction.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7147320521)")


def lock_series(conn: Connection, series_ids: list[int]) -> None:
    """Hold the series rows a batch appends to until the transaction ends.

    Appending may rewrite a series' tail chunk (read, extend, write back); under
    PostgreSQL's READ COMMITTED two writers would both read the old tail and one
    would lose its points. SQLite's BEGIN IMMEDIATE already serializes writers.
    Locking in id order keeps two writers from deadlocking.
    """
    if conn.dialect.name == "postgresql" and series_ids:
        conn.exec_driver_sql(
            "SELECT id FROM metric_series WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (sorted(series_ids),),
        )


def is_missing_driver(exc: BaseException) -> bool:
    return isinstance(exc, ModuleNotFoundError) and exc.name in {"psycopg", "psycopg_binary"}


def unavailable(exc: DBAPIError | OperationalError, url: str) -> StoreUnavailable:
    safe = make_url(url).render_as_string(hide_password=True)
    return StoreUnavailable(f"cannot use the metadata store at {safe}: {exc.orig}", url=safe)
