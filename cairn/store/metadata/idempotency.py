"""Rows of idempotency keys: which write batches were already applied."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.engine import Connection, Engine

from cairn.store.metadata import dialect
from cairn.store.metadata.schema import idempotency_keys

__all__ = ["IdempotencyRows"]


class IdempotencyRows:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self._conn = conn
        self._engine = engine

    def claim(self, key: str, now: int) -> bool:
        """Record ``key``; False if it was recorded before (the batch was applied)."""
        result = self._conn.execute(
            dialect.insert_ignore(self._engine, idempotency_keys),
            {"key": key, "created_at": now},
        )
        return bool(result.rowcount == 1)

    def forget_before(self, cutoff: int) -> None:
        self._conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff))
