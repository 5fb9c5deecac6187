"""Rows of run hyperparameters, stored as (kind, canonical text) to keep types exact."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from cairn.store.metadata import dialect
from cairn.store.metadata.scalars import hyperparameter_int
from cairn.store.metadata.schema import hyperparameters

__all__ = ["EncodedHyperparameter", "HyperparameterRows"]

# (key, kind, text, numeric value)
EncodedHyperparameter = tuple[str, str, str, float | None]


class HyperparameterRows:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self._conn = conn
        self._engine = engine

    def insert_ignore(self, run_id: str, items: Sequence[EncodedHyperparameter]) -> None:
        if not items:
            return
        self._conn.execute(
            dialect.insert_ignore(self._engine, hyperparameters),
            [_row(run_id, item) for item in items],
        )

    def insert_new(self, run_id: str, items: Sequence[EncodedHyperparameter]) -> int:
        """Insert the keys the run does not have yet; how many were new. One statement
        per 1,000 keys (multi-row VALUES, whose row count every driver reports)."""
        inserted = 0
        for start in range(0, len(items), 1000):
            rows = [_row(run_id, item) for item in items[start : start + 1000]]
            stmt = dialect.insert_ignore(self._engine, hyperparameters).values(rows)
            inserted += self._conn.execute(stmt).rowcount
        return inserted

    def replace(self, run_id: str, items: Sequence[EncodedHyperparameter]) -> None:
        if not items:
            return
        self._conn.execute(
            update(hyperparameters)
            .where(
                hyperparameters.c.run_id == run_id,
                hyperparameters.c.key == bindparam("k"),
            )
            .values(
                kind=bindparam("kind"),
                value_text=bindparam("t"),
                value_num=bindparam("n"),
                value_int=bindparam("i"),
            ),
            [
                {"k": k, "kind": kind, "t": t, "n": n, "i": hyperparameter_int(kind, t)}
                for k, kind, t, n in items
            ],
        )

    def of_run(self, run_id: str, keys: Sequence[str] | None = None) -> dict[str, tuple[str, str]]:
        """key -> (kind, text)."""
        query = select(
            hyperparameters.c.key, hyperparameters.c.kind, hyperparameters.c.value_text
        ).where(hyperparameters.c.run_id == run_id)
        if keys is not None:
            query = query.where(hyperparameters.c.key.in_(list(keys)))
        return {k: (kind, t) for k, kind, t in self._conn.execute(query.order_by("key"))}


def _row(run_id: str, item: EncodedHyperparameter) -> dict[str, object]:
    key, kind, text, number = item
    return {
        "run_id": run_id,
        "key": key,
        "kind": kind,
        "value_text": text,
        "value_num": number,
        "value_int": hyperparameter_int(kind, text),
    }
