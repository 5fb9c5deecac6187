"""Chart benchmark: a metric of 1,000,000 points downsampled on the server for the web UI.

Usage::

    .venv/bin/python benchmarks/ui_charts.py           # 1,000,000 points (about a minute)
    .venv/bin/python benchmarks/ui_charts.py --quick   # 100,000 points: a smoke test

A real ``cairn server`` process (``python -m cairn server``, SQLite) on 127.0.0.1 serves an
embedded store filled beforehand with one series stored three ways:

1. ``bulk``: one batch of a million points (big chunks: a script logging in bulk).
2. ``logged``: ``run.log_metric`` called a million times in a loop, stored by the client's
   background batcher as it goes (the chunks a training loop leaves).
3. ``small chunks``: batches of 64 points (the worst case: a run that flushes every few
   points leaves ~15,600 chunk rows).

Each is timed as ``GET /api/v1/runs/{id}/metrics/chart?key=...&points=2000`` (x = step and
x = time), the median of 7 requests on one keep-alive connection, beside the baseline of
sending the whole series as the JSON history (``GET .../metrics/history``, once: it takes
seconds; what a chart without downsampling needs). Target (issue 15): the chart's data in
well under a second. The browser side (the chart drawn) is timed by ``tests/ui/test_run_page.py``.

MLflow (``--mlflow-python``, default ``/work/peers/mlflow/bin/python``; skipped if absent)
gets the same series (``_ui_mlflow.py``: one run, SQLite) behind its own ``mlflow server``
(its default workers), timed on the request its UI's charts make,
``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?max_results=2000`` (it samples
rows evenly in SQL). **vs MLflow** = MLflow's time / Cairn's ``bulk`` time; whether each
answer holds the spike is printed too.

The exit code is 0 whether targets are met or not: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from _report import Result, Target, clean_environment, report, say

import cairn
from cairn.core.columns import SeriesPoints

REPEATS = 7
CHART_LIMIT_S = 1.0
MLFLOW_PYTHON = "/work/peers/mlflow/bin/python"
HERE = Path(__file__).resolve().parent


def _series(n: int) -> array[float]:
    values = array("d", (math.sin(i / 5000) + (i % 97) / 970 for i in range(n)))
    values[n // 3] = 50.0  # a spike the chart must keep
    values[n // 2] = math.nan
    return values


def fill(home: Path, n: int) -> dict[str, str]:
    """Three runs holding the same series stored in three ways; their ids by name."""
    client = cairn.Client(home=str(home))
    client.set_project("bench")
    client.set_experiment("charts")
    values = _series(n)
    start = 1_700_000_000_000
    ids = {}
    backend = client._backend.metrics
    run = client.start_run("bulk", capture="none")
    backend.log_metric_batch(
        {
            (run.id, "loss"): SeriesPoints(
                array("q", range(n)), array("q", range(start, start + n)), values
            )
        }
    )
    run.end()
    ids["bulk"] = run.id
    run = client.start_run("logged", capture="none")
    for i in range(n):
        run.log_metric("loss", values[i], step=i, timestamp=start + i)
    run.end()
    ids["logged"] = run.id
    run = client.start_run("small chunks", capture="none")
    for at in range(0, n, 64):
        end = min(n, at + 64)
        backend.log_metric_batch(
            {
                (run.id, "loss"): SeriesPoints(
                    array("q", range(at, end)),
                    array("q", range(start + at, start + end)),
                    values[at:end],
                )
            }
        )
    run.end()
    ids["small chunks"] = run.id
    client.close()
    return ids


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(
    command: list[str], health: str, port: int, cwd: Path, wait_s: float = 120
) -> Iterator[str]:
    """Run a server process until the block ends; yields its URL once ``health`` answers."""
    process = subprocess.Popen(
        command, env={**os.environ}, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                if urllib3.request("GET", f"{url}{health}", timeout=1).status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[2]} server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server(home: Path) -> Any:
    port = _free_port()
    command = [sys.executable, "-m", "cairn", "server", "--port", str(port)]
    command += ["--home", str(home), "--log-level", "warning"]
    return serving(command, "/api/v1/health", port, home.parent)


def mlflow_server(python: str, db: Path) -> Any:
    port = _free_port()
    command = [python, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{db}"]
    return serving(command, "/health", port, db.parent, wait_s=600)  # 4 workers, migrations


def measure_mlflow(python: str, folder: Path, n: int, ours: float) -> list[Result]:
    db = folder / "mlflow.db"
    started = time.perf_counter()
    filled = subprocess.run(
        [python, str(HERE / "_ui_mlflow.py"), str(db), str(n)],
        check=True,
        capture_output=True,
        text=True,
        cwd=folder,
    )
    run_id = filled.stdout.strip().splitlines()[-1]
    say(f"filled MLflow with {n:,} points in {time.perf_counter() - started:.1f} s")
    with mlflow_server(python, db) as url:
        pool = urllib3.PoolManager(maxsize=1).connection_from_url(url)
        path = (
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
            f"?run_ids={run_id}&metric_key=loss&max_results=2000"
        )
        seconds = median_seconds(pool, path)
        body = json.loads(pool.request("GET", path).data)
    points = body.get("metrics", [])
    spike = any(p.get("value") == 50.0 for p in points)
    say(f"MLflow answered {len(points):,} points; the spike {'kept' if spike else 'LOST'}")
    return [
        Result(
            "charts",
            f"MLflow 3.x: its UI's chart request, {n:,} points (max_results=2000)",
            seconds,
            "s",
            baseline="cairn bulk, x=step",
            baseline_value=ours,
            ratio=seconds / ours,
        )
    ]


def median_seconds(pool: urllib3.HTTPConnectionPool, path: str, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = pool.request("GET", path)
        times.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {response.data[:200]!r}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 points")
    parser.add_argument("--mlflow-python", default=MLFLOW_PYTHON, help="MLflow's interpreter")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    clean_environment()
    results = []
    ours = math.nan
    with tempfile.TemporaryDirectory(prefix="cairn-ui-bench-") as folder:
        home = Path(folder) / "home"
        started = time.perf_counter()
        ids = fill(home, n)
        say(f"filled {n:,} points three ways in {time.perf_counter() - started:.1f} s")
        with server(home) as url:
            pool = urllib3.PoolManager(maxsize=1).connection_from_url(url)
            for name, run_id in ids.items():
                base = f"/api/v1/runs/{run_id}/metrics"
                history = median_seconds(
                    pool, f"{base}/history?key=loss", repeats=1
                )  # seconds each
                for x in ("step", "time"):
                    chart = median_seconds(pool, f"{base}/chart?key=loss&points=2000&x={x}")
                    if name == "bulk" and x == "step":
                        ours = chart
                        body = json.loads(
                            pool.request("GET", f"{base}/chart?key=loss&points=2000").data
                        )
                        kept = 50.0 in body["values"]
                        say(
                            f"cairn answered {len(body['values']):,} points; the spike "
                            f"{'kept' if kept else 'LOST'}"
                        )
                    results.append(
                        Result(
                            "charts",
                            f"{name}: chart of {n:,} points, x={x}",
                            chart,
                            "s",
                            baseline="whole history as JSON",
                            baseline_value=history,
                            ratio=history / chart,
                            target=Target("<", CHART_LIMIT_S),
                        )
                    )
        title = f"Issue 15: a metric of {n:,} points as a chart (2,000 points)"
        report(title, results, "cairn")
        if os.access(args.mlflow_python, os.X_OK):
            report(title, measure_mlflow(args.mlflow_python, Path(folder), n, ours), "MLflow")
        else:
            say(f"MLflow skipped: no {args.mlflow_python}")


if __name__ == "__main__":
    main()
