"""Filling a Cairn store with the search benchmark's runs (``benchmarks/_search_data.py``),
fast, and checking what was stored.

Through the public API each run is four or five transactions (create, hyperparameters,
attributes, metrics, end), ~10 ms a run on a loaded 2-CPU machine: 100,000 runs would take
over 15 minutes. So the runs are created by the service's ``create_run`` (with their tags),
and the rest of a chunk of runs is written in one transaction by the very store calls the
service makes for ``log_hyperparameters``, ``set_attributes``, ``log_metric_batch`` and
``end_run`` (the same encoders, the same rows), without the per-call checks. The first
``EXACT`` runs go through the service's public methods one call at a time, and
:func:`check` reads runs of both kinds back through ``find_runs`` and compares them with the
generator, so a difference between the two paths would show.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _search_data import EXPERIMENTS, PROJECT, STEPS, RunData, experiment_name, runs

import cairn
from cairn.core.columns import SeriesPoints
from cairn.core.model import RunStatus, encode_hyperparameter
from cairn.core.validation import encode_attribute
from cairn.service.tracking import TrackingService

CHUNK = 1000
EXACT = 200  # runs written through the public service calls, one by one
BASE_MS = 1_700_000_000_000  # metric timestamps: BASE_MS + index * 1000 + step


def service_of(client: cairn.Client) -> TrackingService:
    backend = client._backend
    if not isinstance(backend, TrackingService):
        raise SystemExit("fill needs an embedded client (home= or store=), not a server URL")
    return backend


def series(run: RunData, run_id: str) -> dict[tuple[str, str], SeriesPoints]:
    batch = {}
    for key, values in run.metrics.items():
        points = SeriesPoints()
        for step, value in enumerate(values):
            points.append(step, BASE_MS + run.index * 1000 + step, value)
        batch[(run_id, key)] = points
    return batch


def _exact(svc: TrackingService, experiment_id: str, run: RunData) -> None:
    info = svc.entities.create_run(experiment_id, run.name, tags=run.tags)
    svc.labels.log_hyperparameters(info.id, run.hyperparameters)
    svc.labels.set_attributes(info.id, run.attributes)
    svc.entities.end_run(info.id, metrics=series(run, info.id))


def _chunk(svc: TrackingService, experiment_ids: Sequence[str], chunk: list[RunData]) -> None:
    ids = [
        svc.entities.create_run(experiment_ids[r.experiment], r.name, tags=r.tags).id for r in chunk
    ]
    limit = svc.settings.max_attribute_bytes
    with svc.context.metadata.write() as tx:
        now = svc.context.clock()
        batch: dict[tuple[str, str], SeriesPoints] = {}
        for run, run_id in zip(chunk, ids, strict=True):
            # LabelService.log_hyperparameters and set_attributes, without their checks
            items = [(k, *encode_hyperparameter(v)) for k, v in run.hyperparameters.items()]
            tx.hyperparameters.insert_ignore(run_id, items)
            encoded = {k: encode_attribute(v, k, limit) for k, v in run.attributes.items()}
            tx.labels.put_attributes(run_id, encoded, now)
            batch.update(series(run, run_id))
        tx.metrics.append(batch)  # MetricService.log_metric_batch
        ended = {"status": RunStatus.FINISHED.value, "end_time": now, "updated_at": now}
        for run_id in ids:  # EntityService.end_run
            if tx.entities.end_running(run_id, ended) is None:
                raise RuntimeError(f"run {run_id} was not running")


def experiments(svc: TrackingService) -> list[str]:
    project = svc.entities.set_project(PROJECT)
    return [
        svc.entities.set_experiment(project.id, experiment_name(k)).id for k in range(EXPERIMENTS)
    ]


def fill(client: cairn.Client, n: int, say: Callable[[str], None], jobs: int = 1) -> float:
    """Runs 0..n-1 (the store holds none of them yet); seconds taken. ``jobs``: chunks
    written side by side (PostgreSQL, where a chunk mostly waits for round trips; SQLite
    has one writer at a time)."""
    svc = service_of(client)
    experiment_ids = experiments(svc)
    started = time.perf_counter()
    last = started
    exact = min(EXACT, n)
    for run in runs(0, exact):
        _exact(svc, experiment_ids[run.experiment], run)

    def write(start: int) -> int:
        stop = min(n, start + CHUNK)
        _chunk(svc, experiment_ids, list(runs(start, stop)))
        return stop - start

    done = exact
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for count in pool.map(write, range(exact, n, CHUNK)):
            done += count
            if time.perf_counter() - last > 15:
                last = time.perf_counter()
                say(f"  {done:,} runs stored, {done / (last - started):,.0f} runs/s")
    return time.perf_counter() - started


def expected(run: RunData) -> dict[str, Any]:
    return {
        "name": run.name,
        "hyperparameters": run.hyperparameters,
        "metrics": run.latest(),
        "tags": sorted(run.tags),
        "attributes": run.attributes,
    }


def stored(record: Any) -> dict[str, Any]:
    return {
        "name": record.info.name,
        "hyperparameters": dict(record.hyperparameters),
        "metrics": dict(record.metrics),
        "tags": sorted(record.tags),
        "attributes": dict(record.attributes),
    }


def check(client: cairn.Client, n: int, seed_indexes: Sequence[int] = ()) -> str:
    """Reads runs back (some written one call at a time, some in chunks, the last one),
    compares them with the generator, and checks the count and a history; a summary."""
    from _search_data import make_run

    picks = sorted(
        {0, 1, min(EXACT, n) - 1, min(EXACT, n), n // 2, n - 1, *seed_indexes} & set(range(n))
    )
    names = ", ".join(f"'{make_run(i).name}'" for i in picks)
    page = client.find_runs(f"name in ({names})", limit=len(picks) * EXPERIMENTS)
    found = {r.info.name: r for r in page.items}
    for i in picks:
        run = make_run(i)
        record = found.get(run.name)
        if record is None:
            raise AssertionError(f"run {run.name} is missing")
        if record.info.status is not RunStatus.FINISHED:
            raise AssertionError(f"run {run.name} is {record.info.status}")
        got, want = stored(record), expected(run)
        if got != want:
            raise AssertionError(f"run {run.name} differs:\n stored   {got}\n expected {want}")
    history = client._backend.metrics.get_metric_history(found[make_run(picks[-1]).name].id, "acc")
    want_history = make_run(picks[-1]).metrics["acc"]
    if len(history) != STEPS or any(
        not math.isclose(a, b, rel_tol=0, abs_tol=0)
        for a, b in zip(history.values, want_history, strict=True)
    ):
        raise AssertionError("the acc history differs")
    total = client.count_runs("")
    if total != n:
        raise AssertionError(f"{total:,} runs stored, expected {n:,}")
    return f"{total:,} runs; runs {picks} read back equal to the generator"
