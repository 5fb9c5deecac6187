"""Rows of artifacts: (entity, key) -> digest of a file or of a tree manifest; and each
project's usage (``project_storage``: the sizes of the artifacts of the project, its
experiments and its runs), moved in the same transaction as the rows it sums.

A store that had artifacts before usage was kept gets a project's row the first time the
project is asked about: summed from its artifacts then, kept up to date from there on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, func, literal, or_, select, union_all, update
from sqlalchemy.engine import Connection, Engine

from cairn.core.errors import QuotaExceeded
from cairn.core.model import ArtifactInfo
from cairn.store.metadata import dialect
from cairn.store.metadata.schema import artifacts, experiments, project_storage, projects, runs

__all__ = ["ArtifactRows", "check_room"]


def check_room(project_id: str, used: int, quota: int | None, incoming: int) -> int | None:
    """Bytes the project may still take (None: no quota); ``QuotaExceeded`` if ``incoming``
    more bytes do not fit."""
    if quota is None:
        return None
    if used + incoming > quota:
        raise QuotaExceeded(
            f"project {project_id}: its artifacts hold {used} bytes of its quota of {quota} "
            f"(CAIRN_PROJECT_QUOTA_BYTES); {incoming} more do not fit",
            project_id=project_id,
            quota=quota,
            used=used,
            incoming=incoming,
        )
    return quota - used - incoming


def _info(row: Row[Any]) -> ArtifactInfo:
    m = row._mapping
    return ArtifactInfo(
        key=m["key"],
        kind=m["kind"],
        digest=m["digest"],
        size=m["size"],
        file_count=m["file_count"],
        created_at=m["created_at"],
    )


class ArtifactRows:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self._conn = conn
        self._engine = engine

    def put(self, entity_id: str, info: ArtifactInfo, *, quota: int | None = None) -> None:
        """Record an artifact; logging a key again replaces what it pointed at. The
        project's usage moves by the difference; if it grows past ``quota``,
        ``QuotaExceeded`` (the caller's transaction then writes nothing)."""
        project_id = self.project_of(entity_id)
        if project_id is not None:
            self.usage(project_id, keep=True)  # counted before this row changes
        replaced = self._conn.execute(
            delete(artifacts)
            .where(artifacts.c.entity_id == entity_id, artifacts.c.key == info.key)
            .returning(artifacts.c.size)
        ).scalar()
        self._conn.execute(
            artifacts.insert(),
            [
                {
                    "entity_id": entity_id,
                    "key": info.key,
                    "kind": info.kind,
                    "digest": info.digest,
                    "size": info.size,
                    "file_count": info.file_count,
                    "created_at": info.created_at,
                }
            ],
        )
        grown = info.size - (replaced or 0)
        if project_id is None or not grown:
            return
        used = self._add(project_id, grown)
        if grown > 0:
            check_room(project_id, used - grown, quota, grown)

    def usage(self, project_id: str, *, keep: bool = False) -> int:
        """Bytes the project's artifacts hold; ``keep``: a store that has no row for it yet
        writes the sum it found (inside a write transaction only)."""
        used = self._conn.execute(
            select(project_storage.c.bytes).where(project_storage.c.project_id == project_id)
        ).scalar()
        if used is not None:
            return int(used)
        total = int(self._conn.execute(self._sum(project_id)).scalar_one())
        if not keep:
            return total
        # A concurrent first writer may have inserted the row meanwhile: its count wins
        # (it was made from the same rows, or later ones), and it is read back.
        self._conn.execute(
            dialect.insert_ignore(self._engine, project_storage),
            [{"project_id": project_id, "bytes": total}],
        )
        return int(
            self._conn.execute(
                select(project_storage.c.bytes).where(project_storage.c.project_id == project_id)
            ).scalar_one()
        )

    def project_of(self, entity_id: str) -> str | None:
        """The project an entity (project, experiment or run) belongs to."""
        query = union_all(
            select(projects.c.id).where(projects.c.id == entity_id),
            select(experiments.c.project_id).where(experiments.c.id == entity_id),
            select(runs.c.project_id).where(runs.c.id == entity_id),
        )
        return self._conn.execute(query).scalar()

    def _add(self, project_id: str, delta: int) -> int:
        return int(
            self._conn.execute(
                update(project_storage)
                .where(project_storage.c.project_id == project_id)
                .values(bytes=project_storage.c.bytes + delta)
                .returning(project_storage.c.bytes)
            ).scalar_one()
        )

    @staticmethod
    def _sum(project_id: str) -> Any:
        of_experiments = select(experiments.c.id).where(experiments.c.project_id == project_id)
        of_runs = select(runs.c.id).where(runs.c.experiment_id.in_(of_experiments))
        return select(func.coalesce(func.sum(artifacts.c.size), literal(0))).where(
            or_(
                artifacts.c.entity_id == project_id,
                artifacts.c.entity_id.in_(of_experiments),
                artifacts.c.entity_id.in_(of_runs),
            )
        )

    def get(self, entity_id: str, key: str) -> ArtifactInfo | None:
        row = self._conn.execute(
            select(artifacts).where(artifacts.c.entity_id == entity_id, artifacts.c.key == key)
        ).first()
        return None if row is None else _info(row)

    def of_entity(self, entity_id: str) -> list[ArtifactInfo]:
        rows = self._conn.execute(
            select(artifacts).where(artifacts.c.entity_id == entity_id).order_by(artifacts.c.key)
        )
        return [_info(r) for r in rows]

    def remove(self, entity_id: str, key: str) -> bool:
        """Forget an artifact (its bytes stay in the object store); the project's usage
        goes down by its size."""
        project_id = self.project_of(entity_id)
        if project_id is not None:
            self.usage(project_id, keep=True)  # counted before, so the subtraction is right
        size = self._conn.execute(
            delete(artifacts)
            .where(artifacts.c.entity_id == entity_id, artifacts.c.key == key)
            .returning(artifacts.c.size)
        ).scalar()
        if size is None:
            return False
        if project_id is not None and size:
            self._add(project_id, -size)
        return True
