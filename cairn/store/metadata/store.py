"""Opening a metadata store, checking its schema, and handing out transactions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from cairn.core.errors import SchemaOutOfDate, StoreUnavailable
from cairn.store.metadata import dialect
from cairn.store.metadata.entities import RunSQL, RunWriter
from cairn.store.metadata.schema import metadata
from cairn.store.metadata.tx import MetadataTx, SeriesCache

__all__ = ["HEAD_REVISION", "REVISIONS", "MetadataStore", "current_revision", "upgrade"]

# The migration chain, oldest first. A test checks it against Alembic's scripts.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004")
HEAD_REVISION = REVISIONS[-1]
_MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_HINT = "run `python -m cairn db upgrade` (with the same store) to migrate it"


class MetadataStore:
    """The metadata tables behind one SQLAlchemy engine.

    ``write()`` and ``read()`` each yield a :class:`MetadataTx`: one database
    transaction, committed when the block ends and rolled back if it raises.
    """

    def __init__(self, url: str, *, busy_timeout: float = 60.0) -> None:
        self.url = url
        self.dialect_name = dialect.name_of(url)
        try:
            self._engine: Engine = create_engine(url, **dialect.engine_options(url, busy_timeout))
        except ModuleNotFoundError as exc:
            if dialect.is_missing_driver(exc):
                raise StoreUnavailable(
                    "PostgreSQL support is not installed: pip install 'cairn[postgres]'"
                ) from None
            raise
        dialect.install_hooks(self._engine)
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
            self._ensure_schema()
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
    def write(self) -> Iterator[MetadataTx]:
        with (
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
        with self._writers:
            conn = self._engine.raw_connection()
            try:
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
        with self._engine.connect() as conn, conn.begin():
            yield MetadataTx(conn, self._engine, self._series)

    def close(self) -> None:
        self._engine.dispose()

    def _ensure_schema(self) -> None:
        with (
            self._engine.connect().execution_options(cairn_write=True) as conn,
            conn.begin(),
        ):
            dialect.lock_schema(conn)
            revision = _current_revision(conn)
            if revision is None and not _has_cairn_tables(conn):
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
