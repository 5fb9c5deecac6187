"""Rows of tags and attributes, on any entity."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from cairn.store.metadata import dialect
from cairn.store.metadata.scalars import attribute_copies
from cairn.store.metadata.schema import attributes, tags

__all__ = ["LabelRows"]

_COPIES = ("kind", "value_num", "value_text")


class LabelRows:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self._conn = conn
        self._engine = engine

    def add_tags(self, entity_id: str, names: Sequence[str], now: int) -> None:
        if names:
            self._conn.execute(
                dialect.insert_ignore(self._engine, tags),
                [{"entity_id": entity_id, "tag": t, "created_at": now} for t in names],
            )

    def remove_tags(self, entity_id: str, names: Sequence[str]) -> int:
        result = self._conn.execute(
            delete(tags).where(tags.c.entity_id == entity_id, tags.c.tag.in_(list(names)))
        )
        return int(result.rowcount)

    def tags(self, entity_id: str) -> list[str]:
        rows = self._conn.execute(
            select(tags.c.tag).where(tags.c.entity_id == entity_id).order_by(tags.c.tag)
        )
        return [r[0] for r in rows]

    def put_attributes(self, entity_id: str, encoded: dict[str, str], now: int) -> None:
        if not encoded:
            return
        # Delete-then-insert is an upsert both dialects do the same way.
        self._conn.execute(
            delete(attributes).where(
                attributes.c.entity_id == entity_id, attributes.c.key.in_(list(encoded))
            )
        )
        self._conn.execute(
            attributes.insert(),
            [
                {
                    "entity_id": entity_id,
                    "key": k,
                    "value_json": v,
                    "updated_at": now,
                    **dict(zip(_COPIES, attribute_copies(v), strict=True)),
                }
                for k, v in encoded.items()
            ],
        )

    def attributes(self, entity_id: str, keys: Sequence[str] | None = None) -> dict[str, str]:
        """key -> JSON text."""
        query = select(attributes.c.key, attributes.c.value_json).where(
            attributes.c.entity_id == entity_id
        )
        if keys is not None:
            query = query.where(attributes.c.key.in_(list(keys)))
        return {k: v for k, v in self._conn.execute(query.order_by(attributes.c.key))}

    def remove_attributes(self, entity_id: str, keys: Sequence[str]) -> int:
        result = self._conn.execute(
            delete(attributes).where(
                attributes.c.entity_id == entity_id, attributes.c.key.in_(list(keys))
            )
        )
        return int(result.rowcount)
