"""The metric rows of the store, on SQLite and PostgreSQL: a batch of thousands of series
in a few statements, tail chunks that absorb small batches, latest points that only move
forward, and histories read in pages and merged when chunks overlap."""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.core.columns import SeriesPoints
from cairn.core.model import MetricPoint
from cairn.store.metadata import MetadataStore
from cairn.store.metadata import metrics as metric_rows

Point = tuple[int, int, float]


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
def run_id(store_url: str, tmp_path: Path) -> str:
    """A run to log to (made by a client: the store takes the runs as they are)."""
    with cairn.Client(home=tmp_path / "home", store=store_url) as client:
        return client.start_run().id


def series(points: Sequence[Point]) -> SeriesPoints:
    return SeriesPoints(
        array("q", [p[0] for p in points]),
        array("q", [p[1] for p in points]),
        array("d", [p[2] for p in points]),
    )


def append(store: MetadataStore, batch: dict[tuple[str, str], SeriesPoints]) -> None:
    with store.write() as tx:
        tx.metrics.append(batch)


def history(store: MetadataStore, run_id: str, key: str) -> list[Point]:
    with store.read() as tx:
        found = tx.metrics.history(run_id, key)
    return list(zip(found.steps, found.timestamps, found.values, strict=True))


def latest(store: MetadataStore, run_id: str) -> dict[str, MetricPoint]:
    with store.read() as tx:
        return tx.metrics.latest(run_id)


def chunk_counts(store: MetadataStore, run_id: str, key: str) -> list[int]:
    with store.read() as tx:
        rows = tx.conn.exec_driver_sql(
            f"SELECT c.count FROM metric_chunks c JOIN metric_series s ON s.id = c.series_id "
            f"WHERE s.run_id = {store.placeholder} AND s.key = {store.placeholder} "
            "ORDER BY c.id",
            (run_id, key),
        )
        return [int(count) for (count,) in rows]


def test_a_wide_batch_lands_whole(store: MetadataStore, run_id: str) -> None:
    keys = [f"layer{i}.norm" for i in range(1_234)]  # more than one statement's rows
    for step in range(0, 9, 3):
        append(
            store,
            {
                (run_id, key): series([(s, 10 + s, i + s / 10) for s in range(step, step + 3)])
                for i, key in enumerate(keys)
            },
        )
    for i in (0, 617, 1_233):
        assert history(store, run_id, keys[i]) == [(s, 10 + s, i + s / 10) for s in range(9)]
        assert chunk_counts(store, run_id, keys[i]) == [9]  # small batches: one chunk
    found = latest(store, run_id)
    assert len(found) == len(keys)
    assert found[keys[5]] == MetricPoint(8, 18, 5.8)


def test_more_series_than_sqlite_takes_parameters(store: MetadataStore, run_id: str) -> None:
    keys = [f"k{i}" for i in range(33_000)]  # SQLite: at most 32,766 parameters a statement
    append(store, {(run_id, key): series([(0, 1, float(i))]) for i, key in enumerate(keys)})
    append(store, {(run_id, key): series([(1, 2, -float(i))]) for i, key in enumerate(keys)})
    found = latest(store, run_id)
    assert len(found) == len(keys)
    assert found["k32999"] == MetricPoint(1, 2, -32999.0)
    assert history(store, run_id, "k123") == [(0, 1, 123.0), (1, 2, -123.0)]


def test_a_tail_chunk_absorbs_small_batches_only(store: MetadataStore, run_id: str) -> None:
    most = metric_rows.MERGE_MAX
    name = (run_id, "loss")
    logged: list[Point] = []
    for step in range(most + 3):  # one point a batch
        logged.append((step, step, step / 2))
        append(store, {name: series([logged[-1]])})
    assert chunk_counts(store, run_id, "loss") == [most, 3]
    big = [(s, s, 0.0) for s in range(most + 3, 2 * most + 3)]
    append(store, {name: series(big)})  # too many to absorb: a chunk of its own
    assert chunk_counts(store, run_id, "loss") == [most, 3, most]
    assert history(store, run_id, "loss") == logged + big


def test_the_latest_point_only_moves_forward(store: MetadataStore, run_id: str) -> None:
    name = (run_id, "x")
    append(store, {name: series([(5, 100, 1.0), (3, 200, 2.0)])})
    assert latest(store, run_id)["x"] == MetricPoint(5, 100, 1.0)
    append(store, {name: series([(4, 300, 3.0)])})  # an older step: not the latest
    assert latest(store, run_id)["x"] == MetricPoint(5, 100, 1.0)
    append(store, {name: series([(5, 100, math.inf)])})  # equal: the last logged wins
    assert latest(store, run_id)["x"] == MetricPoint(5, 100, math.inf)
    append(store, {name: series([(6, 0, math.nan), (6, 0, -math.inf)])})
    assert latest(store, run_id)["x"] == MetricPoint(6, 0, -math.inf)
    append(store, {name: series([(7, 0, math.nan)])})
    assert math.isnan(latest(store, run_id)["x"].value)


def test_overlapping_chunks_read_in_order(store: MetadataStore, run_id: str) -> None:
    name = (run_id, "x")
    batches = [
        [(s, 1, float(s)) for s in range(0, 200, 2)],  # even steps
        [(s, 1, -float(s)) for s in range(1, 200, 2)],  # then odd ones: chunks overlap
        [(10, 1, 0.5), (10, 0, 0.25), (300, 0, 3.0)],
        [(10, 1, 0.75)],  # equal to earlier points: after them, in logging order
    ]
    for batch in batches:
        append(store, {name: series(batch)})
    logged = [p for batch in batches for p in batch]
    assert history(store, run_id, "x") == sorted(logged, key=lambda p: (p[0], p[1]))


def test_a_long_history_is_read_in_pages(
    store: MetadataStore, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metric_rows, "READ_POINTS", 250)
    name = (run_id, "loss")
    logged = [(s, 7, s * 0.5) for s in range(1_000)]
    for start in range(0, 1_000, 90):
        append(store, {name: series(logged[start : start + 90])})
    assert history(store, run_id, "loss") == logged
    assert history(store, run_id, "never") == []


def test_concurrent_writers_lose_no_points(store_url: str, run_id: str) -> None:
    """Tail chunks are rewritten: two writers must not both grow the same old tail."""
    stores = [MetadataStore(store_url) for _ in range(3)]
    keys = ["a", "b", "c"]

    def write(n: int, store: MetadataStore) -> None:
        for i in range(40):
            step = n * 1000 + i
            append(store, {(run_id, k): series([(step, step, float(step))]) for k in keys})

    threads = [threading.Thread(target=write, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for key in keys:
            steps = [p[0] for p in history(stores[0], run_id, key)]
            assert steps == sorted(n * 1000 + i for n in range(3) for i in range(40))
    finally:
        for opened in stores:
            opened.close()


def test_a_tail_grown_during_a_read_is_not_lost(
    store_url: str, store: MetadataStore, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A history lists its chunks, then reads them: a tail chunk that grows in between
    (PostgreSQL reads each statement afresh) must still be found."""
    name = (run_id, "x")
    append(store, {name: series([(0, 0, 0.5)])})
    other = MetadataStore(store_url)
    pages = metric_rows._pages

    def pages_then_grow(chunks: list[Any]) -> Iterator[tuple[int, int]]:
        append(other, {name: series([(1, 0, 1.5)])})  # absorbed by the tail, committed
        yield from pages(chunks)

    monkeypatch.setattr(metric_rows, "_pages", pages_then_grow)
    try:
        found = history(store, run_id, "x")
    finally:
        other.close()
    assert found in ([(0, 0, 0.5)], [(0, 0, 0.5), (1, 0, 1.5)])
    assert chunk_counts(store, run_id, "x") == [2]
