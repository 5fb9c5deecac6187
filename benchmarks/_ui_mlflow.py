"""MLflow's side of the chart benchmark, run by MLflow's own Python (``/work/peers/mlflow``)::

    /work/peers/mlflow/bin/python benchmarks/_ui_mlflow.py DB N

Makes an experiment and a run in the SQLite store ``DB`` through ``MlflowClient`` (its first
point logged by ``log_metric``, so MLflow keeps its latest value), then inserts the other
points of the same series as ``ui_charts.py`` logs to Cairn straight into MLflow's
``metrics`` table (``log_batch`` takes 1,000 points a call: a million would take minutes).
NaN is stored as MLflow stores it (value 0, ``is_nan`` true). Prints the run id.
"""

from __future__ import annotations

import math
import sqlite3
import sys

from mlflow import MlflowClient


def value(i: int, n: int) -> float:
    if i == n // 3:
        return 50.0
    if i == n // 2:
        return math.nan
    return math.sin(i / 5000) + (i % 97) / 970


def main() -> None:
    db, n = sys.argv[1], int(sys.argv[2])
    start = 1_700_000_000_000
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.create_experiment("charts")
    run_id = client.create_run(experiment).info.run_id
    client.log_metric(run_id, "loss", value(0, n), timestamp=start, step=0)
    with sqlite3.connect(db) as con:
        rows = (
            ("loss", 0.0 if math.isnan(v) else v, start + i, run_id, i, math.isnan(v))
            for i in range(1, n)
            for v in (value(i, n),)
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    client.set_terminated(run_id)
    print(run_id)


if __name__ == "__main__":
    main()
