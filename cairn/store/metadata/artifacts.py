"""Rows of artifacts: (entity, key) -> digest of a file or of a tree manifest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.engine import Connection, Engine

from cairn.core.model import ArtifactInfo
from cairn.store.metadata.schema import artifacts

__all__ = ["ArtifactRows"]


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

    def put(self, entity_id: str, info: ArtifactInfo) -> None:
        """Record an artifact; logging a key again replaces what it pointed at."""
        self._conn.execute(
            delete(artifacts).where(artifacts.c.entity_id == entity_id, artifacts.c.key == info.key)
        )
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
        result = self._conn.execute(
            delete(artifacts).where(artifacts.c.entity_id == entity_id, artifacts.c.key == key)
        )
        return bool(result.rowcount)
