"""Several processes on one store: get-or-create gives one entity, and concurrent
metric logging loses nothing."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cairn

from . import _workers
from .conftest import MakeClient

PROCESSES = 4
TIMEOUT = 120


def run_processes(target: Callable[..., None], args: tuple[Any, ...], n: int) -> list[Any]:
    """Start ``n`` spawned processes on ``target(*args, barrier, results, index)`` and
    return what each reported, in index order; a failure in any of them fails the test."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args, barrier, results, i), daemon=True) for i in range(n)
    ]
    for proc in procs:
        proc.start()
    reports: dict[int, Any] = {}
    errors: list[str] = []
    try:
        for _ in range(n):
            try:
                index, outcome, body = results.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"only {len(reports) + len(errors)} of {n} reported") from None
            if outcome == "ok":
                reports[index] = body
            else:
                errors.append(f"process {index}:\n{body}")
    finally:
        for proc in procs:
            proc.join(TIMEOUT)
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert not errors, "\n".join(errors)
    assert all(proc.exitcode == 0 for proc in procs)
    return [reports[i] for i in range(n)]


def test_get_or_create_is_race_safe_between_processes(
    open_client: MakeClient, home: Path, store_url: str
) -> None:
    open_client().close()  # the schema exists; the race is about the entities
    names = ("race project 🏁", "race experiment", "race run")
    reports = run_processes(_workers.get_or_create, (str(home), store_url, names), PROCESSES)
    assert len(set(reports)) == 1, reports
    project_id, experiment_id, run_id = reports[0]

    client = open_client()
    [project] = client.list_projects()
    assert (project.id, project.name) == (project_id, names[0])
    [experiment] = project.list_experiments()
    assert (experiment.id, experiment.name) == (experiment_id, names[1])
    [run] = experiment.list_runs()
    assert (run.id, run.name) == (run_id, names[2])


def test_processes_logging_to_one_run_lose_nothing(
    open_client: MakeClient, home: Path, store_url: str
) -> None:
    count = 1000
    client = open_client()
    run = client.set_experiment_run("shared")
    reports = run_processes(_workers.log_points, (str(home), store_url, run.id, count), PROCESSES)
    assert reports == [count] * PROCESSES

    reader = open_client().get_run(run.id)
    shared = reader.get_metric_history("shared")
    assert len(shared) == PROCESSES * count
    assert [p.step for p in shared] == list(range(PROCESSES * count))
    assert [p.value for p in shared] == [float(i) for _ in range(PROCESSES) for i in range(count)]
    for index in range(PROCESSES):
        own = reader.get_metric_history(f"own-{index}")
        assert [(p.step, p.value) for p in own] == [(i, float(i)) for i in range(count)]
    latest = reader.get_metrics_latest()
    assert latest["shared"].step == PROCESSES * count - 1
    assert latest["shared"].value == float(count - 1)
    assert isinstance(run, cairn.Run)
