"""Rows of metric series and their chunks of points: the hot path of logging.

A batch writes, per series, one chunk row holding packed arrays (or grows the
series' small tail chunk), plus a conditional update of the series' latest
point, which search reads without touching the chunks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from cairn.core.columns import SeriesPoints, concat, pack, unpack
from cairn.core.model import MetricPoint
from cairn.store.metadata import dialect
from cairn.store.metadata.schema import metric_series

__all__ = ["MERGE_BELOW", "MetricRows"]

SeriesKey = tuple[str, str]
# A tail chunk smaller than this absorbs the next batch, so frequent small flushes
# do not leave a million one-point chunks behind (rewriting at most ~100 KB).
MERGE_BELOW = 4096


class _Cache(Protocol):
    """The part of ``tx.SeriesCache`` this module needs."""

    def get(self, key: SeriesKey) -> int | None: ...
    def update(self, found: dict[SeriesKey, int]) -> None: ...


def _db_value(value: float) -> float | None:
    return None if math.isnan(value) else value


class MetricRows:
    def __init__(self, conn: Connection, engine: Engine, cache: _Cache) -> None:
        self._conn = conn
        self._engine = engine
        self._cache = cache
        self._found: dict[SeriesKey, int] = {}
        p = dialect.placeholder(engine)
        self._p = p
        self._insert_chunk = (
            "INSERT INTO metric_chunks (series_id, count, first_step, first_timestamp, "
            'last_step, last_timestamp, steps, timestamps, "values") '
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
        )
        self._tail = (
            "SELECT id, count, last_step, last_timestamp FROM metric_chunks "
            f"WHERE series_id = {p} ORDER BY id DESC LIMIT 1"
        )
        # Move the latest point forward only: highest step, then latest timestamp.
        self._update_latest = (
            f"UPDATE metric_series SET last_step = {p}, last_timestamp = {p}, last_value = {p} "
            f"WHERE id = {p} AND (last_step < {p} OR (last_step = {p} AND last_timestamp <= {p}))"
        )

    def append(self, batch: Mapping[SeriesKey, SeriesPoints]) -> None:
        """Append each series' points; each run must exist (the caller checks)."""
        batch = {key: points for key, points in batch.items() if len(points)}
        latest = {key: points.latest() for key, points in batch.items()}
        ids = self._series_ids(latest)
        dialect.lock_series(self._conn, list(ids.values()))
        for key, points in batch.items():
            self._append_series(ids[key], points.ordered())
        self._conn.exec_driver_sql(
            self._update_latest,
            [
                (p.step, p.timestamp, _db_value(p.value), ids[key], p.step, p.step, p.timestamp)
                for key, p in latest.items()
            ],
        )

    def _append_series(self, series_id: int, points: SeriesPoints) -> None:
        tail = self._conn.exec_driver_sql(self._tail, (series_id,)).first()
        first = (points.steps[0], points.timestamps[0])
        if tail is not None and tail[1] < MERGE_BELOW and (tail[2], tail[3]) <= first:
            stored = self._chunk_points(tail[0])
            stored.extend(points)
            p = self._p
            self._conn.exec_driver_sql(
                f"UPDATE metric_chunks SET count = {p}, last_step = {p}, last_timestamp = {p}, "
                f'steps = {p}, timestamps = {p}, "values" = {p} WHERE id = {p}',
                (
                    len(stored),
                    stored.steps[-1],
                    stored.timestamps[-1],
                    pack(stored.steps),
                    pack(stored.timestamps),
                    pack(stored.values),
                    tail[0],
                ),
            )
            return
        self._conn.exec_driver_sql(
            self._insert_chunk,
            (
                series_id,
                len(points),
                points.steps[0],
                points.timestamps[0],
                points.steps[-1],
                points.timestamps[-1],
                pack(points.steps),
                pack(points.timestamps),
                pack(points.values),
            ),
        )

    def _chunk_points(self, chunk_id: int) -> SeriesPoints:
        row = self._conn.exec_driver_sql(
            f'SELECT steps, timestamps, "values" FROM metric_chunks WHERE id = {self._p}',
            (chunk_id,),
        ).one()
        return SeriesPoints(unpack("q", row[0]), unpack("q", row[1]), unpack("d", row[2]))

    def _series_ids(self, latest: Mapping[SeriesKey, MetricPoint]) -> dict[SeriesKey, int]:
        ids: dict[SeriesKey, int] = {}
        missing: dict[SeriesKey, MetricPoint] = {}
        for key, point in latest.items():
            known = self._cache.get(key) or self._found.get(key)
            if known is None:
                missing[key] = point
            else:
                ids[key] = known
        if not missing:
            return ids
        self._conn.execute(
            dialect.insert_ignore(self._engine, metric_series),
            [
                {
                    "run_id": run_id,
                    "key": key,
                    "last_step": p.step,
                    "last_timestamp": p.timestamp,
                    "last_value": _db_value(p.value),
                }
                for (run_id, key), p in missing.items()
            ],
        )
        by_run: dict[str, list[str]] = {}
        for run_id, name in missing:
            by_run.setdefault(run_id, []).append(name)
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
            k: MetricPoint(s, t, math.nan if v is None else v)
            for k, s, t, v in self._conn.execute(query.order_by(metric_series.c.key))
        }

    def history(self, run_id: str, key: str) -> SeriesPoints:
        """Every point of a series in (step, timestamp) order."""
        p = self._p
        rows: list[Any] = list(
            self._conn.exec_driver_sql(
                "SELECT c.first_step, c.first_timestamp, c.last_step, c.last_timestamp, "
                'c.steps, c.timestamps, c."values" FROM metric_chunks c '
                "JOIN metric_series s ON s.id = c.series_id "
                f"WHERE s.run_id = {p} AND s.key = {p} ORDER BY c.id",
                (run_id, key),
            )
        )
        if not rows:
            return SeriesPoints()
        parts = [
            SeriesPoints(unpack("q", r[4]), unpack("q", r[5]), unpack("d", r[6])) for r in rows
        ]
        merged = concat(parts)
        # Chunks are each ordered; they join in order unless steps were logged out of order.
        in_order = all(
            (rows[i - 1][2], rows[i - 1][3]) <= (rows[i][0], rows[i][1])
            for i in range(1, len(rows))
        )
        return merged if in_order else merged.ordered()
