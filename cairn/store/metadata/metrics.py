"""Rows of metric series and their chunks of points: the hot path of logging.

A batch writes, per series, one chunk row holding packed arrays (or rewrites the
series' small tail chunk grown by them), and moves the series' latest point forward,
which search reads without touching the chunks.

A batch costs a handful of statements however many series it holds (a wide run logs
thousands of keys a step): series ids come from a cache or one lookup, every series'
latest point and tail chunk from one query, and each kind of write is one bulk
statement (``dialect.bulk_insert``, ``bulk_update``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from cairn.core.columns import SeriesPoints, pack
from cairn.core.model import MetricPoint
from cairn.store.metadata import dialect
from cairn.store.metadata.schema import metric_series

__all__ = ["MERGE_MAX", "MetricRows", "merges"]

SeriesKey = tuple[str, str]
# A tail chunk absorbs the next batch's points while both together hold at most MERGE_MAX
# points, so frequent small flushes do not leave a million one-point chunks behind. A
# merge rewrites the tail whole; kept this small, a wide run (thousands of series, a few
# points each per batch) rewrites a few times what it logs rather than up to a thousand
# times, and on PostgreSQL a chunk row stays under the ~2 KB past which every write of it
# is compressed (pglz: 100-350 µs a row).
MERGE_MAX = 64
# A history is read this many points of chunks at a time (~1.5 MB): PostgreSQL's driver
# holds a whole result in memory, so a long series must not come as one.
READ_POINTS = 1 << 16


class _Cache(Protocol):
    """The part of ``tx.SeriesCache`` this module needs."""

    def get(self, key: SeriesKey) -> int | None: ...
    def update(self, found: dict[SeriesKey, int]) -> None: ...


def _db_value(value: float) -> float | None:
    return None if math.isnan(value) else value


def merges(tail_count: int, new_count: int) -> bool:
    """Whether a tail chunk of ``tail_count`` points absorbs ``new_count`` more."""
    return tail_count + new_count <= MERGE_MAX


_CHUNK_COLUMNS = (
    ("series_id", "integer"),
    ("count", "integer"),
    ("first_step", "bigint"),
    ("first_timestamp", "bigint"),
    ("last_step", "bigint"),
    ("last_timestamp", "bigint"),
    ("steps", "bytea"),
    ("timestamps", "bytea"),
    ('"values"', "bytea"),
)
_SERIES_COLUMNS = (
    ("run_id", "text"),
    ("key", "text"),
    ("last_step", "bigint"),
    ("last_timestamp", "bigint"),
    ("last_value", "float8"),
)
_TAIL_UPDATE_COLUMNS = (
    ("id", "integer"),
    ("count", "integer"),
    ("last_step", "bigint"),
    ("last_timestamp", "bigint"),
    ("steps", "bytea"),
    ("timestamps", "bytea"),
    ('"values"', "bytea"),
)
_LATEST_COLUMNS = (
    ("id", "integer"),
    ("last_step", "bigint"),
    ("last_timestamp", "bigint"),
    ("last_value", "float8"),
)

# What the reads of a batch return (see dialect.fetch_rows).
_STATE_COLUMNS = tuple(
    (name, "int")
    for name in (
        "series_id",
        "series_step",
        "series_stamp",
        "tail_id",
        "tail_count",
        "tail_step",
        "tail_stamp",
    )
)
_TAIL_COLUMNS = (("id", "int"), ("steps", "bytes"), ("timestamps", "bytes"), ('"values"', "bytes"))
_ID_COLUMNS = (("key", "text"), ("id", "int"))


class MetricRows:
    def __init__(self, conn: Connection, engine: Engine, cache: _Cache) -> None:
        self._conn = conn
        self._engine = engine
        self._cache = cache
        self._found: dict[SeriesKey, int] = {}
        p = dialect.placeholder(engine)
        self._p = p
        ids = dialect.list_values(engine, "bigint")
        self._insert_chunks = dialect.bulk_insert(engine, "metric_chunks", _CHUNK_COLUMNS)
        self._insert_series = dialect.bulk_insert(
            engine, "metric_series", _SERIES_COLUMNS, "ON CONFLICT (run_id, key) DO NOTHING"
        )
        self._update_latest = dialect.bulk_update(engine, "metric_series", _LATEST_COLUMNS)
        self._update_tails = dialect.bulk_update(engine, "metric_chunks", _TAIL_UPDATE_COLUMNS)
        # Each listed series' latest point and its last chunk (the index on (series_id, id)
        # finds each), in one query whatever the number of series.
        self._state = (
            "SELECT s.id AS series_id, s.last_step AS series_step, "
            "s.last_timestamp AS series_stamp, c.id AS tail_id, c.count AS tail_count, "
            "c.last_step AS tail_step, c.last_timestamp AS tail_stamp "
            "FROM metric_series s LEFT JOIN metric_chunks c ON c.id = "
            "(SELECT max(m.id) FROM metric_chunks m WHERE m.series_id = s.id) "
            f"WHERE s.id IN ({ids})"
        )
        self._tails = (
            f'SELECT id, steps, timestamps, "values" FROM metric_chunks WHERE id IN ({ids})'
        )
        self._series_of_run = (
            f"SELECT key, id FROM metric_series WHERE run_id = {p} "
            f"AND key IN ({dialect.list_values(engine, 'text')})"
        )

    def _ids_param(self, ids: Iterable[int]) -> Any:
        return dialect.list_param(self._engine, list(ids))

    # -- appending ------------------------------------------------------------------
    def append(self, batch: Mapping[SeriesKey, SeriesPoints]) -> None:
        """Append each series' points; each run must exist (the caller checks)."""
        ordered = {key: points.ordered() for key, points in batch.items() if len(points)}
        if not ordered:
            return
        ids = self._series_ids(ordered)
        # PostgreSQL: the series rows stay locked until the end, so the state read here
        # holds until the writes below (SQLite's writers take turns anyway).
        dialect.lock_series(self._conn, list(ids.values()))
        state = {
            row[0]: row[1:]
            for row in dialect.fetch_rows(
                self._conn, self._state, (self._ids_param(ids.values()),), _STATE_COLUMNS
            )
        }
        chunks: list[tuple[Any, ...]] = []
        latest: list[tuple[Any, ...]] = []
        merging: dict[int, SeriesPoints] = {}  # tail chunk id -> the points it absorbs
        for key, points in ordered.items():
            series_id = ids[key]
            last_step, last_stamp, tail_id, tail_count, tail_step, tail_stamp = state[series_id]
            first = (points.steps[0], points.timestamps[0])
            if (
                tail_id is not None
                and merges(tail_count, len(points))
                and (tail_step, tail_stamp) <= first
            ):
                merging[tail_id] = points
            else:
                chunks.append(_chunk_row(series_id, points))
            # Ordered points end with the latest: highest step, then latest timestamp, the
            # last logged among equals (the sort keeps logging order). It moves forward only.
            step, stamp = points.steps[-1], points.timestamps[-1]
            if (step, stamp) >= (last_step, last_stamp):
                latest.append((series_id, step, stamp, _db_value(points.values[-1])))
        if merging:
            # In place: a reader listing a series' chunks then reading them finds each.
            self._update_tails.run(self._conn, self._grown_tails(merging))
        self._insert_chunks.run(self._conn, chunks)
        self._update_latest.run(self._conn, latest)

    def _grown_tails(self, merging: Mapping[int, SeriesPoints]) -> list[tuple[Any, ...]]:
        """UPDATE rows (``_TAIL_UPDATE_COLUMNS``) of tail chunks grown by what they absorb."""
        rows = []
        stored = dialect.fetch_rows(
            self._conn, self._tails, (self._ids_param(merging),), _TAIL_COLUMNS
        )
        for chunk_id, steps, stamps, values in stored:
            grown = SeriesPoints()
            grown.extend_packed(steps, stamps, values)
            grown.extend(merging[chunk_id])
            rows.append(
                (
                    chunk_id,
                    len(grown),
                    grown.steps[-1],
                    grown.timestamps[-1],
                    pack(grown.steps),
                    pack(grown.timestamps),
                    pack(grown.values),
                )
            )
        return rows

    def _series_ids(self, ordered: Mapping[SeriesKey, SeriesPoints]) -> dict[SeriesKey, int]:
        ids: dict[SeriesKey, int] = {}
        missing: list[SeriesKey] = []
        cache, found = self._cache, self._found
        for name in ordered:
            known = cache.get(name) or found.get(name)
            if known is None:
                missing.append(name)
            else:
                ids[name] = known
        if not missing:
            return ids
        rows = []
        for name in missing:
            points = ordered[name]
            step, stamp, value = points.steps[-1], points.timestamps[-1], points.values[-1]
            rows.append((name[0], name[1], step, stamp, _db_value(value)))
        self._insert_series.run(self._conn, rows)
        by_run: dict[str, list[str]] = {}
        for run_id, metric in missing:
            by_run.setdefault(run_id, []).append(metric)
        for run_id, keys in by_run.items():
            listed = dialect.list_param(self._engine, keys)
            for metric, series_id in dialect.fetch_rows(
                self._conn, self._series_of_run, (run_id, listed), _ID_COLUMNS
            ):
                ids[(run_id, metric)] = series_id
                found[(run_id, metric)] = series_id
        return ids

    def commit_cache(self) -> None:
        if self._found:
            self._cache.update(self._found)

    # -- reading --------------------------------------------------------------------
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
        """Every point of a series in (step, timestamp) order.

        Chunk rows are read a few megabytes at a time straight into the result's arrays,
        so a long history costs little more memory than its arrays."""
        p = self._p
        chunks: list[Any] = list(
            self._conn.exec_driver_sql(
                "SELECT c.series_id, c.id, c.count, c.first_step, c.first_timestamp, "
                "c.last_step, c.last_timestamp FROM metric_chunks c "
                "JOIN metric_series s ON s.id = c.series_id "
                f"WHERE s.run_id = {p} AND s.key = {p} ORDER BY c.id",
                (run_id, key),
            )
        )
        out = SeriesPoints()
        if not chunks:
            return out
        series_id = chunks[0][0]
        ends: list[int] = []  # where each chunk's points end in ``out``
        page_query = (
            'SELECT steps, timestamps, "values" FROM metric_chunks '
            f"WHERE series_id = {p} AND id >= {p} AND id <= {p} ORDER BY id"
        )
        for first, last in _pages(chunks):
            for steps, stamps, values in self._conn.exec_driver_sql(
                page_query, (series_id, first, last)
            ):
                out.extend_packed(steps, stamps, values)
                ends.append(len(out))
        # Chunks are each ordered; they join in order unless steps were logged out of order.
        in_order = all(
            (chunks[i - 1][5], chunks[i - 1][6]) <= (chunks[i][3], chunks[i][4])
            for i in range(1, len(chunks))
        )
        return out if in_order else _merge_runs(out, ends)


def _chunk_row(series_id: int, points: SeriesPoints) -> tuple[Any, ...]:
    return (
        series_id,
        len(points),
        points.steps[0],
        points.timestamps[0],
        points.steps[-1],
        points.timestamps[-1],
        pack(points.steps),
        pack(points.timestamps),
        pack(points.values),
    )


def _pages(chunks: list[Any]) -> Iterator[tuple[int, int]]:
    """(first id, last id) of consecutive chunks holding about READ_POINTS points each."""
    start = 0
    size = 0
    for i, row in enumerate(chunks):
        size += row[2]
        if size >= READ_POINTS or i == len(chunks) - 1:
            yield chunks[start][1], row[1]
            start, size = i + 1, 0


def _merge_runs(points: SeriesPoints, ends: list[int]) -> SeriesPoints:
    """``points``, made of ordered runs ending at ``ends``, in (step, timestamp) order;
    equal points keep their order (runs are in logging order). A merge, not a sort: it
    holds one point per run at a time, not an object per point."""
    steps, stamps = points.steps, points.timestamps

    def run(start: int, end: int) -> Iterator[tuple[int, int, int]]:
        for i in range(start, end):
            yield steps[i], stamps[i], i

    starts = [0, *ends[:-1]]
    out = SeriesPoints()
    values = points.values
    for step, stamp, i in heapq.merge(*(run(a, b) for a, b in zip(starts, ends, strict=True))):
        out.append(step, stamp, values[i])
    return out
