"""Rows of an entity kind whose names are unique within its project (experiments,
repositories, and the aggregates to come): by id, by name, and all of a project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Table, select
from sqlalchemy.engine import Connection

__all__ = ["ProjectNamed"]

T = TypeVar("T")


class ProjectNamed(Generic[T]):
    """Reads of ``table`` (columns ``id``, ``project_id``, ``name``), each row made a value
    by ``convert``."""

    def __init__(self, conn: Connection, table: Table, convert: Callable[[Row[Any]], T]) -> None:
        self._conn = conn
        self._table = table
        self._convert = convert

    def by_id(self, entity_id: str) -> T | None:
        row = self._conn.execute(select(self._table).where(self._table.c.id == entity_id)).first()
        return None if row is None else self._convert(row)

    def by_name(self, project_id: str, name: str) -> T | None:
        c = self._table.c
        row = self._conn.execute(
            select(self._table).where(c.project_id == project_id, c.name == name)
        ).first()
        return None if row is None else self._convert(row)

    def in_project(self, project_id: str) -> list[T]:
        """In creation order (ids are UUIDv7)."""
        c = self._table.c
        rows = self._conn.execute(
            select(self._table).where(c.project_id == project_id).order_by(c.id)
        )
        return [self._convert(r) for r in rows]
