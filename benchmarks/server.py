"""Server benchmark: a real ``cairn server`` process on loopback, driven by ``cairn.Client(url)``.

Usage::

    .venv/bin/python benchmarks/server.py               # full sizes (a few minutes)
    .venv/bin/python benchmarks/server.py --quick       # 10x smaller: a smoke test
    .venv/bin/python benchmarks/server.py --workers 2   # cairn server --workers 2
    .venv/bin/python benchmarks/server.py --only 46     # some sections only
    .venv/bin/python benchmarks/server.py --auth        # section A only: auth on vs off

The server runs as ``python -m cairn server --port P --home H`` on 127.0.0.1, with its own
temporary home (removed afterwards). Each figure is printed with a baseline measured in
the same run on the same machine, and the ratio between the two: shared machines are
noisy, so the ratios are what to compare from day to day. ``speed vs baseline`` is always
``baseline time / server time`` for the same work (1.00: as fast as the baseline).

Sections (baselines in brackets):

1. ``run.log_metric(key, value)`` single calls, first call to landed after flush
   [the same calls on the embedded store, ``cairn.Client(home=...)``].
2. ``run.log_metrics(dict_of_10, step=i)`` points, to landed [embedded store].
3. ``run.get_metric_history(key)`` of a 1,000,000-point series from a new client
   [embedded store; and a raw GET of the same bytes].
4. ``client.start_run()`` (create_run) calls [GET /api/v1/health on one keep-alive
   ``http.client`` connection, the client's own HTTP library: the round trip alone].
5. ``run.log_artifact`` / ``run.download_artifact`` of 256 MiB [embedded store; ``cp``; and
   the disk alone, ``dd`` with ``oflag=direct conv=fsync`` / ``iflag=direct``: the server
   writes big objects durably around the page cache and reads them back the same way, so
   the disk's own speed bounds both directions; and a bare loopback socket doing the same
   work without HTTP: ``sendfile``, then BLAKE3 and a file write in one thread,
   ``benchmarks/_loopback.py``].
6. Start-up: process start to ``/api/v1/health`` answering, best of 3 [``python -c pass``].
7. Resident memory (RSS and PSS) of every server process, idle after start-up and after
   the workload of sections 1-5 [an idle ``python`` process].

A. ``--auth``: sections 1, 2 and 4's client calls through a server with authentication on
   (``cairn server --auth``, the client sending a token) [the same through a server with it
   off, in the same run, rounds interleaved; target: within 10 %, a speed ratio >= 0.90].

The exit code is 0 whether targets are met or not: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import _loopback as loopback
import httpx
import psutil  # type: ignore[import-untyped]
from _report import (
    CLOSE_MARGIN,
    Mlflow,
    Result,
    Target,
    clean_environment,
    fmt,
    render,
    say,
    settle,
    unsettle,
    write_synced,
)
from _report import report as shared_report

import cairn
from cairn.client import Run
from cairn.core.settings import Settings

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20
HEALTH = "/api/v1/health"
STARTUP_LIMIT_S = 60.0  # give up on a server that has not answered by then

# MLflow 3.17's own server (4 workers, SQLite) on this kind of machine, as reported in the
# issue (not measured here).
MLFLOW_SINGLE_CALLS_PER_S = 19.0
MLFLOW_BATCHED_POINTS_PER_S = 5_600.0
MLFLOW_HISTORY_POINTS = 100_000
MLFLOW_HISTORY_READ_S = 5.7
MLFLOW_CREATE_RUNS_PER_S = 17.0
MLFLOW_UPLOAD_MB_S = 393.0
MLFLOW_DOWNLOAD_MB_S = 259.0
MLFLOW_STARTUP_S = (8.5, 9.8)
MLFLOW_MEMORY_MB = (1_200.0, 2_500.0)


# -- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    single_calls: int
    batch_calls: int
    batch_keys: int
    history_points: int
    create_runs: int
    health_requests: int
    artifact_bytes: int
    reps: int  # rounds of sections 1-5 (best of)
    startup_reps: int
    scale: float  # time targets scale with the sizes

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            single_calls=200_000,
            batch_calls=100_000,
            batch_keys=10,
            history_points=1_000_000,
            create_runs=1_000,
            health_requests=2_000,
            artifact_bytes=256 * MiB,
            reps=3,
            startup_reps=3,
            scale=1.0,
        )

    @classmethod
    def quick(cls) -> Sizes:
        full = cls.full()
        return cls(
            single_calls=full.single_calls // 10,
            batch_calls=full.batch_calls // 10,
            batch_keys=full.batch_keys,
            history_points=full.history_points // 10,
            create_runs=full.create_runs // 10,
            health_requests=full.health_requests // 10,
            artifact_bytes=full.artifact_bytes // 10,
            reps=2,
            startup_reps=2,
            scale=0.1,
        )


# -- the summary table ------------------------------------------------------------------


def summary_lines(results: Sequence[Result]) -> list[str]:
    cells: list[Sequence[str]] = [
        ("#", "measure", "server", "target", "status", "MLflow 3.17 (issue)", "vs MLflow")
    ]
    for r in results:
        if r.target is None:
            continue
        cells.append(
            (
                r.section,
                r.name.strip(),
                fmt(r.value, r.unit),
                r.target_text(),
                r.status,
                "" if r.mlflow is None else r.mlflow.text,
                "" if r.mlflow is None else r.mlflow.versus(r.value),
            )
        )
    return render(cells, {2})


def report(title: str, results: Sequence[Result], notes: Sequence[str] = ()) -> None:
    shared_report(title, results, "server", notes)


# -- helpers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ServerFailed(Exception):
    """The server did not answer its health check (the message carries its log)."""


@dataclass
class Timing:
    """One timed block: wall seconds, and the CPU seconds the benchmark process (the client
    and its background threads) and every server process spent in it."""

    wall: float
    client_cpu: float
    server_cpu: float

    def text(self) -> str:
        return (
            f"wall {self.wall:.3f} s, CPU client {self.client_cpu:.3f} s, "
            f"server {self.server_cpu:.3f} s"
        )


def fastest(timings: Sequence[Timing]) -> Timing:
    return min(timings, key=lambda t: t.wall)


@dataclass
class Server:
    """A ``cairn server`` process (and the workers it spawned) on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    workers: int
    started_wall: float  # time.time() just before the process was spawned
    startup_s: float  # process spawned to the first 200 from /api/v1/health
    family: list[psutil.Process] = field(default_factory=list)

    def refresh(self) -> None:
        """Look up the parent and every descendant (the workers, multiprocessing's helpers)."""
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(self.process.pid)
            self.family = [parent, *parent.children(recursive=True)]

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.family:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += float(times.user + times.system)
        return total

    def memory_mb(self) -> Memory:
        """RSS and PSS in MB summed over every server process, and each process's own."""
        self.refresh()
        rss = pss = 0
        each = []
        for proc in self.family:
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                rss += int(info.rss)
                pss += int(info.pss)
                each.append(
                    f"{_role(proc, self.process.pid)} {info.rss / 1e6:.0f}/{info.pss / 1e6:.0f}"
                )
        return Memory(rss / 1e6, pss / 1e6, len(self.family), each)

    def log_entries(self) -> list[dict[str, object]]:
        entries = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def wait_all_workers(self, timeout: float = STARTUP_LIMIT_S) -> float | None:
        """Seconds from spawn until the last worker logged its start-up (its own clock in
        the log line), or None if they did not all start in time."""
        deadline = time.monotonic() + timeout
        while True:
            done = [
                e for e in self.log_entries() if e.get("message") == "Application startup complete."
            ]
            if len(done) >= self.workers:
                self.refresh()
                latest = max(_log_time(e) for e in done[: self.workers])
                return max(latest - self.started_wall, self.startup_s)
            if not self.alive() or time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM, then seconds until the parent exited (the workers stop with it)."""
        started = time.perf_counter()
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return math.nan
        elapsed = time.perf_counter() - started
        self.kill()  # any straggler
        return elapsed

    def kill(self) -> None:
        """SIGKILL what is left of the server and its workers."""
        self.refresh()
        for proc in self.family[1:]:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if self.alive():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        psutil.wait_procs(self.family[1:], timeout=10)


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    pss_mb: float
    processes: int
    each: list[str]  # "role rss/pss" of each process

    def text(self) -> str:
        return f"{self.processes} process(es), RSS/PSS MB: " + ", ".join(self.each)


def _role(proc: psutil.Process, parent: int) -> str:
    if proc.pid == parent:
        return f"server {proc.pid}"
    try:
        command = " ".join(proc.cmdline())
    except psutil.Error:
        command = ""
    if "resource_tracker" in command:
        return f"resource tracker {proc.pid}"
    if "spawn_main" in command:
        return f"worker {proc.pid}"
    return f"child {proc.pid}"


def _log_time(entry: dict[str, object]) -> float:
    import datetime as dt

    stamp = str(entry.get("time", "")).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return time.time()


def start_server(
    home: Path, workers: int | None, env: dict[str, str], log: Path, cwd: Path
) -> Server:
    """Spawn ``python -m cairn server`` and wait for /api/v1/health to answer 200."""
    port = free_port()
    command = [sys.executable, "-m", "cairn", "server", "--port", str(port), "--home", str(home)]
    if workers is not None:
        command += ["--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    started_wall = time.time()
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=env,
            cwd=cwd,
        )
    count = workers if workers is not None else Settings().workers
    server = Server(process, url, log, count, started_wall, math.nan)
    try:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + HEALTH, timeout=2.0).status_code == 200:
                    break
            if process.poll() is not None or time.perf_counter() - started > STARTUP_LIMIT_S:
                raise ServerFailed(f"the server did not answer /health:\n{log_tail(log)}")
            time.sleep(0.005)
    except BaseException:  # a failure, or Ctrl-C while it starts: leave nothing running
        server.kill()
        raise
    server.startup_s = time.perf_counter() - started
    server.refresh()
    return server


@contextlib.contextmanager
def running_server(
    home: Path, workers: int | None, env: dict[str, str], log: Path, cwd: Path
) -> Iterator[Server]:
    server = start_server(home, workers, env, log, cwd)
    try:
        yield server
    finally:
        server.stop()


class Stopwatch:
    """Times a block: wall clock, this process's CPU, and the server's CPU. Collects and
    freezes garbage first (as ``settle``) and undoes that at the end, outside the timing."""

    def __init__(self, server: Server | None) -> None:
        self.server = server
        settle()
        self._server_cpu = server.cpu_seconds() if server is not None else 0.0
        self._cpu = time.process_time()
        self._start = time.perf_counter()

    def lap(self) -> float:
        return time.perf_counter() - self._start

    def stop(self) -> Timing:
        wall = time.perf_counter() - self._start
        cpu = time.process_time() - self._cpu
        server_cpu = 0.0
        if self.server is not None:
            server_cpu = self.server.cpu_seconds() - self._server_cpu
        unsettle()
        return Timing(wall, cpu, server_cpu)


@dataclass
class Context:
    """What the sections of the workload share."""

    sizes: Sizes
    server: Server
    remote: cairn.Client  # cairn.Client(server.url)
    local: cairn.Client  # cairn.Client(home=...): the embedded baseline
    local_home: Path
    work: Path  # scratch folder
    server_home: Path

    def new_remote(self) -> cairn.Client:
        return remote_client(self.server.url)


def remote_client(url: str) -> cairn.Client:
    # A short retry budget, so that a dead server fails a section instead of hanging it.
    return cairn.Client(url, environ={"CAIRN_RETRY_TIMEOUT": "10"})


def local_client(home: Path) -> cairn.Client:
    return cairn.Client(home=home, environ={})


Section = tuple[list[Result], list[str]]


# -- 1 and 2: logging -------------------------------------------------------------------


def time_logging(
    client: cairn.Client,
    server: Server | None,
    log_all: Callable[[Run], None],
    key: str,
    last_step: int,
) -> tuple[float, Timing]:
    """Seconds until the calls of ``log_all`` on a new run returned, and the timing until
    every point landed (``run.flush()`` returned)."""
    run = client.start_run()
    watch = Stopwatch(server)
    log_all(run)
    returned = watch.lap()
    run.flush()
    timing = watch.stop()
    latest = run.get_metrics_latest([key])[key]
    assert latest.step == last_step, (latest, last_step)
    run.end()
    return returned, timing


def best_logging(
    ctx: Context, log_all: Callable[[Run], None], key: str, last_step: int
) -> tuple[tuple[float, Timing], tuple[float, Timing]]:
    """Best (returned, landed) through the server and on the embedded store, rounds
    interleaved so that the drifts of a noisy machine hit both alike."""
    remote: list[tuple[float, Timing]] = []
    local: list[tuple[float, Timing]] = []
    for _ in range(ctx.sizes.reps):
        remote.append(time_logging(ctx.remote, ctx.server, log_all, key, last_step))
        local.append(time_logging(ctx.local, None, log_all, key, last_step))
    return min(remote, key=lambda r: r[1].wall), min(local, key=lambda r: r[1].wall)


def bench_single_calls(ctx: Context) -> Section:
    n = ctx.sizes.single_calls
    values = [(i % 1000) * 0.001 for i in range(n)]

    def log_all(run: Run) -> None:
        log = run.log_metric
        for value in values:
            log("loss", value)

    best = best_logging(ctx, log_all, "loss", n - 1)
    mlflow = Mlflow(f"{MLFLOW_SINGLE_CALLS_PER_S:,.0f} calls/s", MLFLOW_SINGLE_CALLS_PER_S, True)
    label = f"log_metric x {n:,}, to landed"
    return logging_section("1", label, n, "calls/s", best, Target(">=", 50_000), mlflow)


def bench_batched(ctx: Context) -> Section:
    calls, width = ctx.sizes.batch_calls, ctx.sizes.batch_keys
    keys = [f"metric_{k}" for k in range(width)]
    batches = [{k: i + j * 0.1 for j, k in enumerate(keys)} for i in range(calls)]
    points = calls * width

    def log_all(run: Run) -> None:
        log = run.log_metrics
        for step, batch in enumerate(batches):
            log(batch, step=step)

    best = best_logging(ctx, log_all, keys[-1], calls - 1)
    mlflow = Mlflow(
        f"{MLFLOW_BATCHED_POINTS_PER_S:,.0f} points/s", MLFLOW_BATCHED_POINTS_PER_S, True
    )
    label = f"log_metrics({width} keys) x {calls:,}, to landed"
    return logging_section("2", label, points, "points/s", best, Target(">=", 300_000), mlflow)


def logging_section(
    section: str,
    label: str,
    count: int,
    unit: str,
    best: tuple[tuple[float, Timing], tuple[float, Timing]],
    target: Target,
    mlflow: Mlflow,
) -> Section:
    """Sections 1 and 2: ``count`` calls or points to landed, and to returned, through the
    server against the embedded store (``best`` is :func:`best_logging`'s)."""
    (returned, ours), (local_returned, local) = best
    results = [
        Result(
            section,
            label,
            count / ours.wall,
            unit,
            "embedded store",
            count / local.wall,
            local.wall / ours.wall,
            target,
            mlflow,
        ),
        Result(
            section,
            "  of which calls returned",
            count / returned,
            unit,
            "embedded store",
            count / local_returned,
            local_returned / returned,
        ),
    ]
    return results, [f"best server round: {ours.text()}", f"best embedded round: {local.text()}"]


# -- 3. metric history ------------------------------------------------------------------


def bench_history(ctx: Context) -> Section:
    n = ctx.sizes.history_points

    def fill(client: cairn.Client) -> tuple[str, float]:
        run = client.start_run()
        log = run.log_metric
        start = time.perf_counter()
        for i in range(n):
            log("loss", i * 1e-6)
        run.flush()
        elapsed = time.perf_counter() - start
        run.end()
        return run.id, elapsed

    remote_id, remote_setup = fill(ctx.remote)
    local_id, local_setup = fill(ctx.local)

    def read(client: cairn.Client, server: Server | None, run_id: str) -> Timing:
        with client:  # a new client: nothing cached from the writer
            handle = client.get_run(run_id)
            watch = Stopwatch(server)
            history = handle.get_metric_history("loss")
            timing = watch.stop()
            assert len(history) == n and history[-1].step == n - 1
            return timing

    def read_raw() -> Timing:
        with httpx.Client(base_url=ctx.server.url + "/api/v1") as http:
            http.get("/health")  # connected
            watch = Stopwatch(ctx.server)
            response = http.get(
                f"/runs/{remote_id}/metrics/history",
                params={"key": "loss"},
                headers={"accept": "application/x-cairn-metric-history"},
            )
            body = response.content
            timing = watch.stop()
            assert response.status_code == 200 and len(body) >= n * 8, response.status_code
            return timing

    remote: list[Timing] = []
    local: list[Timing] = []
    raw: list[Timing] = []
    for _ in range(ctx.sizes.reps):
        remote.append(read(ctx.new_remote(), ctx.server, remote_id))
        local.append(read(local_client(ctx.local_home), None, local_id))
        raw.append(read_raw())
    ours, base, bytes_only = fastest(remote), fastest(local), fastest(raw)
    mlflow_s = n / (MLFLOW_HISTORY_POINTS / MLFLOW_HISTORY_READ_S)
    results = [
        Result(
            "3",
            f"get_metric_history, {n:,} points",
            ours.wall,
            "s",
            "embedded store",
            base.wall,
            base.wall / ours.wall,
            Target("<", 1.5 * ctx.sizes.scale),
            Mlflow(
                f"{MLFLOW_HISTORY_POINTS:,} in {MLFLOW_HISTORY_READ_S} s (~{mlflow_s:,.0f} s here)",
                mlflow_s,
                False,
            ),
        ),
        Result("3", "  read rate", n / ours.wall, "points/s", "embedded store", n / base.wall),
        Result(
            "3",
            "  raw GET of the binary history (no decode)",
            bytes_only.wall,
            "s",
            "through the client",
            ours.wall,
            ours.wall / bytes_only.wall,
        ),
        Result(
            "3",
            f"  (setup: log_metric x {n:,}, to landed)",
            n / remote_setup,
            "calls/s",
            "embedded store",
            n / local_setup,
            local_setup / remote_setup,
        ),
    ]
    notes = [
        f"best server read: {ours.text()}",
        f"best embedded read: {base.text()}",
        f"best raw GET: {bytes_only.text()}",
    ]
    return results, notes


# -- 4. create_run ----------------------------------------------------------------------


def bench_create_runs(ctx: Context) -> Section:
    n, h = ctx.sizes.create_runs, ctx.sizes.health_requests

    def create(client: cairn.Client, server: Server | None) -> Timing:
        watch = Stopwatch(server)
        for _ in range(n):
            client.start_run()
        return watch.stop()

    def health(conn: http.client.HTTPConnection) -> Timing:
        """The bare round trip on the client's own HTTP library, one keep-alive connection."""
        watch = Stopwatch(ctx.server)
        for _ in range(h):
            conn.request("GET", HEALTH)
            conn.getresponse().read()
        return watch.stop()

    remote: list[Timing] = []
    local: list[Timing] = []
    pings: list[Timing] = []
    address = urlsplit(ctx.server.url)
    conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port)
    try:
        with ctx.new_remote() as client:
            client.start_run()  # the default project and experiment exist from here on
            conn.request("GET", HEALTH)  # connected
            assert conn.getresponse().read()
            for _ in range(ctx.sizes.reps):
                pings.append(health(conn))
                remote.append(create(client, ctx.server))
                local.append(create(ctx.local, None))
    finally:
        conn.close()
    ours, base, emb = fastest(remote), fastest(pings), fastest(local)
    per_run, per_ping, per_emb = ours.wall / n, base.wall / h, emb.wall / n
    results = [
        Result(
            "4",
            f"client.start_run() x {n:,}",
            1 / per_run,
            "runs/s",
            "GET /health, keep-alive http.client",
            1 / per_ping,
            per_ping / per_run,
            Target(">=", 1_000),
            Mlflow(f"{MLFLOW_CREATE_RUNS_PER_S:,.0f} runs/s", MLFLOW_CREATE_RUNS_PER_S, True),
            "requests/s",
        ),
        Result(
            "4",
            "  embedded start_run (for context)",
            1 / per_emb,
            "runs/s",
            "through the server",
            1 / per_run,
            per_run / per_emb,
        ),
    ]
    notes = [
        f"server start_run: {ours.text()} "
        f"({per_run * 1e3:.2f} ms/run; client {ours.client_cpu / n * 1e3:.2f}, "
        f"server {ours.server_cpu / n * 1e3:.2f} ms CPU/run)",
        f"GET /health x {h:,}: {base.text()} ({per_ping * 1e3:.2f} ms/request; client "
        f"{base.client_cpu / h * 1e3:.2f}, server {base.server_cpu / h * 1e3:.2f} ms CPU/request)",
        f"embedded start_run: {emb.text()}",
    ]
    return results, notes


# -- 5. artifacts -----------------------------------------------------------------------


@dataclass
class ArtifactTimes:
    """Seconds for each round of section 5, per way of moving the bytes."""

    cp: list[float] = field(default_factory=list)
    up: list[Timing] = field(default_factory=list)
    down: list[Timing] = field(default_factory=list)
    local_up: list[Timing] = field(default_factory=list)
    local_down: list[Timing] = field(default_factory=list)
    # The disk alone with the same bytes, around the page cache as the server's writes and
    # reads of big objects go; empty where the file system has no direct I/O.
    disk_write: list[float] = field(default_factory=list)
    disk_read: list[float] = field(default_factory=list)
    # The same bytes, hashing and file writes over a bare socket (benchmarks/_loopback.py).
    raw_up: list[float] = field(default_factory=list)
    raw_down: list[float] = field(default_factory=list)


def bench_artifacts(ctx: Context) -> Section:
    times = ArtifactTimes()
    data = bytearray(os.urandom(ctx.sizes.artifact_bytes))
    src, dst = ctx.work / "src.bin", ctx.work / "dst.bin"
    stored: list[Path] = []  # the server's copies of the rounds' objects
    try:
        for _ in range(ctx.sizes.reps):
            data[:16] = os.urandom(16)  # new bytes each round: never a dedup hit by accident
            write_synced(src, data)
            settle()
            start = time.perf_counter()
            subprocess.run(["cp", src, dst], check=True)
            times.cp.append(time.perf_counter() - start)
            unsettle()
            dst.unlink()
            digest = artifact_round(ctx.remote, ctx.server, src, dst, times.up, times.down)
            path = object_path(ctx.server_home, digest)
            # A chunked object has no file of its own: the disk's figures read the source.
            stored.append(path if path.exists() else Path(shutil.copy(src, f"{src}.{digest}")))
            artifact_round(ctx.local, None, src, dst, times.local_up, times.local_down)
        # The disk alone, after the rounds: run between them, dd made the client's downloads
        # cost 1.5-2x the CPU (on this VM, what a write costs depends on which pages it
        # gets; docs/benchmarks.md).
        for path in stored:
            if (seconds := dd(f"if={src}", f"of={dst}", "oflag=direct", "conv=fsync")) is not None:
                times.disk_write.append(seconds)
            dst.unlink(missing_ok=True)
            if (seconds := dd(f"if={path}", "of=/dev/null", "iflag=direct")) is not None:
                times.disk_read.append(seconds)
            times.raw_up.append(loopback.upload_seconds(src, ctx.server_home))
            times.raw_down.append(loopback.download_seconds(path, dst))
    finally:
        del data
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)
        for path in stored:
            if path.parent == src.parent:  # a copy made above
                path.unlink(missing_ok=True)
    return artifact_results(ctx.sizes.artifact_bytes, times)


def artifact_round(
    client: cairn.Client,
    server: Server | None,
    src: Path,
    dst: Path,
    ups: list[Timing],
    downs: list[Timing],
) -> str:
    """Log ``src`` as an artifact of a new run, download it to ``dst`` (then deleted), and
    time both; returns the object's digest."""
    size = src.stat().st_size
    run = client.start_run()
    watch = Stopwatch(server)
    info = run.log_artifact("blob", src)
    ups.append(watch.stop())
    assert info.size == size
    watch = Stopwatch(server)
    out = run.download_artifact("blob", dst)
    downs.append(watch.stop())
    assert out.stat().st_size == size
    dst.unlink()
    run.end()
    return info.digest


def artifact_results(size: int, times: ArtifactTimes) -> Section:
    mb = size / 1e6
    ours_up, ours_down = fastest(times.up), fastest(times.down)
    emb_up, emb_down = fastest(times.local_up), fastest(times.local_down)
    label = f"{size / MiB:g} MiB"

    def versus(row: str, ours: float, baseline: str, seconds: list[float]) -> list[Result]:
        if not seconds:
            return []
        best = min(seconds)
        return [Result("5", row, mb / ours, "MB/s", baseline, mb / best, best / ours)]

    results = [
        Result(
            "5",
            f"log_artifact {label} (up)",
            mb / ours_up.wall,
            "MB/s",
            "embedded log_artifact",
            mb / emb_up.wall,
            emb_up.wall / ours_up.wall,
            Target(">=", 1_000),
            Mlflow(f"{MLFLOW_UPLOAD_MB_S:,.0f} MB/s", MLFLOW_UPLOAD_MB_S, True),
        ),
        *versus("  up, vs cp", ours_up.wall, "cp", times.cp),
        *versus("  up, vs the disk alone", ours_up.wall, "dd oflag=direct,fsync", times.disk_write),
        *versus("  up, vs a bare socket", ours_up.wall, "raw loopback", times.raw_up),
        Result(
            "5",
            f"download_artifact {label} (down)",
            mb / ours_down.wall,
            "MB/s",
            "embedded download",
            mb / emb_down.wall,
            emb_down.wall / ours_down.wall,
            Target(">=", 1_000),
            Mlflow(f"{MLFLOW_DOWNLOAD_MB_S:,.0f} MB/s", MLFLOW_DOWNLOAD_MB_S, True),
        ),
        *versus("  down, vs cp", ours_down.wall, "cp", times.cp),
        *versus("  down, vs the disk alone", ours_down.wall, "dd iflag=direct", times.disk_read),
        *versus("  down, vs a bare socket", ours_down.wall, "raw loopback", times.raw_down),
        *versus("  embedded log_artifact, vs cp", emb_up.wall, "cp", times.cp),
        *versus("  embedded download, vs cp", emb_down.wall, "cp", times.cp),
    ]
    notes = [
        f"best up: {ours_up.text()}",
        f"best down: {ours_down.text()}",
        f"best embedded up: {emb_up.text()}; down: {emb_down.text()}",
        "Cairn hashes (BLAKE3) on both ends and fsyncs what it writes; cp does neither",
    ]
    return results, notes


def object_path(home: Path, digest: str) -> Path:
    """Where the server's local object store keeps ``digest`` (``--home``'s layout)."""
    return home / "objects" / "objects" / digest[:2] / digest[2:]


def dd(*operands: str) -> float | None:
    """Seconds ``dd`` takes to copy with these operands; None if it cannot (a file system
    without direct I/O refuses ``iflag=direct`` and ``oflag=direct``)."""
    start = time.perf_counter()
    done = subprocess.run(["dd", "bs=4M", *operands], check=False, capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        say(f"  (dd {' '.join(operands)} failed: {done.stderr.decode().strip()[-200:]})")
        return None
    return seconds


# -- 6. start-up ------------------------------------------------------------------------


@dataclass(frozen=True)
class Envs:
    as_is: dict[str, str]  # this environment, CAIRN_* removed
    cached: dict[str, str]  # with a warmed private bytecode cache, as after a pip install
    no_pyc: bool  # whether as_is runs without .pyc files (PYTHONDONTWRITEBYTECODE)


def spawn_seconds(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=REPO, env=env)
    return time.perf_counter() - start


SERVER_MODULES = "import cairn.cli._app, cairn.cli._server, cairn.server.serve, cairn.server.app"


def bench_startup(
    sizes: Sizes, workers: int | None, envs: Envs, work: Path, existing: Path
) -> Section:
    kinds = [
        ("new", envs.cached, False),
        ("existing", envs.cached, True),
        ("as-is", envs.as_is, False),
    ]
    health: dict[str, list[float]] = {name: [] for name, _, _ in kinds}
    all_up: list[float] = []
    stops: list[float] = []
    passes: list[float] = []
    imports: list[float] = []
    for rep in range(sizes.startup_reps):  # interleaved, so drifts hit all alike
        for name, env, reuse in kinds:
            home = existing if reuse else work / f"{name}-home-{rep}"
            log = work / f"startup-{name}-{rep}.log"
            server = start_server(home, workers, env, log, work)
            try:
                up = server.wait_all_workers()
            finally:
                stopped = server.stop()
            health[name].append(server.startup_s)
            if name == "new":
                all_up.append(math.nan if up is None else up)
                stops.append(stopped)
            if not reuse:
                shutil.rmtree(home, ignore_errors=True)
        passes.append(spawn_seconds(envs.cached, "-c", "pass"))
        imports.append(spawn_seconds(envs.cached, "-c", SERVER_MODULES))
    base = min(passes)
    count = workers if workers is not None else Settings().workers
    plural = "s" if count > 1 else ""
    as_is = (
        "no .pyc files (as this environment runs)" if envs.no_pyc else "as this environment runs"
    )
    results = [
        Result(
            "6",
            "process start to /health 200, new home",
            min(health["new"]),
            "s",
            "python -c pass",
            base,
            None,
            Target("<", 1.5),
            Mlflow(f"{MLFLOW_STARTUP_S[0]}-{MLFLOW_STARTUP_S[1]} s", MLFLOW_STARTUP_S[0], False),
        ),
        Result("6", "  same, existing home", min(health["existing"]), "s", "python -c pass", base),
        Result(
            "6", f"  same, new home, {as_is}", min(health["as-is"]), "s", "python -c pass", base
        ),
        Result("6", f"  all {count} worker{plural} started, new home", min(all_up), "s"),
        Result(
            "6",
            "  import of the server's modules alone",
            min(imports) - base,
            "s",
            "python -c pass",
            base,
        ),
        Result("6", "  SIGTERM to exit (new home)", min(stops), "s"),
    ]
    notes = [
        "rows but the as-is one run with a warmed private PYTHONPYCACHEPREFIX (as after a pip "
        "install, which compiles bytecode)",
        f"new home: every try {', '.join(f'{t:.2f}' for t in health['new'])} s",
    ]
    return results, notes


# -- 7. memory --------------------------------------------------------------------------


def idle_python_memory(env: dict[str, str]) -> tuple[float, float]:
    """(RSS, PSS) in MB of an interpreter that started and waits: the floor of any Python
    process on this machine."""
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; print(flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        info = psutil.Process(proc.pid).memory_full_info()
        proc.stdin.close()
        proc.wait(10)
    return int(info.rss) / 1e6, int(info.pss) / 1e6


def memory_results(
    after_startup: Memory, after_workload: Memory | None, workload: str, idle: tuple[float, float]
) -> list[Result]:
    mlflow = Mlflow(
        f"{MLFLOW_MEMORY_MB[0] / 1e3:g}-{MLFLOW_MEMORY_MB[1] / 1e3:g} GB",
        MLFLOW_MEMORY_MB[0],
        False,
    )
    results = []
    for when, figures in (("after start-up", after_startup), (workload, after_workload)):
        if figures is None:
            continue
        count = figures.processes
        results += [
            Result(
                "7",
                f"idle {when}: RSS of {count} process{'es' if count > 1 else ''}",
                figures.rss_mb,
                "MB",
                "idle python",
                idle[0],
                None,
                Target("<", 200),
                mlflow,
            ),
            Result(
                "7",
                f"  idle {when}: PSS (shared pages split)",
                figures.pss_mb,
                "MB",
                "idle python",
                idle[1],
                None,
                Target("<", 200),
                mlflow,
            ),
        ]
    return results


# -- main -------------------------------------------------------------------------------


WORKLOAD: list[tuple[str, str, Callable[[Context], Section]]] = [
    (
        "1",
        "1. log_metric single calls (first call to landed after run.flush())",
        bench_single_calls,
    ),
    ("2", "2. log_metrics batched points (first call to landed after run.flush())", bench_batched),
    ("3", "3. metric history read (a new client each read)", bench_history),
    ("4", "4. create_run: client.start_run() calls", bench_create_runs),
    ("5", "5. artifacts up and down (new random bytes each round)", bench_artifacts),
]


def warm_up(server: Server, work: Path) -> None:
    """One call of each kind, so the modules the server (and this client) import on first
    use are loaded, and compiled into the bytecode cache, before anything is timed."""
    with remote_client(server.url) as client:
        run = client.start_run()
        run.log_metric("loss", 0.5)
        run.log_metrics({"a": 1.0, "b": 2.0})
        run.get_metric_history("loss")
        run.log_artifact("blob", b"warm-up")
        run.download_artifact("blob", work / "warm-up.bin")
        run.end()


def run_workload(
    args: argparse.Namespace, sizes: Sizes, envs: Envs, tmp: Path, results: list[Result]
) -> None:
    """Sections 1-5 against one server, and section 7 (its memory before and after)."""
    home = tmp / "server-home"
    server = start_server(home, args.workers, envs.cached, tmp / "server.log", tmp)
    try:
        all_up = server.wait_all_workers()
        time.sleep(1.0)  # idle
        after_startup = server.memory_mb()
        say()
        say(
            f"server {server.url} (pid {server.process.pid}, {server.workers} worker"
            f"{'s' if server.workers > 1 else ''}): /health after {server.startup_s:.2f} s, "
            f"all workers after {all_up if all_up is None else round(all_up, 2)} s; "
            f"{after_startup.processes} process(es)"
        )
        ran = []
        with (
            remote_client(server.url) as remote,
            local_client(tmp / "embedded-home") as local,
        ):
            ctx = Context(sizes, server, remote, local, tmp / "embedded-home", tmp, home)
            for key, title, bench in WORKLOAD:
                if key not in args.only:
                    continue
                if not server.alive():
                    say(f"\n{title}: skipped, the server is gone:\n{log_tail(server.log)}")
                    continue
                try:
                    section_results, notes = bench(ctx)
                except Exception:
                    say(f"\n{title}: FAILED\n{traceback.format_exc()}")
                    continue
                finally:
                    unsettle()
                ran.append(key)
                results.extend(section_results)
                report(title, section_results, notes)
        after_workload = None
        if ran and server.alive():
            time.sleep(2.0)  # idle again
            after_workload = server.memory_mb()
        if "7" in args.only:
            idle = idle_python_memory(envs.cached)
            memory = memory_results(
                after_startup,
                after_workload,
                f"after section{'s' if len(ran) > 1 else ''} {','.join(ran)}",
                idle,
            )
            results.extend(memory)
            report(
                "7. server memory, idle (every server process: parent and workers)",
                memory,
                [
                    "RSS counts shared pages once per process; PSS splits them, so the sum of "
                    "PSS is what the processes take together",
                    f"after start-up: {after_startup.text()}",
                    *([f"after the workload: {after_workload.text()}"] if after_workload else []),
                ],
            )
    finally:
        stopped = server.stop()
        say(f"\nserver stopped {stopped:.2f} s after SIGTERM")


# -- A. authentication on against off ------------------------------------------------------


def _admin_token(home: Path) -> str:
    """An admin and its token on a new store at ``home`` (as ``cairn users create`` and
    ``cairn tokens create`` make them)."""
    from cairn.service import open_service

    service = open_service(Settings(home=str(home)))
    try:
        service.auth.create_user("bench", admin=True)
        return service.auth.create_token("bench", user="bench").secret
    finally:
        service.close()


def run_auth_comparison(sizes: Sizes, workers: int | None, envs: Envs, tmp: Path) -> Section:
    """Single calls, batched calls and create_run through two servers, auth off and on,
    rounds interleaved (each round's order alternates), best of ``reps`` each."""
    token = _admin_token(tmp / "auth-on")
    on_env = {**envs.cached, "CAIRN_AUTH": "on"}
    n, calls, width, runs = (
        sizes.single_calls,
        sizes.batch_calls,
        sizes.batch_keys,
        sizes.create_runs,
    )
    values = [(i % 1000) * 0.001 for i in range(n)]
    keys = [f"metric_{k}" for k in range(width)]
    batches = [{k: i + j * 0.1 for j, k in enumerate(keys)} for i in range(calls)]

    def single(run: Run) -> None:
        log = run.log_metric
        for value in values:
            log("loss", value)

    def batched(run: Run) -> None:
        log = run.log_metrics
        for step, batch in enumerate(batches):
            log(batch, step=step)

    def create(client: cairn.Client, server: Server) -> Timing:
        watch = Stopwatch(server)
        for _ in range(runs):
            client.start_run()
        return watch.stop()

    measures = ("single", "batched", "create")
    best: dict[tuple[str, bool], Timing] = {}
    with (
        running_server(tmp / "auth-off", workers, envs.cached, tmp / "off.log", tmp) as off,
        running_server(tmp / "auth-on", workers, on_env, tmp / "on.log", tmp) as on,
        remote_client(off.url) as off_client,
        cairn.Client(on.url, token=token, environ={"CAIRN_RETRY_TIMEOUT": "10"}) as on_client,
    ):
        sides = {False: (off, off_client), True: (on, on_client)}
        for _, client in sides.values():
            client.start_run().end()  # the default project and experiment, and a warm-up
        for rep in range(sizes.reps):
            for auth in (False, True) if rep % 2 == 0 else (True, False):
                server, client = sides[auth]
                timings = {
                    "single": time_logging(client, server, single, "loss", n - 1)[1],
                    "batched": time_logging(client, server, batched, keys[-1], calls - 1)[1],
                    "create": create(client, server),
                }
                for measure in measures:
                    found = best.get((measure, auth))
                    if found is None or timings[measure].wall < found.wall:
                        best[(measure, auth)] = timings[measure]
    labels = {
        "single": (f"log_metric x {n:,}, to landed", n, "calls/s"),
        "batched": (f"log_metrics({width} keys) x {calls:,}, to landed", calls * width, "points/s"),
        "create": (f"client.start_run() x {runs:,}", runs, "runs/s"),
    }
    results = []
    notes = []
    for measure in measures:
        label, count, unit = labels[measure]
        ours, base = best[(measure, True)], best[(measure, False)]
        results.append(
            Result(
                "A",
                f"{label}, auth on",
                count / ours.wall,
                unit,
                "auth off",
                count / base.wall,
                base.wall / ours.wall,
                Target(">=", 0.90, on="ratio"),
            )
        )
        notes.append(f"{measure}: auth on {ours.text()}; auth off {base.text()}")
    return results, notes


def report_auth(sizes: Sizes, workers: int | None, envs: Envs, tmp: Path) -> list[Result]:
    title = f"A. authentication on against off (best of {sizes.reps}, interleaved)"
    section_results, notes = run_auth_comparison(sizes, workers, envs, tmp)
    report(title, section_results, notes)
    return section_results


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes: a smoke test")
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N", help="cairn server --workers N"
    )
    parser.add_argument(
        "--only", default="1234567", help="sections to run, e.g. --only 46 (default: all)"
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="section A only: sections 1, 2 and 4's calls with authentication on and off",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    sizes = Sizes.quick() if args.quick else Sizes.full()
    env = clean_environment()
    workers = args.workers if args.workers is not None else Settings().workers

    mode = "quick: 10x smaller, time targets scaled" if args.quick else "full sizes"
    say(f"Cairn server benchmark ({mode}), cairn server on 127.0.0.1 with {workers} worker(s)")
    say(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
        f"cairn {cairn.__version__} at {Path(cairn.__file__).parent}"
    )
    say("speed vs baseline = baseline time / server time for the same work (1.00 = as fast)")

    # SIGTERM unwinds like Ctrl-C, so every server is stopped and the folder removed.
    signal.signal(signal.SIGTERM, _interrupted)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(
        prefix="cairn-bench-server-", ignore_cleanup_errors=True
    ) as tmp_name:
        tmp = Path(tmp_name)
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = os.fspath(tmp / "pycache")
        envs = Envs(env, cached, bool(env.get("PYTHONDONTWRITEBYTECODE")))
        existing = tmp / "existing-home"
        try:
            # Writes the bytecode cache; leaves the home that section 6 restarts on.
            with running_server(existing, args.workers, cached, tmp / "warm.log", tmp) as server:
                server.wait_all_workers()
                warm_up(server, tmp)
            if args.auth:
                results.extend(report_auth(sizes, args.workers, envs, tmp))
            if any(key in args.only for key in "123457") and not args.auth:
                run_workload(args, sizes, envs, tmp, results)
            if "6" in args.only and not args.auth:
                title = f"6. start-up (best of {sizes.startup_reps})"
                try:
                    section_results, notes = bench_startup(sizes, args.workers, envs, tmp, existing)
                except Exception:
                    say(f"\n{title}: FAILED\n{traceback.format_exc()}")
                else:
                    results.extend(section_results)
                    report(title, section_results, notes)
        except ServerFailed as exc:
            say(f"\nthe server did not start: {exc}")
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the servers were stopped on the way
            say("\ninterrupted")
        except Exception:
            say(f"\nthe benchmark failed:\n{traceback.format_exc()}")

    say()
    say("Targets (MLflow 3.17 figures: its own server, 4 workers, SQLite; from the issue)")
    for line in summary_lines(results):
        say(line)
    missed = [r.name.strip() for r in results if r.status == "MISSED"]
    close = [r.name.strip() for r in results if r.status == "close"]
    say()
    say(f"targets missed: {'; '.join(missed) if missed else 'none'}")
    say(f"targets close (within {CLOSE_MARGIN:.0%}): {'; '.join(close) if close else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
