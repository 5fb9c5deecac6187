"""Everything that differs between SQLite and PostgreSQL lives here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.sql.dml import Insert

from cairn.core.errors import (
    CairnError,
    InvalidArgument,
    StorageFull,
    StoreBusy,
    StoreUnavailable,
)

__all__ = [
    "BulkStatement",
    "bulk_insert",
    "bulk_update",
    "engine_options",
    "fetch_rows",
    "insert_ignore",
    "install_hooks",
    "is_missing_driver",
    "list_param",
    "list_values",
    "lock_schema",
    "lock_series",
    "name_of",
    "placeholder",
    "store_fault",
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


SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}  # the setting's value: SQLite's pragma


def engine_options(url: str, busy_timeout: float) -> dict[str, Any]:
    if name_of(url) == "sqlite":
        return {
            "connect_args": {"timeout": busy_timeout, "check_same_thread": False},
        }
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}


def install_hooks(engine: Engine, synchronous: str = "normal") -> None:
    """SQLite: WAL, ``synchronous`` (the ``sqlite_synchronous`` setting: in WAL, NORMAL
    syncs at checkpoints only, so a commit survives the process, not the machine; FULL
    syncs the WAL at every commit), foreign keys, and BEGIN IMMEDIATE for writes.

    pysqlite's own transaction handling starts transactions lazily and DEFERRED;
    a deferred reader that later writes can fail with SQLITE_BUSY without the
    busy timeout applying. Writers therefore take the write lock up front.
    """
    if engine.dialect.name != "sqlite":
        return
    pragma = f"PRAGMA synchronous={SYNCHRONOUS[synchronous]}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(pragma)
        cursor.execute("PRAGMA foreign_keys=ON")
        # 64 MiB of page cache per connection (SQLite's default is 2 MiB): a search joins
        # runs, metrics and hyperparameters at random, and a page read from the OS costs
        # ~10 us where a cached one costs well under 1. Grown only as pages are read.
        cursor.execute("PRAGMA cache_size=-65536")
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


def list_values(engine: Engine, sql_type: str) -> str:
    """A subquery of one column, ``value``, holding a list bound to one parameter
    (``list_param``), for ``x IN (...)`` over a list of any length: SQLite caps a
    statement's parameters (32,766), and a statement per length defeats statement caches."""
    if engine.dialect.name == "sqlite":
        return "SELECT value FROM json_each(?)"
    return f"SELECT unnest(%b::{sql_type}[]) AS value"


def positions(engine: Engine, sql_type: str) -> str:
    """Like ``list_values``, with each value's 0-based position in the list as ``n``."""
    if engine.dialect.name == "sqlite":
        return "SELECT key AS n, value FROM json_each(?)"
    return f"SELECT n - 1 AS n, value FROM unnest(%b::{sql_type}[]) WITH ORDINALITY AS u(value, n)"


def list_param(engine: Engine, values: Sequence[int] | Sequence[str]) -> Any:
    """The parameter of ``list_values``: JSON text on SQLite, an array on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return json.dumps(list(values))
    return list(values)


# Rows per statement on SQLite: within its 32,766 parameters for up to 65 columns.
_SQLITE_ROWS = 500


class BulkStatement:
    """One statement applied to many rows, in a few executions whatever their number.

    Each execution counts, beside its SQL work: the thread that writes metrics shares the
    GIL with the training loop, and SQLite's driver lets go of the GIL on every step (one
    per row of an ``executemany``, one per row fetched). While the other thread runs
    Python, taking it back waits up to the switch interval (5 ms): 5,000 rows by
    ``executemany`` took 3.2 s against 3 ms alone. So SQLite gets multi-row ``VALUES`` of
    up to 500 rows a statement; PostgreSQL one statement over an array per column, sent
    binary (``%b``): psycopg's ``executemany`` costs 20-100 µs a row, even pipelined.

    ``make_sql`` writes the statement around its rows: on SQLite ``VALUES (?, ...), ...``,
    on PostgreSQL ``unnest(%b::type[], ...)``, a table whose columns are unnamed."""

    def __init__(
        self,
        engine: Engine,
        make_sql: Callable[[str], str],
        columns: Sequence[tuple[str, str]],
    ) -> None:
        self._sqlite = engine.dialect.name == "sqlite"
        self._make_sql = make_sql
        self._width = len(columns)
        self._sql: dict[int, str] = {}  # SQLite: by number of rows
        if not self._sqlite:
            self._sql[0] = make_sql(f"unnest({', '.join(f'%b::{t}[]' for _, t in columns)})")

    def sql(self, rows: int) -> str:
        """The statement for ``rows`` rows (PostgreSQL: any number)."""
        if not self._sqlite:
            return self._sql[0]
        found = self._sql.get(rows)
        if found is None:
            one = f"({', '.join('?' for _ in range(self._width))})"
            found = self._sql[rows] = self._make_sql(f"VALUES {', '.join([one] * rows)}")
        return found

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if not self._sqlite:
            conn.exec_driver_sql(self.sql(0), tuple(list(c) for c in zip(*rows, strict=True)))
            return
        for start in range(0, len(rows), _SQLITE_ROWS):
            part = rows[start : start + _SQLITE_ROWS]
            conn.exec_driver_sql(self.sql(len(part)), tuple(v for row in part for v in row))


def bulk_insert(
    engine: Engine, table: str, columns: Sequence[tuple[str, str]], suffix: str = ""
) -> BulkStatement:
    """INSERT of rows of ``columns`` ((name, PostgreSQL type) each), then ``suffix``
    (e.g. an ON CONFLICT clause)."""
    into = f"INSERT INTO {table} ({', '.join(name for name, _ in columns)})"
    if engine.dialect.name == "sqlite":
        return BulkStatement(engine, lambda rows: f"{into} {rows} {suffix}".rstrip(), columns)
    return BulkStatement(
        engine, lambda rows: f"{into} SELECT * FROM {rows} {suffix}".rstrip(), columns
    )


def bulk_update(engine: Engine, table: str, columns: Sequence[tuple[str, str]]) -> BulkStatement:
    """UPDATE of rows found by the first of ``columns`` (their id), setting the others."""
    names = [name for name, _ in columns]
    if engine.dialect.name == "sqlite":  # a VALUES table's columns are column1, column2...
        aliases = [f"column{i}" for i in range(1, len(names) + 1)]
        source = "({rows}) AS v"
    else:
        aliases = names
        source = f"{{rows}} AS v({', '.join(names)})"
    sets = ", ".join(f"{n} = v.{a}" for n, a in zip(names[1:], aliases[1:], strict=True))
    where = f"WHERE {table}.{names[0]} = v.{aliases[0]}"
    return BulkStatement(
        engine,
        lambda rows: f"UPDATE {table} SET {sets} FROM {source.format(rows=rows)} {where}",
        columns,
    )


def fetch_rows(
    conn: Connection, sql: str, params: tuple[Any, ...], columns: Sequence[tuple[str, str]]
) -> list[tuple[Any, ...]]:
    """Every row of ``sql``, whose result columns are ``columns`` ((name, kind) each: kind
    "bytes" for a blob, anything else for an integer or text). On SQLite the rows come
    as one JSON row, so one step however many there are (see ``BulkStatement``)."""
    if conn.dialect.name != "sqlite":
        return [tuple(row) for row in conn.exec_driver_sql(sql, params)]
    values = ", ".join(f"hex({n})" if kind == "bytes" else n for n, kind in columns)
    found = conn.exec_driver_sql(
        f"SELECT json_group_array(json_array({values})) FROM ({sql})", params
    ).scalar_one()
    rows = json.loads(found)
    blobs = [i for i, (_, kind) in enumerate(columns) if kind == "bytes"]
    for row in rows:
        for i in blobs:
            if row[i] is not None:
                row[i] = bytes.fromhex(row[i])
    return [tuple(row) for row in rows]


def is_missing_driver(exc: BaseException) -> bool:
    return isinstance(exc, ModuleNotFoundError) and exc.name in {"psycopg", "psycopg_binary"}


def unavailable(exc: DBAPIError | OperationalError, url: str) -> StoreUnavailable:
    return unavailable_cause(exc.orig or exc, url)


def unavailable_cause(cause: BaseException, url: str) -> StoreUnavailable:
    safe = make_url(url).render_as_string(hide_password=True)
    return StoreUnavailable(f"cannot use the metadata store at {safe}: {cause}", url=safe)


# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF).
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY: another connection's lock; SQLITE_LOCKED: this one's
_SQLITE_FULL = 13
# The file cannot be read or written as a database: named, and 503 (not a bug of ours).
_SQLITE_BROKEN = {
    8: "the database file is read-only",
    10: "a disk I/O error",
    11: "the database file is damaged",
    14: "the database file cannot be opened",
    26: "the file is not a database",
}
# PostgreSQL's SQLSTATEs (psycopg.Error.sqlstate).
_PG_RETRY = {
    "40001": "could not serialize this transaction with a concurrent one",
    "40P01": "deadlock with a concurrent transaction",
    "55P03": "a lock was not available",
    "53300": "too many connections",
    "57P03": "the server is starting up or shutting down",
}
_PG_FULL = "53100"
_PG_GONE = ("08", "57P")  # connection exceptions; the server shut the connection down


def store_fault(
    exc: BaseException, url: str, busy_timeout: float, *, lost: bool = False
) -> CairnError | None:
    """The Cairn error for a database error that is the store's state, not a bug: another
    writer's lock held past the busy timeout or a concurrent transaction in the way
    (:class:`StoreBusy`: try again), a full disk (:class:`StorageFull`), a lost connection
    or a file that cannot be used (:class:`StoreUnavailable`). None for anything else (a
    constraint or an SQL error is the caller's, and stays as it is). ``exc`` is
    SQLAlchemy's wrapper or the driver's own error (the raw connection of create_run,
    whose caller says whether the connection was ``lost``)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, Exception):
        return None
    safe = make_url(url).render_as_string(hide_password=True)
    cause = " ".join(str(orig).split()) or type(orig).__name__
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _sqlite_fault(code & 0xFF, safe, cause, busy_timeout)
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str) and state in _PG_RETRY:
        return StoreBusy(
            f"the metadata store at {safe} is busy: {_PG_RETRY[state]} "
            f"(SQLSTATE {state}: {cause}); try again",
            url=safe,
            cause=cause,
            sqlstate=state,
        )
    if state == _PG_FULL:
        return _full(safe, cause, sqlstate=state)
    lost = lost or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
    if lost or (isinstance(state, str) and state.startswith(_PG_GONE)):
        return StoreUnavailable(
            f"lost the connection to the metadata store at {safe}: {cause}; try again",
            url=safe,
            cause=cause,
        )
    return None


def _sqlite_fault(code: int, safe: str, cause: str, busy_timeout: float) -> CairnError | None:
    if code in _SQLITE_BUSY:
        return StoreBusy(
            f"the metadata store at {safe} is busy: another process held its write lock "
            f"for longer than the busy timeout ({busy_timeout:g} s, "
            f"CAIRN_SQLITE_BUSY_TIMEOUT): {cause}; try again",
            url=safe,
            cause=cause,
            busy_timeout=busy_timeout,
        )
    if code == _SQLITE_FULL:
        return _full(safe, cause)
    if code in _SQLITE_BROKEN:
        return StoreUnavailable(
            f"cannot use the metadata store at {safe}: {_SQLITE_BROKEN[code]} ({cause})",
            url=safe,
            cause=cause,
        )
    return None


def _full(safe: str, cause: str, **details: Any) -> StorageFull:
    return StorageFull(
        f"the metadata store at {safe} has no room left on its disk ({cause}): nothing of "
        "this write was stored; free some space, then try again",
        url=safe,
        cause=cause,
        **details,
    )
