"""Web UI benchmark (issue 15): the runs table of an experiment with 10,000 runs, its first
page (keyset-paged) served by a real ``cairn server``, against the search call alone.

Usage::

    .venv/bin/python benchmarks/ui.py                 # 10,000 runs (filled once, kept)
    .venv/bin/python benchmarks/ui.py --runs 2000     # a smoke test
    .venv/bin/python benchmarks/ui.py --data DIR      # where the filled store is kept

The store (SQLite, ``--data``, default ``/tmp/ui-bench/runs-10k``) holds one experiment of
N runs, filled once through the embedded client and reused: 1 run in 50 is a parent with
two children (the table nests them), each run has 4 hyperparameters, 3 metrics of 5 steps
and a tag. A real server process (``python -m cairn server``, 1 worker, on 127.0.0.1)
serves it; each figure is the median of ``--repeats`` requests after two warm-ups, on one
keep-alive connection, as **server time** (the ``duration_ms`` of the server's own access
log line: from the request's arrival to the last byte sent) and as the client's wall time.

Measured:

a. ``GET /experiments/{id}``: the experiment page with its runs table's first page (50
   top-level runs with their children, default columns, the count). Target < 300 ms.
b. the same sorted by a metric (``?order=-metrics.acc``), and c. with a query
   (``?q=metrics.acc > 0.5 and hyperparameters.lr < 0.05``), d. the second page (cursor);
e. the projects page (``/``: the project's counts and last activity over its 10,000 runs).

Baseline, same server, same run: ``POST /api/v1/search/runs`` of the same page (50 runs of
the experiment with all their values), the JSON a script would fetch; the ratio says what
the page costs beyond the one search call (its header, children, count, rendering).
The exit code is 0 whatever the figures (a measuring tool).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import cairn

TARGET_MS = 300.0
PAGE = 50
_CHILDREN_EVERY = 50


def say(text: str = "") -> None:
    print(text, flush=True)


def fill(home: Path, n: int) -> str:
    """An experiment of ``n`` runs in a new store at ``home``; its id."""
    started = time.perf_counter()
    with cairn.Client(home=home, environ={}) as client:
        client.set_project("ui-bench", description="The web UI benchmark's runs")
        experiment = client.set_experiment("table", description=f"{n:,} runs")
        made = 0
        while made < n:
            i = made
            run = client.start_run(
                f"run-{i:05d}",
                capture="none",
                tags=["best"] if i % 7 == 0 else ["plain"],
                hyperparameters={
                    "lr": [0.1, 0.03, 0.01, 0.003][i % 4],
                    "batch": 32 << (i % 3),
                    "model": ["gbm", "rf", "mlp"][i % 3],
                    "seed": i,
                },
            )
            for step in range(5):
                run.log_metrics(
                    {"acc": (i % 1000) / 1000, "loss": 1 / (1 + step + i % 10), "f1": 0.5},
                    step=step,
                )
            made += 1
            if i % _CHILDREN_EVERY == 0 and made + 2 <= n:
                for j in range(2):
                    child = client.start_run(
                        f"run-{i:05d}-child-{j}",
                        parent=run,
                        capture="none",
                        hyperparameters={"lr": 0.01 * (j + 1)},
                    )
                    child.log_metric("acc", 0.5, step=0)
                    child.end()
                made += 2
            run.end()
            if made % 1000 < 3:
                say(f"  {made:,} runs stored ({time.perf_counter() - started:.0f} s)")
        client.flush()
        say(f"filled {n:,} runs in {time.perf_counter() - started:.0f} s")
        return experiment.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, home: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
        command = [sys.executable, "-m", "cairn", "server", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--home", str(home), "--log-level", "info"]
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink, env=env
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.02)

    def durations(self) -> list[tuple[str, float]]:
        """(path, server ms) of every access-log line so far."""
        found = []
        for line in self.log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "duration_ms" in entry:
                found.append((str(entry.get("path")), float(entry["duration_ms"])))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def measure(
    server: Server, send: Callable[[], httpx.Response], repeats: int
) -> tuple[float, float]:
    """Median server ms (access log) and client ms of ``send`` after two warm-ups."""
    for _ in range(2):
        send().raise_for_status()
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        send().raise_for_status()
        walls.append((time.perf_counter() - started) * 1000)
    time.sleep(0.5)  # the access line is written after the response
    # Requests are sequential: the last lines of the log are these requests'.
    served = [ms for _, ms in server.durations()[-repeats:]]
    return statistics.median(served), statistics.median(walls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    home = args.data or Path(f"/tmp/ui-bench/runs-{args.runs // 1000}k")
    marker = home / "experiment-id"
    if not marker.exists():
        say(f"filling {home} with {args.runs:,} runs (once; kept for later runs)")
        home.mkdir(parents=True, exist_ok=True)
        marker.write_text(fill(home, args.runs))
    experiment_id = marker.read_text().strip()
    server = Server(home, home.parent / f"server-{os.getpid()}.log")
    rows: list[tuple[str, float, float]] = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            first = http.get(f"/experiments/{experiment_id}")
            first.raise_for_status()
            assert first.text.count('data-run="') >= PAGE, "the first page is not full"
            cursor = first.text.split('id="next-page"')[0].rsplit("cursor=", 1)[1].split('"')[0]
            cursor = cursor.replace("&amp;", "&")
            search = {"experiment_ids": [experiment_id], "limit": PAGE}
            cases: list[tuple[str, Callable[[], httpx.Response]]] = [
                ("baseline: POST /api/v1/search/runs (50 runs)",
                 lambda: http.post("/api/v1/search/runs", json=search)),
                ("a. experiment page, first page",
                 lambda: http.get(f"/experiments/{experiment_id}")),
                ("b. sorted by -metrics.acc",
                 lambda: http.get(f"/experiments/{experiment_id}?order=-metrics.acc")),
                ("c. with a query",
                 lambda: http.get(f"/experiments/{experiment_id}",
                                  params={"q": "metrics.acc > 0.5 and hyperparameters.lr < 0.05"})),
                ("d. second page (cursor)",
                 lambda: http.get(f"/experiments/{experiment_id}?cursor={cursor}")),
                ("e. projects page (counts, last activity)", lambda: http.get("/")),
            ]  # fmt: skip
            for name, send in cases:
                served, wall = measure(server, send, args.repeats)
                rows.append((name, served, wall))
    finally:
        server.stop()
    baseline = rows[0][1]
    say()
    say(f"Runs table of one experiment with {args.runs:,} runs, SQLite, 1 worker "
        f"(median of {args.repeats}; server time from the access log; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")  # fmt: skip
    say(f"  {'measure':<46} {'server':>9} {'client':>9} {'vs search':>10}  target")
    for name, served, wall in rows:
        target = "" if name.startswith("baseline") else (
            f"< {TARGET_MS:.0f} ms {'met' if served < TARGET_MS else 'MISSED'}")  # fmt: skip
        say(f"  {name:<46} {served:>6.1f} ms {wall:>6.1f} ms {served / baseline:>9.1f}x  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
