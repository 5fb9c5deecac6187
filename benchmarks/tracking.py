"""Tracking benchmark: Cairn's embedded store against raw baselines, in one run.

Usage::

    .venv/bin/python benchmarks/tracking.py           # full sizes (about a minute)
    .venv/bin/python benchmarks/tracking.py --quick   # 10x smaller: a smoke test

Every section uses a fresh temporary ``home=`` folder, removed afterwards. Each
figure is printed with a baseline measured in the same run on the same machine
(raw ``sqlite3``, ``cp``, an empty interpreter), and the ratio between the two:
machines are noisy, so the ratios are what to compare from day to day.

``speed vs baseline`` is always ``baseline time / Cairn time`` for the same work:
1.00 means as fast as the baseline, 0.50 half as fast.

Sections:

1. ``run.log_metric(key, value)`` single calls, first call to landed after flush.
2. ``run.log_metrics(dict_of_10, step=i)`` points, first call to landed after flush.
3. ``run.get_metric_history(key)`` of one long series, from a new Client.
4. ``run.log_artifact`` / ``run.download_artifact`` of a large file, against ``cp``.
5. ``import cairn`` (and ``cairn.Client(home=...)``) in a fresh interpreter.
6. Wide runs: ``run.log_metrics({f"layer{i}.norm": v ...}, step=s)`` of K keys x 100 steps,
   against the same number of points on one series (``run.log_metric("loss", v)``).
7. ``run.get_metric_columns(key)`` of a 5M-point series: the reading process's peak memory,
   against ``run.get_metric_history(key)`` (a list of points).
8. Small commits: ``run.log_tag(t)`` calls, one transaction each, against raw ``sqlite3``
   committing one row per transaction: where SQLite's ``synchronous`` setting shows.

``--synchronous normal|full|both`` runs the SQLite sections under that
``CAIRN_SQLITE_SYNCHRONOUS`` (the raw ``sqlite3`` baselines with the same pragma); ``both``
runs them under ``normal`` and again under ``full`` (sections 4 and 5 do not touch SQLite:
once) and ends with a table of both figures side by side.

``--pg URL`` (a PostgreSQL server's SQLAlchemy URL) runs sections 6 and 7 on PostgreSQL too,
each round in a new database on that server, dropped afterwards.

The exit code is 0 whether targets are met or not: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _report import (
    CLOSE_MARGIN,
    Result,
    Target,
    clean_environment,
    say,
    settle,
    table_lines,
    unsettle,
    write_synced,
)
from _report import report as shared_report

import cairn
from cairn.client import Run

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20

# MLflow 3.17 on this kind of machine, as reported in the issue (not measured here).
MLFLOW_SINGLE_CALLS_PER_S = 125.0
MLFLOW_BATCHED_POINTS_PER_S = 7_350.0
MLFLOW_HISTORY_POINTS = 100_000
MLFLOW_HISTORY_READ_S = 3.5
MLFLOW_IMPORT_S = 2.4

# SQLite's synchronous pragma for the store under test and its raw baselines
# (--synchronous); main() sets it before each pass.
SYNCHRONOUS = {"value": "normal"}

Row = tuple[int, int, int, float]


# -- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    single_calls: int
    batch_calls: int
    batch_keys: int
    history_points: int
    artifact_bytes: int
    artifact_reps: int
    log_reps: int
    read_reps: int
    import_reps: int
    wide_keys: tuple[int, ...]
    wide_steps: int
    columns_points: int
    small_commits: int
    scale: float  # time targets scale with the sizes

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            single_calls=200_000,
            batch_calls=100_000,
            batch_keys=10,
            history_points=1_000_000,
            artifact_bytes=256 * MiB,
            artifact_reps=3,
            log_reps=3,
            read_reps=3,
            import_reps=5,
            wide_keys=(1_000, 5_000),
            wide_steps=100,
            columns_points=5_000_000,
            small_commits=3_000,
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
            artifact_bytes=full.artifact_bytes // 10,
            artifact_reps=2,
            log_reps=2,
            read_reps=2,
            import_reps=3,
            wide_keys=tuple(k // 10 for k in full.wide_keys),
            wide_steps=full.wide_steps,
            columns_points=full.columns_points // 10,
            small_commits=full.small_commits // 10,
            scale=0.1,
        )


def report(title: str, results: Sequence[Result], notes: Sequence[str] = ()) -> None:
    shared_report(title, results, "cairn", notes)


# -- helpers ----------------------------------------------------------------------------


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextmanager
def fresh_folder(parent: Path, name: str) -> Iterator[Path]:
    folder = parent / name
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sqlite_insert_baseline(db: Path, rows: Sequence[Row]) -> float:
    """Seconds to land ``rows`` with one executemany in one transaction: a WAL database
    with Cairn's pragmas, one indexed row per point (the classic layout)."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={SYNCHRONOUS['value'].upper()}")
        con.execute(
            "CREATE TABLE points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, "
            "timestamp BIGINT NOT NULL, value FLOAT)"
        )
        con.execute("CREATE INDEX ix_points ON points (series_id, step, timestamp)")
        settle()
        start = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO points VALUES (?, ?, ?, ?)", rows)
        con.execute("COMMIT")
        elapsed = time.perf_counter() - start
        (count,) = con.execute("SELECT count(*) FROM points").fetchone()
        assert count == len(rows), (count, len(rows))
        return elapsed
    finally:
        con.close()


def count_points(home: Path) -> int:
    con = sqlite3.connect(home / "cairn.db")
    try:
        (count,) = con.execute("SELECT coalesce(sum(count), 0) FROM metric_chunks").fetchone()
        return int(count)
    finally:
        con.close()


def best_of(reps: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(reps))


# -- logging: shared by sections 1 and 2 ----------------------------------------------


def time_logging(
    tmp: Path, name: str, points: int, log_all: Callable[[Run], None]
) -> tuple[float, float]:
    """Seconds from the first call of ``log_all`` on a fresh run in a fresh home until
    its calls returned, and until every point landed (``run.flush()`` returned)."""
    with fresh_folder(tmp, name) as home:
        with cairn.Client(home=home) as client:
            run = client.start_run()
            settle()
            start = time.perf_counter()
            log_all(run)
            returned = time.perf_counter() - start
            run.flush()
            landed = time.perf_counter() - start
            unsettle()
        assert count_points(home) == points
    return returned, landed


def time_baseline(tmp: Path, name: str, rows: Sequence[Row]) -> float:
    with fresh_folder(tmp, name) as folder:
        elapsed = sqlite_insert_baseline(folder / "baseline.db", rows)
        unsettle()
    return elapsed


def best_logging(
    sizes: Sizes,
    tmp: Path,
    name: str,
    points: int,
    log_all: Callable[[Run], None],
    rows: Sequence[Row],
) -> tuple[float, float, float]:
    """Best (returned, landed) Cairn seconds and best baseline seconds over ``log_reps``
    rounds, interleaved so that the drifts of a noisy machine hit both alike."""
    returned = landed = base = math.inf
    for rep in range(sizes.log_reps):
        r, la = time_logging(tmp, f"{name}{rep}", points, log_all)
        if la < landed:
            returned, landed = r, la
        base = min(base, time_baseline(tmp, f"{name}-baseline{rep}", rows))
    return returned, landed, base


# -- 1. single log_metric calls ---------------------------------------------------------


def bench_single_calls(sizes: Sizes, tmp: Path) -> list[Result]:
    n = sizes.single_calls
    values = [(i % 1000) * 0.001 for i in range(n)]

    def log_all(run: Run) -> None:
        log = run.log_metric
        for value in values:
            log("loss", value)

    ts = now_ms()
    rows = [(1, i, ts, v) for i, v in enumerate(values)]
    returned, landed, base = best_logging(sizes, tmp, "single", n, log_all, rows)
    return [
        Result(
            "1",
            f"log_metric x {n:,}, to landed",
            n / landed,
            "calls/s",
            "sqlite3 executemany",
            n / base,
            base / landed,
            Target(">=", 100_000),
        ),
        Result("1", "  of which calls returned", n / returned, "calls/s"),
    ]


# -- 2. batched log_metrics -------------------------------------------------------------


def bench_batched(sizes: Sizes, tmp: Path) -> list[Result]:
    calls, width = sizes.batch_calls, sizes.batch_keys
    keys = [f"metric_{k}" for k in range(width)]
    batches = [{k: i + j * 0.1 for j, k in enumerate(keys)} for i in range(calls)]
    points = calls * width

    def log_all(run: Run) -> None:
        log = run.log_metrics
        for step, batch in enumerate(batches):
            log(batch, step=step)

    ts = now_ms()
    rows = [(s + 1, i, ts, i + s * 0.1) for i in range(calls) for s in range(width)]
    returned, landed, base = best_logging(sizes, tmp, "batched", points, log_all, rows)
    return [
        Result(
            "2",
            f"log_metrics({width} keys) x {calls:,}, to landed",
            points / landed,
            "points/s",
            "sqlite3 executemany",
            points / base,
            base / landed,
            Target(">=", 500_000),
        ),
        Result("2", "  of which calls returned", points / returned, "points/s"),
    ]


# -- 3. metric history read -------------------------------------------------------------


def bench_history(sizes: Sizes, tmp: Path) -> list[Result]:
    n = sizes.history_points
    with fresh_folder(tmp, "history") as home:
        with cairn.Client(home=home) as client:
            run = client.start_run()
            run_id = run.id
            log = run.log_metric
            start = time.perf_counter()
            for i in range(n):
                log("loss", i * 1e-6)
            run.flush()
            setup = time.perf_counter() - start

        def read_cairn() -> float:
            with cairn.Client(home=home) as fresh:  # nothing cached from the writer
                handle = fresh.get_run(run_id)
                settle()
                began = time.perf_counter()
                history = handle.get_metric_history("loss")
                elapsed = time.perf_counter() - began
                assert len(history) == n and history[-1].step == n - 1
                return elapsed

        # The baseline: the same points as one indexed row each in a plain SQLite table.
        baseline_db = home / "baseline.db"
        sqlite_insert_baseline(baseline_db, [(1, i, i, i * 1e-6) for i in range(n)])
        unsettle()

        def read_sqlite() -> float:
            con = sqlite3.connect(baseline_db)
            try:
                settle()
                began = time.perf_counter()
                rows = con.execute(
                    "SELECT step, timestamp, value FROM points WHERE series_id = ? "
                    "ORDER BY step, timestamp",
                    (1,),
                ).fetchall()
                elapsed = time.perf_counter() - began
                assert len(rows) == n
                return elapsed
            finally:
                con.close()

        ours = best_of(sizes.read_reps, read_cairn)
        base = best_of(sizes.read_reps, read_sqlite)
    return [
        Result(
            "3",
            f"get_metric_history, {n:,} points",
            ours,
            "s",
            "sqlite3 SELECT fetchall",
            base,
            base / ours,
            Target("<", 1.0 * sizes.scale),
        ),
        Result("3", "  read rate", n / ours, "points/s", "", n / base),
        Result("3", f"  (setup: log_metric x {n:,}, to landed)", n / setup, "calls/s"),
    ]


# -- 4. artifacts -----------------------------------------------------------------------


def timed_subprocess(args: Sequence[str | os.PathLike[str]]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - start


def bench_artifact(sizes: Sizes, tmp: Path) -> list[Result]:
    size = sizes.artifact_bytes
    mb = size / 1e6
    data = bytearray(os.urandom(size))
    cp_times: list[float] = []
    cp_sync_times: list[float] = []
    log_times: list[float] = []
    dl_times: list[float] = []
    dedup_times: list[float] = []
    with fresh_folder(tmp, "artifact") as work:
        src, dst = work / "src.bin", work / "dst.bin"
        for rep in range(sizes.artifact_reps):
            data[:16] = os.urandom(16)  # new bytes each rep: never a dedup hit by accident
            write_synced(src, data)
            settle()
            cp_times.append(timed_subprocess(["cp", src, dst]))
            dst.unlink()
            start = time.perf_counter()
            subprocess.run(["cp", src, dst], check=True)
            subprocess.run(["sync", dst], check=True)  # fsync the copy, as Cairn does
            cp_sync_times.append(time.perf_counter() - start)
            dst.unlink()
            with fresh_folder(work, f"home{rep}") as home, cairn.Client(home=home) as client:
                run = client.start_run()
                settle()
                start = time.perf_counter()
                info = run.log_artifact("blob", src)
                log_times.append(time.perf_counter() - start)
                assert info.size == size
                settle()
                start = time.perf_counter()
                out = run.download_artifact("blob", dst)
                dl_times.append(time.perf_counter() - start)
                assert out.stat().st_size == size
                dst.unlink()
                # The same bytes again: stored once, so this one is a dedup hit.
                again = client.start_run()
                settle()
                start = time.perf_counter()
                assert again.log_artifact("blob", src).digest == info.digest
                dedup_times.append(time.perf_counter() - start)
    cp, cp_sync = min(cp_times), min(cp_sync_times)
    log, dl, dedup = min(log_times), min(dl_times), min(dedup_times)
    trip = min(a + b for a, b in zip(log_times, dl_times, strict=True))
    label = f"{size / MiB:g} MiB"
    half = Target(">=", 0.5, on="ratio")
    return [
        Result("4", f"log_artifact {label}", mb / log, "MB/s", "cp", mb / cp, cp / log, half),
        Result("4", "download_artifact", mb / dl, "MB/s", "cp", mb / cp, cp / dl, half),
        Result(
            "4",
            "log + download (vs 2 x cp)",
            2 * mb / trip,
            "MB/s",
            "cp",
            mb / cp,
            2 * cp / trip,
            half,
        ),
        Result(
            "4",
            "  log_artifact vs cp + sync",
            mb / log,
            "MB/s",
            "cp+sync",
            mb / cp_sync,
            cp_sync / log,
        ),
        Result(
            "4", "  download vs cp + sync", mb / dl, "MB/s", "cp+sync", mb / cp_sync, cp_sync / dl
        ),
        Result(
            "4", "  log_artifact again (dedup hit)", mb / dedup, "MB/s", "cp", mb / cp, cp / dedup
        ),
    ]


# -- 5. import time ---------------------------------------------------------------------


def bench_import(sizes: Sizes, tmp: Path, env: dict[str, str]) -> list[Result]:
    reps = sizes.import_reps
    client_code = "import sys, cairn; cairn.Client(home=sys.argv[1]).close()"

    def spawn(environ: dict[str, str], *args: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, cwd=REPO, env=environ)
        return time.perf_counter() - start

    with fresh_folder(tmp, "import") as work:
        # As installed by pip (bytecode compiled once): a private pycache, warmed up first.
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = os.fspath(work / "pycache")
        existing = work / "existing"
        spawn(env, "-c", client_code, os.fspath(existing))  # create it once
        spawn(cached, "-c", client_code, os.fspath(work / "warm"))  # write the bytecode
        times: dict[str, list[float]] = {}
        for rep in range(reps):  # interleaved, so drifts hit all alike
            for name, environ in (("", env), ("cached ", cached)):
                for what, args in (
                    ("pass", ("-c", "pass")),
                    ("import", ("-c", "import cairn")),
                    ("new", ("-c", client_code, os.fspath(work / f"new{name.strip()}{rep}"))),
                    ("old", ("-c", client_code, os.fspath(existing))),
                ):
                    times.setdefault(name + what, []).append(spawn(environ, *args))
    best = {k: min(v) for k, v in times.items()}
    base, base_cached = best["pass"], best["cached pass"]
    as_is = " (no .pyc cache)" if env.get("PYTHONDONTWRITEBYTECODE") else ""
    return [
        Result(
            "5",
            f"import cairn{as_is}",
            best["import"] - base,
            "s",
            "python -c pass",
            base,
            None,
            Target("<", 0.3),
        ),
        Result("5", "  import + Client(home=new folder)", best["new"] - base, "s"),
        Result("5", "  import + Client(home=existing)", best["old"] - base, "s"),
        Result(
            "5",
            "  import cairn, bytecode cached",
            best["cached import"] - base_cached,
            "s",
            "python -c pass",
            base_cached,
        ),
        Result("5", "  import + Client(new folder), cached", best["cached new"] - base_cached, "s"),
        Result("5", "  import + Client(existing), cached", best["cached old"] - base_cached, "s"),
    ]


# -- stores for sections 6 and 7: SQLite in the home, or a new PostgreSQL database --------


@contextmanager
def pg_database(server: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server`` (a SQLAlchemy URL),
    dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"cairn_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def fresh_store(tmp: Path, name: str, pg: str | None) -> Iterator[tuple[Path, str | None]]:
    """A fresh home, with its own SQLite store (``pg`` None) or a new database on ``pg``."""
    with fresh_folder(tmp, name) as home:
        if pg is None:
            yield home, None
        else:
            with pg_database(pg) as url:
                yield home, url


def stored_points(home: Path, url: str | None) -> int:
    if url is None:
        return count_points(home)
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as conn:
        row = conn.execute("SELECT coalesce(sum(count), 0) FROM metric_chunks").fetchone()
        return int(row[0]) if row else 0


def store_label(pg: str | None) -> str:
    return "SQLite" if pg is None else "PostgreSQL"


# -- 6. wide runs -----------------------------------------------------------------------


def time_store_logging(
    tmp: Path, name: str, pg: str | None, points: int, log_all: Callable[[Run], None]
) -> float:
    """Seconds from the first call of ``log_all`` on a fresh run in a fresh store until
    every point landed (``run.flush()`` returned)."""
    with fresh_store(tmp, name, pg) as (home, url):
        with cairn.Client(home=home, store=url) as client:
            run = client.start_run()
            settle()
            start = time.perf_counter()
            log_all(run)
            run.flush()
            landed = time.perf_counter() - start
            unsettle()
        assert stored_points(home, url) == points
    return landed


def bench_wide(sizes: Sizes, tmp: Path, pg: str | None) -> list[Result]:
    steps = sizes.wide_steps
    results: list[Result] = []
    for width in sizes.wide_keys:
        n = width * steps
        keys = [f"layer{i}.norm" for i in range(width)]
        batches = [{k: s + i * 1e-3 for i, k in enumerate(keys)} for s in range(steps)]
        values = [(i % 1000) * 0.001 for i in range(n)]

        def log_wide(run: Run, batches: list[dict[str, float]] = batches) -> None:
            log = run.log_metrics
            for step, batch in enumerate(batches):
                log(batch, step=step)

        def log_single(run: Run, values: list[float] = values) -> None:
            log = run.log_metric
            for value in values:
                log("loss", value)

        wide = single = math.inf
        for rep in range(sizes.log_reps):  # interleaved: drifts hit both alike
            name = f"wide{width}-{rep}"
            single = min(single, time_store_logging(tmp, f"{name}-single", pg, n, log_single))
            wide = min(wide, time_store_logging(tmp, name, pg, n, log_wide))
        results.append(
            Result(
                "6",
                f"wide run {width:,} keys x {steps} steps ({store_label(pg)}), to landed",
                n / wide,
                "points/s",
                f"log_metric x {n:,}, 1 key",
                n / single,
                single / wide,
                Target(">=", 1 / 1.5, on="ratio"),
            )
        )
    return results


# -- 7. columnar history: peak memory ------------------------------------------------------

# Run in a new interpreter, so that its peak memory is the read's own: the reading process's
# RSS before the call (after a warm-up read of a tiny series) and its peak RSS after it.
_READ_PEAK = """
import json, resource, sys, time
import cairn

def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)

home, store, run_id, key, method = sys.argv[1:6]
client = cairn.Client(home=home, store=store or None)
read = getattr(client.get_run(run_id), method)
read("warm")
try:  # reset the peak (Linux); else the lifetime peak, which may hide a smaller read
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = rss_kib("VmRSS")
except OSError:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
history = read(key)
elapsed = time.perf_counter() - start
peak = rss_kib("VmHWM")
print(json.dumps({"n": len(history), "peak_mib": (peak - before) / 1024, "s": elapsed}))
"""


def read_peak(home: Path, url: str | None, run_id: str, method: str) -> tuple[float, float]:
    """(peak MB above the starting RSS, seconds) of ``run.<method>("loss")`` in a new process."""
    env = dict(os.environ)
    # The child imports the same cairn as this process.
    env["PYTHONPATH"] = os.pathsep.join(
        [os.fspath(Path(cairn.__file__).parent.parent), env.get("PYTHONPATH", "")]
    )
    out = subprocess.run(
        [sys.executable, "-c", _READ_PEAK, home, url or "", run_id, "loss", method],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
    )
    found = json.loads(out.stdout)
    return found["peak_mib"] * MiB / 1e6, found["s"]


def bench_columns(sizes: Sizes, tmp: Path, pg: str | None) -> list[Result]:
    n = sizes.columns_points
    with fresh_store(tmp, "columns", pg) as (home, url):
        with cairn.Client(home=home, store=url) as client:
            run = client.start_run()
            run_id = run.id
            log = run.log_metric
            for i in range(10):
                log("warm", float(i))
            for i in range(n):
                log("loss", i * 1e-6)
            run.flush()
        columns = [read_peak(home, url, run_id, "get_metric_columns") for _ in range(2)]
        points = read_peak(home, url, run_id, "get_metric_history")
    mb, seconds = min(columns)
    label = f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n:,}"
    return [
        Result(
            "7",
            f"history of {label} points, columns ({store_label(pg)}): peak MB",
            mb,
            "MB",
            "get_metric_history",
            points[0],
            points[0] / mb if mb > 0 else None,
            Target("<", 200 * sizes.scale),
        ),
        Result("7", "  read time, columns", seconds, "s", "get_metric_history", points[1]),
    ]


# -- 8. small commits --------------------------------------------------------------------


def sqlite_commits_baseline(db: Path, count: int) -> float:
    """Seconds to commit ``count`` one-row transactions with raw sqlite3 (WAL, the pragma
    under test)."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={SYNCHRONOUS['value'].upper()}")
        con.execute("CREATE TABLE tags (run_id INTEGER NOT NULL, tag TEXT NOT NULL)")
        settle()
        start = time.perf_counter()
        for i in range(count):
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO tags VALUES (1, ?)", (f"t{i}",))
            con.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        con.close()


MLFLOW_PYTHON = "/work/peers/mlflow/bin/python"  # MLflow's own virtual environment
MLFLOW_COMMITS = """
import sys, time, mlflow
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}/mlflow.db")
mlflow.set_experiment("commits")
with mlflow.start_run():
    for i in range(20):  # warm-up: imports, tables, connections
        mlflow.log_metric("warm", i, step=i)
    count = int(sys.argv[2])
    start = time.perf_counter()
    for i in range(count):
        mlflow.log_metric("loss", i * 0.5, step=i)
    print(count / (time.perf_counter() - start))
"""


def mlflow_commits(python: str, tmp: Path, count: int) -> float | None:
    """MLflow's ``log_metric`` calls/s on its SQLite store (each call a commit, at SQLite's
    defaults: rollback journal, synchronous=FULL), in its own interpreter; None without
    MLflow."""
    if not Path(python).exists():
        return None
    with fresh_folder(tmp, "mlflow-commits") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        env["DO_NOT_TRACK"] = "true"
        done = subprocess.run(
            [python, "-c", MLFLOW_COMMITS, str(folder), str(count)],
            capture_output=True,
            text=True,
            env=env,
            cwd=folder,
            check=False,
            timeout=600,
        )
    if done.returncode != 0:
        say(f"  (MLflow failed: {done.stderr.strip()[-300:]})")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def bench_small_commits(sizes: Sizes, tmp: Path, mlflow_python: str | None) -> list[Result]:
    count = sizes.small_commits
    ours = base = math.inf
    for rep in range(sizes.log_reps):
        with fresh_folder(tmp, f"commits{rep}") as home, cairn.Client(home=home) as client:
            run = client.start_run()
            settle()
            start = time.perf_counter()
            for i in range(count):
                run.log_tag(f"t{i}")
            ours = min(ours, time.perf_counter() - start)
            unsettle()
            assert len(run.get_tags()) == count
        with fresh_folder(tmp, f"commits-baseline{rep}") as folder:
            base = min(base, sqlite_commits_baseline(folder / "baseline.db", count))
            unsettle()
    results = [
        Result(
            "8",
            f"run.log_tag x {count:,} (a commit each)",
            count / ours,
            "commits/s",
            "sqlite3, a row per commit",
            count / base,
            base / ours,
        )
    ]
    theirs = None if mlflow_python is None else mlflow_commits(mlflow_python, tmp, count // 10)
    if theirs is not None:
        results.append(
            Result(
                "8",
                f"  MLflow log_metric x {count // 10:,} (measured here)",
                theirs,
                "commits/s",
                "cairn log_tag",
                count / ours,
                theirs / (count / ours),
            )
        )
    return results


# -- MLflow context ---------------------------------------------------------------------


def mlflow_context(results: Sequence[Result]) -> list[str]:
    by_section = {r.section: r for r in results if r.target is not None}
    rows: list[tuple[str, str, str, str]] = [
        ("figure", "MLflow 3.17 (issue)", "cairn", "cairn vs MLflow")
    ]
    if "1" in by_section:
        ours = by_section["1"].value
        rows.append(
            (
                "single log_metric calls/s",
                f"{MLFLOW_SINGLE_CALLS_PER_S:,.0f}",
                f"{ours:,.0f}",
                f"{ours / MLFLOW_SINGLE_CALLS_PER_S:,.0f}x",
            )
        )
    if "2" in by_section:
        ours = by_section["2"].value
        rows.append(
            (
                "batched points/s (SQLite)",
                f"{MLFLOW_BATCHED_POINTS_PER_S:,.0f}",
                f"{ours:,.0f}",
                f"{ours / MLFLOW_BATCHED_POINTS_PER_S:,.0f}x",
            )
        )
    history = [r for r in results if r.section == "3" and r.unit == "points/s"]
    if history:
        ours = history[0].value
        theirs = MLFLOW_HISTORY_POINTS / MLFLOW_HISTORY_READ_S
        rows.append(
            (
                "history read points/s",
                f"{theirs:,.0f} ({MLFLOW_HISTORY_POINTS:,} in {MLFLOW_HISTORY_READ_S} s)",
                f"{ours:,.0f}",
                f"{ours / theirs:,.0f}x",
            )
        )
    if "5" in by_section:
        ours = by_section["5"].value
        rows.append(
            (
                "import time",
                f"{MLFLOW_IMPORT_S:.1f} s",
                f"{ours:.3f} s",
                f"{MLFLOW_IMPORT_S / ours:,.0f}x" if ours > 0 else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


def durability_lines(normal: Sequence[Result], full: Sequence[Result]) -> list[str]:
    """One line per figure measured under both settings: each value, and full / normal."""
    pairs = {(r.section, r.name): r for r in full}
    rows = [("figure", "normal", "full", "full / normal")]
    for ours in normal:
        other = pairs.get((ours.section, ours.name))
        if other is None or ours.value <= 0:
            continue
        rows.append(
            (
                f"{ours.section}. {ours.name.strip()}",
                f"{ours.value:,.3g} {ours.unit}"
                if ours.unit == "s"
                else f"{ours.value:,.0f} {ours.unit}",
                f"{other.value:,.3g} {other.unit}"
                if other.unit == "s"
                else f"{other.value:,.0f} {other.unit}",
                f"{other.value / ours.value:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines


Section = tuple[str, str, Callable[[Path], list[Result]], list[str]]


def run_passes(
    sections: Sequence[Section], choices: Sequence[str], only: str, env: dict[str, str]
) -> tuple[list[Result], dict[str, list[Result]]]:
    """Run and report the sections once per ``synchronous`` choice; the first pass's
    results (for the targets), and every pass's by choice."""
    results: list[Result] = []
    by_choice: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for n, choice in enumerate(choices):
            SYNCHRONOUS["value"] = choice
            os.environ["CAIRN_SQLITE_SYNCHRONOUS"] = choice
            env["CAIRN_SQLITE_SYNCHRONOUS"] = choice
            for key, title, run_section, notes in sections:
                if key not in only or (n > 0 and key in "45"):
                    continue  # artifacts and imports do not touch SQLite: measured once
                if n > 0 and "postgresql" in title.lower():
                    continue
                try:
                    section_results = run_section(tmp)
                finally:
                    unsettle()
                by_choice.setdefault(choice, []).extend(section_results)
                if n == 0:
                    results.extend(section_results)
                report(f"{title} [synchronous={choice}]", section_results, notes)
        os.environ.pop("CAIRN_SQLITE_SYNCHRONOUS", None)
    return results, by_choice


# -- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes: a smoke test")
    parser.add_argument(
        "--pg",
        metavar="URL",
        help="also run sections 6 and 7 on this PostgreSQL server (a SQLAlchemy URL, "
        "e.g. postgresql+psycopg://user@host:5432/postgres); each round gets a new database",
    )
    parser.add_argument(
        "--mlflow-python",
        default=MLFLOW_PYTHON,
        help="an interpreter with MLflow, for section 8's MLflow figure (skipped if absent)",
    )
    parser.add_argument(
        "--synchronous",
        choices=("normal", "full", "both"),
        default="normal",
        help="CAIRN_SQLITE_SYNCHRONOUS for the SQLite sections (and their raw baselines); "
        "both: each section under normal, then again under full, side by side at the end",
    )
    parser.add_argument(
        "--only",
        dest="only",
        default="12345678",
        help="sections to run, e.g. --only 13 (default: all)",
    )
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes.full()
    env = clean_environment()
    choices = ("normal", "full") if args.synchronous == "both" else (args.synchronous,)

    mode = "quick: 10x smaller, time targets scaled" if args.quick else "full sizes"
    say(f"Cairn tracking benchmark ({mode})")
    say(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, cairn {cairn.__version__} at {Path(cairn.__file__).parent}"
    )
    say("speed vs baseline = baseline time / cairn time for the same work (1.00 = as fast)")

    sections: list[Section] = [
        (
            "1",
            "1. log_metric single calls (first call to landed after run.flush())",
            lambda tmp: bench_single_calls(sizes, tmp),
            ["baseline: prebuilt (series_id, step, timestamp, value) rows, indexed WAL table"],
        ),
        (
            "2",
            "2. log_metrics batched points (first call to landed after run.flush())",
            lambda tmp: bench_batched(sizes, tmp),
            ["baseline: the same rows (10 interleaved series) by one executemany"],
        ),
        (
            "3",
            f"3. metric history read (new Client on the same home; best of {sizes.read_reps})",
            lambda tmp: bench_history(sizes, tmp),
            ["baseline: raw sqlite3 SELECT ... ORDER BY step, timestamp, one row per point"],
        ),
        (
            "4",
            f"4. artifacts (best of {sizes.artifact_reps}, new random bytes each rep)",
            lambda tmp: bench_artifact(sizes, tmp),
            [
                "ratios here are cp time / cairn time; Cairn also hashes (BLAKE3) and fsyncs",
                "the dedup row logs bytes already stored (reported as such, not in targets)",
            ],
        ),
        (
            "5",
            f"5. import time (fresh interpreter, best of {sizes.import_reps})",
            lambda tmp: bench_import(sizes, tmp, env),
            [
                "times are minus an empty `python -c pass`; 'cached' rows run with a warmed "
                "private PYTHONPYCACHEPREFIX (as after a pip install, which compiles bytecode)",
            ],
        ),
    ]
    sections.append(
        (
            "8",
            f"8. small commits (best of {sizes.log_reps})",
            lambda tmp: bench_small_commits(sizes, tmp, args.mlflow_python),
            [
                "each log_tag is one write transaction: its commit (and, under full, its "
                "fsync of the WAL) is most of its cost",
                "MLflow (its own venv, --mlflow-python): log_metric calls on its SQLite store, "
                "each a commit at SQLite's defaults (rollback journal, synchronous=FULL); its "
                "ratio is MLflow / cairn",
            ],
        )
    )
    for pg in (None, args.pg) if args.pg else (None,):
        where = store_label(pg)
        sections.append(
            (
                "6",
                f"6. wide runs, {where} (best of {sizes.log_reps}, interleaved with one series)",
                lambda tmp, pg=pg: bench_wide(sizes, tmp, pg),
                [
                    "speed vs baseline = one-series time / wide time for the same number of "
                    "points (log_metrics(dict of K keys, step=s) for s < "
                    f"{sizes.wide_steps}, against log_metric('loss', v) calls)"
                ],
            )
        )
        sections.append(
            (
                "7",
                f"7. columnar history, {where} (a new process reads; best of 2)",
                lambda tmp, pg=pg: bench_columns(sizes, tmp, pg),
                [
                    "peak MB = the reading process's peak RSS above its RSS before the call; "
                    "the baseline reads the same series as a list of MetricPoint",
                ],
            )
        )
    results, by_choice = run_passes(sections, choices, args.only, env)

    say()
    say("Targets")
    for line in table_lines([r for r in results if r.target is not None], "cairn"):
        say(line)
    say()
    say("For context: MLflow 3.17 figures from the issue (another run, not measured here)")
    for line in mlflow_context(results):
        say(line)
    if len(choices) > 1:
        say()
        say("Durability: the same figures under CAIRN_SQLITE_SYNCHRONOUS=normal and =full")
        for line in durability_lines(by_choice["normal"], by_choice["full"]):
            say(line)
    missed = [r.name for r in results if r.status == "MISSED"]
    close = [r.name for r in results if r.status == "close"]
    say()
    say(f"targets missed: {', '.join(missed) if missed else 'none'}")
    say(f"targets close (within {CLOSE_MARGIN:.0%}): {', '.join(close) if close else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
