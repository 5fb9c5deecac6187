"""Rows of projects, experiments and runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Row, Table, func, literal, or_, select, union_all, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import ColumnElement

from cairn.core.model import EntityKind, ExperimentInfo, ProjectInfo, RunInfo, RunStatus
from cairn.store.metadata import dialect
from cairn.store.metadata.named import ProjectNamed
from cairn.store.metadata.schema import experiments, projects, repositories, runs

__all__ = ["EntityRows", "RunSQL", "RunWriter"]

TABLES: Mapping[EntityKind, Table] = {
    EntityKind.PROJECT: projects,
    EntityKind.EXPERIMENT: experiments,
    EntityKind.RUN: runs,
    EntityKind.REPOSITORY: repositories,
}


def _project(row: Row[Any]) -> ProjectInfo:
    m = row._mapping
    return ProjectInfo(
        id=m["id"],
        name=m["name"],
        description=m["description"],
        owner=m["owner"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        deleted_at=m["deleted_at"],
    )


def _experiment(row: Row[Any]) -> ExperimentInfo:
    m = row._mapping
    return ExperimentInfo(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        description=m["description"],
        owner=m["owner"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        deleted_at=m["deleted_at"],
    )


def _run(row: Row[Any]) -> RunInfo:
    m = row._mapping
    return RunInfo(
        id=m["id"],
        experiment_id=m["experiment_id"],
        project_id=m["project_id"],
        name=m["name"],
        description=m["description"],
        owner=m["owner"],
        status=RunStatus(m["status"]),
        parent_id=m["parent_id"],
        start_time=m["start_time"],
        end_time=m["end_time"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        deleted_at=m["deleted_at"],
        heartbeat_at=m["heartbeat_at"],
    )


def _update_running(which: ColumnElement[bool]) -> Update:
    """An UPDATE of the runs ``which`` picks that are running and not deleted: the check
    that a run may record and the write that records it, in one statement."""
    return update(runs).where(
        which, runs.c.status == RunStatus.RUNNING.value, runs.c.deleted_at.is_(None)
    )


class EntityRows:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self._conn = conn
        self._engine = engine
        self._experiments = ProjectNamed(conn, experiments, _experiment)

    # -- get-or-create -------------------------------------------------------------
    def insert_ignore(self, kind: EntityKind, row: Mapping[str, Any]) -> bool:
        """Insert unless the unique name is taken; True if this call inserted it."""
        # One row, not a one-row list: rowcount is unreliable for executemany (psycopg).
        result = self._conn.execute(dialect.insert_ignore(self._engine, TABLES[kind]), row)
        return bool(result.rowcount == 1)

    # -- projects -------------------------------------------------------------------
    def project(self, project_id: str) -> ProjectInfo | None:
        row = self._conn.execute(select(projects).where(projects.c.id == project_id)).first()
        return None if row is None else _project(row)

    def project_by_name(self, name: str) -> ProjectInfo | None:
        row = self._conn.execute(select(projects).where(projects.c.name == name)).first()
        return None if row is None else _project(row)

    def projects(self) -> list[ProjectInfo]:
        """The projects not deleted."""
        rows = self._conn.execute(
            select(projects).where(projects.c.deleted_at.is_(None)).order_by(projects.c.id)
        )
        return [_project(r) for r in rows]

    # -- experiments ----------------------------------------------------------------
    def experiment(self, experiment_id: str) -> ExperimentInfo | None:
        return self._experiments.by_id(experiment_id)

    def experiment_by_name(self, project_id: str, name: str) -> ExperimentInfo | None:
        return self._experiments.by_name(project_id, name)

    def experiments(self, project_id: str) -> list[ExperimentInfo]:
        """The experiments of the project not deleted."""
        return [e for e in self._experiments.in_project(project_id) if not e.deleted]

    # -- runs -----------------------------------------------------------------------
    def run(self, run_id: str) -> RunInfo | None:
        row = self._conn.execute(select(runs).where(runs.c.id == run_id)).first()
        return None if row is None else _run(row)

    def run_by_name(self, experiment_id: str, name: str) -> RunInfo | None:
        row = self._conn.execute(
            select(runs).where(runs.c.experiment_id == experiment_id, runs.c.name == name)
        ).first()
        return None if row is None else _run(row)

    def runs(
        self,
        *,
        experiment_id: str | None = None,
        parent_id: str | None = None,
        include_deleted: bool = False,
    ) -> list[RunInfo]:
        query = select(runs).order_by(runs.c.id)
        if experiment_id is not None:
            query = query.where(runs.c.experiment_id == experiment_id)
        if parent_id is not None:
            query = query.where(runs.c.parent_id == parent_id)
        if not include_deleted:
            query = query.where(runs.c.deleted_at.is_(None))
        return [_run(r) for r in self._conn.execute(query)]

    def heartbeat(self, run_ids: Iterable[str], now: int) -> int:
        """Mark each of ``run_ids`` that is running and not deleted as alive at ``now``;
        how many were. One statement per 500 runs: the check that a write may go ahead
        and the heartbeat are the same round trip."""
        wanted = list(set(run_ids))
        touched = 0
        for start in range(0, len(wanted), 500):  # stay under bound-parameter limits
            chunk: Sequence[str] = wanted[start : start + 500]
            result = self._conn.execute(
                _update_running(runs.c.id.in_(chunk)).values(heartbeat_at=now)
            )
            touched += result.rowcount
        return touched

    def runs_by_id_fragment(self, fragment: str, limit: int) -> list[RunInfo]:
        """Runs whose id (without its dashes) starts or ends with ``fragment`` (lowercase
        hex digits), at most ``limit``. A scan: ids are looked up this way by people."""
        bare = func.replace(runs.c.id, "-", "")
        query = (
            select(runs)
            .where(or_(bare.like(f"{fragment}%"), bare.like(f"%{fragment}")))
            .order_by(runs.c.id)
            .limit(limit)
        )
        return [_run(r) for r in self._conn.execute(query)]

    # -- any entity -----------------------------------------------------------------
    def kind_of(self, entity_id: str) -> EntityKind | None:
        # One statement, not one per table: ids are unique across kinds.
        query = union_all(
            *(
                select(literal(kind.value).label("kind")).where(table.c.id == entity_id)
                for kind, table in TABLES.items()
            )
        )
        row = self._conn.execute(query).first()
        return None if row is None else EntityKind(row[0])

    def touch_running(self, run_id: str, values: Mapping[str, Any]) -> bool:
        """Set ``values`` on the run if it is running and not deleted; whether it was.
        The check that a run may record and the write it makes, in one statement."""
        result = self._conn.execute(_update_running(runs.c.id == run_id).values(**values))
        return bool(result.rowcount == 1)

    def end_running(self, run_id: str, values: Mapping[str, Any]) -> RunInfo | None:
        """:meth:`touch_running`, returning the run as it now is (None if it was not
        running): ending a run in one statement."""
        row = self._conn.execute(
            _update_running(runs.c.id == run_id).values(**values).returning(*runs.c)
        ).first()
        return None if row is None else _run(row)

    def update(self, kind: EntityKind, entity_id: str, values: Mapping[str, Any]) -> bool:
        table = TABLES[kind]
        result = self._conn.execute(update(table).where(table.c.id == entity_id).values(**values))
        return bool(result.rowcount == 1)


class RunSQL:
    """The SQL of :class:`RunWriter`, built once per store in its dialect's parameter style.

    One statement inserts the run and checks its experiment (and parent) at once: the
    ``SELECT`` yields a row only if the experiment exists (and the parent is a run of the
    same project), and ``ON CONFLICT DO NOTHING`` skips a taken name, so nothing is written
    unless every rule holds. The values that are always NULL are spelled NULL: PostgreSQL
    types an untyped NULL parameter in a select list as text, which a BIGINT column refuses.
    """

    def __init__(self, placeholder: str) -> None:
        p = placeholder

        def insert_run(parent_id: str, parent_check: str) -> str:
            return (
                "INSERT INTO runs (id, experiment_id, project_id, name, description, owner, "
                "status, parent_id, start_time, end_time, created_at, updated_at, deleted_at, "
                f"heartbeat_at) SELECT {p}, e.id, e.project_id, {p}, {p}, {p}, {p}, {parent_id}, "
                f"{p}, NULL, {p}, {p}, NULL, {p} FROM experiments e "
                f"WHERE e.id = {p}{parent_check} "
                "ON CONFLICT DO NOTHING RETURNING project_id"
            )

        self.insert_root = insert_run("NULL", "")
        self.insert_child = insert_run(
            p,
            f" AND EXISTS (SELECT 1 FROM runs r WHERE r.id = {p} AND r.project_id = e.project_id)",
        )
        self.insert_tag = (
            f"INSERT INTO tags (entity_id, tag, created_at) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT DO NOTHING"
        )
        # A capture names an ingredient only if it is stored, with that kind.
        self.insert_capture = (
            f"INSERT INTO run_captures (run_id, path, kind, digest) SELECT {p}, {p}, {p}, {p} "
            f"WHERE EXISTS (SELECT 1 FROM version_objects WHERE digest = {p} AND kind = {p})"
        )


class RunWriter:
    """create_run's hot path: prebuilt SQL (:class:`RunSQL`) on a bare DB-API cursor,
    inside a transaction the store opened (``MetadataStore.run_writer``).

    SQLAlchemy's per-statement work (cache keys, execution contexts, result wrappers) costs
    several times the SQL itself here, and a run is created once per training job or sweep
    trial, thousands of times a second when a sweep starts.
    """

    def __init__(self, cursor: DBAPICursor, sql: RunSQL) -> None:
        self._cursor = cursor
        self._sql = sql

    def insert(self, row: Mapping[str, Any]) -> str | None:
        """Insert a run row (every column but ``project_id``, which comes from the
        experiment) if its experiment exists, its parent (if any) is a run of the same
        project, and its name is free in the experiment. The project id if it was
        inserted; None if any of that fails, and then nothing was written."""
        head = (row["id"], row["name"], row["description"], row["owner"], row["status"])
        times = (row["start_time"], row["created_at"], row["updated_at"], row["heartbeat_at"])
        if row["parent_id"] is None:
            self._cursor.execute(self._sql.insert_root, (*head, *times, row["experiment_id"]))
        else:
            params = (*head, row["parent_id"], *times, row["experiment_id"], row["parent_id"])
            self._cursor.execute(self._sql.insert_child, params)
        inserted = self._cursor.fetchall()  # also completes the statement (SQLite)
        return str(inserted[0][0]) if inserted else None

    def add_tags(self, run_id: str, names: Sequence[str], now: int) -> None:
        if names:
            self._cursor.executemany(self._sql.insert_tag, [(run_id, t, now) for t in names])

    def add_captures(self, run_id: str, captures: Mapping[str, tuple[str, str]]) -> str | None:
        """What the new run captured, by stored ingredients; the first path whose
        ingredient is not stored (and the caller rolls back), or None. One statement
        each: a sweep's runs name the same two or three."""
        for path, (kind, digest) in captures.items():
            self._cursor.execute(
                self._sql.insert_capture, (run_id, path, kind, digest, digest, kind)
            )
            if self._cursor.rowcount != 1:
                return path
        return None
