"""Rows of metric series and points: the hot path of logging.

Points go in with one DB-API ``executemany`` of plain tuples (no per-row ORM or
dict work); each series keeps its latest point in ``metric_series`` so search
never scans the points. NaN is stored as NULL, the one encoding SQLite allows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from cairn.core.model import MetricPoint, MetricRecord
from cairn.store.metadata import dialect
from cairn.store.metadata.schema import metric_series

__all__ = ["MetricRows"]

_NAN = math.nan
SeriesKey = tuple[str, str]


class _Cache(Protocol):
    """The part of ``tx.SeriesCache`` this module needs."""

    def get(self, key: SeriesKey) -> int | None: ...
    def update(self, found: dict[SeriesKey, int]) -> None: ...


class MetricRows:
    def __init__(self, conn: Connection, engine: Engine, cache: _Cache) -> None:
        self._conn = conn
        self._engine = engine
        self._cache = cache
        self._found: dict[SeriesKey, int] = {}
        p = dialect.placeholder(engine)
        self._insert_points = (
            f"INSERT INTO metric_points (series_id, step, timestamp, value) "
            f"VALUES ({p}, {p}, {p}, {p})"
        )
        # Move the latest point forward only: highest step, then latest timestamp.
        self._update_latest = (
            f"UPDATE metric_series SET last_step = {p}, last_timestamp = {p}, last_value = {p} "
            f"WHERE id = {p} AND (last_step < {p} OR (last_step = {p} AND last_timestamp <= {p}))"
        )

    def append(self, records: Sequence[MetricRecord]) -> None:
        """Append points; each record's run must exist (the caller checks)."""
        latest: dict[SeriesKey, MetricRecord] = {}
        for rec in records:
            key = (rec.run_id, rec.key)
            best = latest.get(key)
            if best is None or (rec.step, rec.timestamp) >= (best.step, best.timestamp):
                latest[key] = rec
        ids = self._series_ids(latest)
        self._conn.exec_driver_sql(
            self._insert_points,
            [
                (
                    ids[(r.run_id, r.key)],
                    r.step,
                    r.timestamp,
                    r.value if r.value == r.value else None,
                )
                for r in records
            ],
        )
        self._conn.exec_driver_sql(
            self._update_latest,
            [
                (
                    r.step,
                    r.timestamp,
                    r.value if r.value == r.value else None,
                    ids[key],
                    r.step,
                    r.step,
                    r.timestamp,
                )
                for key, r in latest.items()
            ],
        )

    def _series_ids(self, latest: dict[SeriesKey, MetricRecord]) -> dict[SeriesKey, int]:
        ids: dict[SeriesKey, int] = {}
        missing: list[MetricRecord] = []
        for key, rec in latest.items():
            known = self._cache.get(key) or self._found.get(key)
            if known is None:
                missing.append(rec)
            else:
                ids[key] = known
        if missing:
            self._conn.execute(
                dialect.insert_ignore(self._engine, metric_series),
                [
                    {
                        "run_id": r.run_id,
                        "key": r.key,
                        "last_step": r.step,
                        "last_timestamp": r.timestamp,
                        "last_value": r.value if r.value == r.value else None,
                    }
                    for r in missing
                ],
            )
            by_run: dict[str, list[str]] = {}
            for r in missing:
                by_run.setdefault(r.run_id, []).append(r.key)
            for run_id, keys in by_run.items():
                rows = self._conn.execute(
                    select(metric_series.c.key, metric_series.c.id).where(
                        metric_series.c.run_id == run_id, metric_series.c.key.in_(keys)
                    )
                )
                for key, series_id in rows:
                    ids[(run_id, key)] = series_id
                    self._found[(run_id, key)] = series_id
        return ids

    def commit_cache(self) -> None:
        if self._found:
            self._cache.update(self._found)

    def latest(self, run_id: str, keys: Iterable[str] | None = None) -> dict[str, MetricPoint]:
        query = select(
            metric_series.c.key,
            metric_series.c.last_step,
            metric_series.c.last_timestamp,
            metric_series.c.last_value,
        ).where(metric_series.c.run_id == run_id)
        if keys is not None:
            query = query.where(metric_series.c.key.in_(list(keys)))
        return {
            k: MetricPoint(s, t, _NAN if v is None else v)
            for k, s, t, v in self._conn.execute(query.order_by(metric_series.c.key))
        }

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        series = self._conn.execute(
            select(metric_series.c.id).where(
                metric_series.c.run_id == run_id, metric_series.c.key == key
            )
        ).first()
        if series is None:
            return []
        p = dialect.placeholder(self._engine)
        cursor = self._conn.exec_driver_sql(
            f"SELECT step, timestamp, value FROM metric_points WHERE series_id = {p} "
            "ORDER BY step, timestamp",
            (series[0],),
        )
        make = MetricPoint._make
        return [
            make(row) if row[2] is not None else MetricPoint(row[0], row[1], _NAN)
            for row in cursor.fetchall()
        ]
