"""Code run in child processes (spawn context): keep it importable and light."""

from __future__ import annotations

import traceback
from typing import Any


def _report(results: Any, index: int, body: Any) -> None:
    try:
        results.put((index, "ok", body()))
    except BaseException:
        results.put((index, "error", traceback.format_exc()))


def get_or_create(
    home: str, store: str, names: tuple[str, str, str], barrier: Any, results: Any, index: int
) -> None:
    """Set the same project, experiment and run as the other processes, at the same time."""

    def body() -> tuple[str, str, str]:
        import cairn

        with cairn.Client(home=home, store=store) as client:
            barrier.wait(60)
            project = client.set_project(names[0])
            barrier.wait(60)
            experiment = client.set_experiment(names[1])
            barrier.wait(60)
            run = client.set_experiment_run(names[2])
            return project.id, experiment.id, run.id

    _report(results, index, body)


def log_points(
    home: str, store: str, run_id: str, count: int, barrier: Any, results: Any, index: int
) -> None:
    """Log ``count`` points to a shared key (distinct steps) and to a key of one's own."""

    def body() -> int:
        import cairn

        with cairn.Client(home=home, store=store) as client:
            run = client.get_run(run_id)
            barrier.wait(60)
            for i in range(count):
                run.log_metric("shared", float(i), step=index * count + i)
                run.log_metric(f"own-{index}", float(i))
                if i % 100 == 99:
                    run.flush()  # many small batches: the processes' writes interleave
        return count

    _report(results, index, body)
