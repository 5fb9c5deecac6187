"""Opening a metadata store, checking its schema, and handing out transactions."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from cairn.core.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    SchemaOutOfDate,
    StorageFull,
    StoreUnavailable,
)
from cairn.files.writing import fsync_dir, room_for
from cairn.store.metadata import dialect
from cairn.store.metadata.entities import RunSQL, RunWriter
from cairn.store.metadata.schema import metadata
from cairn.store.metadata.tx import MetadataTx, SeriesCache

__all__ = [
    "HEAD_REVISION",
    "REVISIONS",
    "MetadataStore",
    "backup",
    "current_revision",
    "upgrade",
]

# The migration chain, oldest first. A test checks it against Alembic's scripts.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006")
HEAD_REVISION = REVISIONS[-1]
_MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_HINT = "run `python -m cairn db upgrade` (with the same store) to migrate it"


class MetadataStore:
    """The metadata tables behind one SQLAlchemy engine.

    ``write()`` and ``read()`` each yield a :class:`MetadataTx`: one database
    transaction, committed when the block ends and rolled back if it raises.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 60.0,
        synchronous: str = "normal",
        create: bool = True,
    ) -> None:
        """``create``: make the schema in a database that has none (a new store); else
        such a database raises :class:`NotFound`."""
        self.url = url
        self.dialect_name = dialect.name_of(url)
        self._busy_timeout = busy_timeout
        try:
            self._engine: Engine = create_engine(url, **dialect.engine_options(url, busy_timeout))
        except ModuleNotFoundError as exc:
            if dialect.is_missing_driver(exc):
                raise StoreUnavailable(
                    "PostgreSQL support is not installed: pip install 'cairn[postgres]'"
                ) from None
            raise
        dialect.install_hooks(self._engine, synchronous)
        self._driver_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        self.placeholder = dialect.placeholder(self._engine)
        self._write_begin = dialect.write_begin(self._engine)
        self._run_sql = RunSQL(self.placeholder)
        self._series = SeriesCache()
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps
        # in SQLite's busy handler (1, 2, 5 ms...) before it looks again. Writers of this
        # process take turns on a Python lock instead, which wakes the next one at once
        # (a run's capture thread and its training thread write side by side). Other
        # processes still meet the busy handler.
        self._writers: AbstractContextManager[object] = (
            threading.RLock() if self._engine.dialect.name == "sqlite" else nullcontext()
        )
        try:
            with self._faults():
                self._ensure_schema(create)
        except DBAPIError as exc:
            self._engine.dispose()
            raise dialect.unavailable(exc, url) from None
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _faults(self, raw: Any = None) -> Iterator[None]:
        """The one place database errors that are the store's state (busy, full, gone)
        become Cairn's errors (``dialect.store_fault``); others pass as they are. ``raw``:
        the DB-API connection in use, when errors come from the driver itself."""
        try:
            yield
        except (DBAPIError, self._driver_error) as exc:
            lost = False
            if raw is not None and not isinstance(exc, DBAPIError):
                lost = self._engine.dialect.is_disconnect(cast(Any, exc), raw, None)
            fault = dialect.store_fault(exc, self.url, self._busy_timeout, lost=lost)
            if fault is None:
                raise
            raise fault from exc

    @contextmanager
    def write(self) -> Iterator[MetadataTx]:
        with (
            self._faults(),
            self._writers,
            self._engine.connect().execution_options(cairn_write=True) as conn,
        ):
            with conn.begin():
                tx = MetadataTx(conn, self._engine, self._series)
                yield tx
            # Only ids from committed series may be remembered.
            tx.commit_caches()

    @contextmanager
    def run_writer(self) -> Iterator[RunWriter]:
        """A write transaction for create_run's hot path, on the bare DB-API connection:
        committed when the block ends, rolled back if it raises."""
        with self._faults(), self._writers:
            conn = self._engine.raw_connection()
            try:
                with self._faults(conn.driver_connection):
                    with closing(conn.cursor()) as cursor:
                        if self._write_begin is not None:
                            cursor.execute(self._write_begin)
                        yield RunWriter(cursor, self._run_sql)
                    conn.commit()
            finally:
                # Back to the pool, which rolls back what did not commit (and drops a
                # connection that cannot).
                conn.close()

    @contextmanager
    def read(self) -> Iterator[MetadataTx]:
        with self._faults(), self._engine.connect() as conn, conn.begin():
            yield MetadataTx(conn, self._engine, self._series)

    def close(self) -> None:
        self._engine.dispose()

    def _ensure_schema(self, create: bool) -> None:
        with (
            self._engine.connect().execution_options(cairn_write=True) as conn,
            conn.begin(),
        ):
            dialect.lock_schema(conn)
            revision = _current_revision(conn)
            if revision is None and not _has_cairn_tables(conn):
                if not create:
                    raise NotFound(
                        f"no Cairn store at {_safe(self.url)} yet (its database has no "
                        "Cairn tables)",
                        url=_safe(self.url),
                    )
                # A new store starts at the current schema.
                metadata.create_all(conn)
                conn.exec_driver_sql(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
                conn.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                    {"v": HEAD_REVISION},
                )
                return
        check_revision(revision)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def check_revision(revision: str | None) -> None:
    if revision == HEAD_REVISION:
        return
    if revision is None:
        raise SchemaOutOfDate(
            f"the metadata store has tables but no schema version; {UPGRADE_HINT}",
            revision=None,
            expected=HEAD_REVISION,
        )
    if revision in REVISIONS:
        raise SchemaOutOfDate(
            f"the metadata store is at schema {revision}, this Cairn needs {HEAD_REVISION}; "
            f"{UPGRADE_HINT}",
            revision=revision,
            expected=HEAD_REVISION,
        )
    raise SchemaOutOfDate(
        f"the metadata store is at schema {revision}, unknown to this Cairn "
        f"(needs {HEAD_REVISION}): it was written by a newer Cairn; upgrade Cairn",
        revision=revision,
        expected=HEAD_REVISION,
    )


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row[0])


def _has_cairn_tables(conn: Connection) -> bool:
    existing = set(inspect(conn).get_table_names())
    return bool(existing & set(metadata.tables))


def current_revision(url: str) -> str | None:
    """The schema revision of the store at ``url`` (None: no Cairn schema)."""
    engine = create_engine(url, **dialect.engine_options(url, 60.0))
    try:
        with engine.connect() as conn:
            return _current_revision(conn)
    except DBAPIError as exc:
        raise dialect.unavailable(exc, url) from None
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str:
    """Migrate the store at ``url`` to ``revision`` (Alembic); returns the new revision."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(url, **dialect.engine_options(url, 60.0))
    dialect.install_hooks(engine)
    try:
        with engine.connect().execution_options(cairn_write=True) as conn:
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
            return _current_revision(conn) or "base"
    except DBAPIError as exc:
        raise dialect.unavailable(exc, url) from None
    finally:
        engine.dispose()


PG_DUMP_HINT = (
    "back up a PostgreSQL store with PostgreSQL's own tools: "
    "`pg_dump --format=custom --file=cairn.dump DATABASE` (restore with `pg_restore`)"
)


def backup(url: str, destination: Path, *, busy_timeout: float = 60.0) -> Path:
    """Copy the SQLite store at ``url`` to the new file ``destination`` with SQLite's online
    backup API: one consistent state of the database (its WAL included), taken while
    writers go on (in WAL they do not wait for it). Written under a temporary name,
    fsynced, then renamed: a backup is whole or absent. Returns the file's path."""
    if dialect.name_of(url) != "sqlite":
        raise InvalidArgument("store", f"`cairn db backup` copies SQLite stores; {PG_DUMP_HINT}")
    source = Path(make_url(url).database or "")
    if not source.is_file():
        raise NotFound(f"no SQLite database at {os.fspath(source)!r} to back up", path=str(source))
    target = destination.expanduser().resolve()
    if target.exists() or target == source.resolve():
        raise AlreadyExists(
            f"{os.fspath(target)!r} exists: a backup never overwrites a file; give a new name",
            path=os.fspath(target),
        )
    if not target.parent.is_dir():
        raise NotFound(f"no folder {os.fspath(target.parent)!r} for the backup", path=str(target))
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    what = f"the backup {os.fspath(target)!r}"
    try:
        with room_for(what, path=os.fspath(target)):
            with (
                closing(sqlite3.connect(source, timeout=busy_timeout)) as src,
                closing(sqlite3.connect(partial)) as dest,
            ):
                src.backup(dest)  # all pages in one step: one consistent snapshot
            with open(partial, "rb+") as written:
                os.fsync(written.fileno())
            os.rename(partial, target)
            fsync_dir(target.parent)
    except sqlite3.Error as exc:
        fault = dialect.store_fault(exc, url, busy_timeout)
        if isinstance(fault, StorageFull):  # the copy's disk, most likely
            fault = StorageFull(f"no room left for {what}: {exc}", path=os.fspath(target))
        raise (fault or dialect.unavailable_cause(exc, url)) from exc
    finally:
        partial.unlink(missing_ok=True)
    return target
