"""Search benchmark (issue 13): find runs among 10,000 and 100,000, embedded and through a
real server, on SQLite and PostgreSQL, with MLflow's ``search_runs`` on the same runs in the
same run.

Usage::

    .venv/bin/python benchmarks/search.py                      # SQLite, 10k and 100k, + MLflow
    .venv/bin/python benchmarks/search.py --pg "$(bash scripts/postgres.sh lease $$)"
    .venv/bin/python benchmarks/search.py --only pg --pg URL   # PostgreSQL alone
    .venv/bin/python benchmarks/search.py --sizes 10000 --no-server --repeats 5
    .venv/bin/python benchmarks/search.py fill --n 100000 --home /tmp/search-bench/sqlite-100k
    .venv/bin/python benchmarks/search.py fill --n 100000 --home DIR --store postgresql+psycopg://...
    .venv/bin/python benchmarks/search.py fill-mlflow --n 10000 --dir /tmp/search-bench/mlflow-10k

The runs (``benchmarks/_search_data.py``): N runs across 10 experiments of one project, each
with 5 hyperparameters of mixed types, 5 metrics with a 10-point history, 3 tags and 2
attributes. Filling is slow next to searching, so stores are filled once and reused: SQLite
homes ``--data/sqlite-{10k,100k}`` and MLflow's ``--data/mlflow-10k`` (default data folder
``/tmp/search-bench``) are filled when missing and kept; PostgreSQL databases
``search_bench_{10k,100k}`` are made on the ``--pg`` server, filled, and dropped at the end
(``--keep-pg``: kept, and reused by the next run). How the fill stays fast and still stores
what the API stores: ``benchmarks/_search_fill.py``.

Measured (median of ``--repeats`` after one warm-up; the listing: of a third as many):

a. ``find_runs("metrics.acc > 0.9 and hyperparameters.model = 'tree'", order_by=
   ["-metrics.acc"], limit=100)``: < 20 ms at 10,000, < 60 ms at 100,000. MLflow, same run:
   ``MlflowClient.search_runs`` of ``metrics.acc > 0.9 and params.model = 'tree'`` ordered by
   ``metrics.acc DESC``, ``max_results=100``.
b. ``find_runs`` of a query with ``or`` and parentheses (``QUERY_B``), limit 100: < 60 ms at
   100,000 (MLflow's language has neither).
c. Every run with its hyperparameters and latest metrics, by pages of 1,000
   (``iter_runs(page_size=1000)``): >= 20x MLflow (``search_runs`` pages of 1,000 reading
   ``run.data.params`` and ``.metrics``) at 10,000, embedded against MLflow on its SQLite file
   and server against ``mlflow server`` (its default 4 workers); Cairn at 100,000 too.
d. ``count_runs`` of (a)'s filter: < 50 ms at 100,000.

Every answer is checked against the generator (the top 100 and the counts computed in
Python), and (a)'s top 100 against MLflow's. MLflow's figures are on SQLite; the PostgreSQL
rows' ratios compare with those. Servers listen on 127.0.0.1 only and are stopped at the
end; each step is bounded in time. The exit code is 0 whatever the figures (a measuring tool).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import _search_fill
from _report import CLOSE_MARGIN, Target, clean_environment, render, say
from _search_data import make_run
from mlflow_artifacts import mlflow_environment, mlflow_version, start_mlflow, stopping
from server import ServerFailed, start_server

import cairn

DEFAULT_DATA = "/tmp/search-bench"
DEFAULT_MLFLOW_PYTHON = "/work/peers/mlflow/bin/python"
HERE = Path(__file__).resolve().parent

QUERY_A = "metrics.acc > 0.9 and hyperparameters.model = 'tree'"
ORDER_A = ["-metrics.acc"]
QUERY_B = (
    "(metrics.acc > 0.95 or tags contains 'best') and "
    "(hyperparameters.depth >= 8 or hyperparameters.model in ('gbm', 'rf'))"
)
PAGE = 1000
FILL_LIMIT_S = 1500.0  # one fill of 100,000 runs, on a loaded machine
MLFLOW_LIMIT_S = 900.0  # one MLflow timing process


def label(n: int) -> str:
    return f"{n // 1000}k"


# -- what the answers must be ---------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    top: list[str]  # (a): names, best acc first
    count_a: int
    count_b: int
    newest_b: int  # (b) returns min(100, count_b) runs


def expected(n: int) -> Expected:
    rows = []
    count_b = 0
    for i in range(n):
        run = make_run(i)
        acc = run.metrics["acc"][-1]
        hp = run.hyperparameters
        if acc > 0.9 and hp["model"] == "tree":
            rows.append((acc, run.name))
        depth = hp["depth"]
        assert isinstance(depth, int)
        if (acc > 0.95 or "best" in run.tags) and (depth >= 8 or hp["model"] in ("gbm", "rf")):
            count_b += 1
    rows.sort(reverse=True)
    return Expected([name for _, name in rows[:100]], len(rows), count_b, min(100, count_b))


# -- timing -------------------------------------------------------------------------------


@dataclass
class Figure:
    store: str  # SQLite / PostgreSQL
    n: int
    mode: str  # embedded / server
    measure: str  # a, b, c, d
    times: list[float]
    target: Target | None = None
    mlflow: list[float] | None = None  # MLflow's times, same measure and mode
    check: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def ratio(self) -> float | None:
        if not self.mlflow:
            return None
        return statistics.median(self.mlflow) / self.median

    def status(self) -> str:
        if self.target is None:
            return ""
        value = self.ratio if self.target.on == "ratio" else self.median
        if value is None:
            return "n/a"
        return self.target.check(value)


def timed(call: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    result = call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


MEASURES = {
    "a": "top-100 of acc > 0.9 and model = 'tree', by -acc",
    "b": "top-100 (newest) of (or) and (or)",
    "c": "every run + values, pages of 1,000",
    "d": "count_runs of (a)",
}


def measure_cairn(
    client: cairn.Client, store: str, n: int, mode: str, want: Expected, repeats: int
) -> list[Figure]:
    figures = []
    big = n >= 100_000

    def top() -> list[str]:
        page = client.find_runs(QUERY_A, order_by=ORDER_A, limit=100)
        return [r.info.name for r in page.items]

    times, names = timed(top, repeats)
    check = "ok" if names == want.top else f"WRONG: {len(names)} runs, not the expected top 100"
    figures.append(
        Figure(store, n, mode, "a", times, Target("<", 0.060 if big else 0.020), check=check)
    )
    say(f"  {store} {label(n)} {mode} (a) {ms(statistics.median(times))} {check}")

    def either() -> int:
        return len(client.find_runs(QUERY_B, limit=100).items)

    times, found = timed(either, repeats)
    check = "ok" if found == want.newest_b else f"WRONG: {found} runs, not {want.newest_b}"
    figures.append(
        Figure(store, n, mode, "b", times, Target("<", 0.060) if big else None, check=check)
    )
    say(f"  {store} {label(n)} {mode} (b) {ms(statistics.median(times))} {check}")

    def count() -> int:
        return int(client.count_runs(QUERY_A))

    times, counted = timed(count, repeats)
    check = "ok" if counted == want.count_a else f"WRONG: {counted}, not {want.count_a}"
    figures.append(
        Figure(store, n, mode, "d", times, Target("<", 0.050) if big else None, check=check)
    )
    say(f"  {store} {label(n)} {mode} (d) {ms(statistics.median(times))} {check}")

    def listing() -> int:
        count = 0
        for record in client.iter_runs(page_size=PAGE):
            _ = record.hyperparameters, record.metrics
            count += 1
        return count

    times, listed = timed(listing, max(1, repeats // 3))
    check = "ok" if listed == n else f"WRONG: {listed} runs listed, not {n}"
    ratio = None if big else Target(">=", 20.0, on="ratio")
    figures.append(Figure(store, n, mode, "c", times, ratio, check=check))
    say(f"  {store} {label(n)} {mode} (c) {ms(statistics.median(times))} {check}")
    return figures


# -- the stores ---------------------------------------------------------------------------


def cairn_client(home: Path, store: str | None) -> cairn.Client:
    return cairn.Client(home=home, store=store, environ={})


def ensure_filled(home: Path, store: str | None, n: int) -> None:
    """A store holding runs 0..n-1: reused if it holds them, filled if empty."""
    home.mkdir(parents=True, exist_ok=True)
    with cairn_client(home, store) as client:
        have = client.count_runs("")
        if have == n:
            say(f"  reusing {home if store is None else safe(store)}: {have:,} runs")
            return
        if have:
            raise SystemExit(f"{home} holds {have:,} runs, not 0 or {n:,}: remove it")
    # In a child process: bounded in time, and its memory is given back.
    command = [
        sys.executable,
        os.fspath(HERE / "search.py"),
        "fill",
        "--n",
        str(n),
        "--home",
        os.fspath(home),
    ]
    if store is not None:
        command += ["--store", store]
    subprocess.run(command, check=True, timeout=FILL_LIMIT_S)


def safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def pg_databases(server: str, names: Sequence[str], keep: bool) -> Iterator[dict[str, str]]:
    """The named databases on the server of ``server`` (a SQLAlchemy URL), made if missing;
    dropped at the end unless ``keep``."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        present = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        for name in names:
            if name not in present:
                conn.execute(f"CREATE DATABASE {name}")
    try:
        yield {
            name: make_url(server).set(database=name).render_as_string(hide_password=False)
            for name in names
        }
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                for name in names:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            say(f"  dropped {', '.join(names)}")


# -- MLflow ---------------------------------------------------------------------------------


def run_mlflow(
    python: str, args: Sequence[str], env: dict[str, str], cwd: Path, limit: float = MLFLOW_LIMIT_S
) -> dict[str, Any]:
    """MLflow's side in its own Python; its ``@@bench`` lines by op."""
    done = subprocess.run(
        [python, os.fspath(HERE / "_search_mlflow.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=limit,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"MLflow's side failed ({done.returncode}):\n{done.stderr[-2000:]}")
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith("@@bench "):
            message = json.loads(line[len("@@bench ") :])
            found[message["op"]] = message
    return found


def ensure_mlflow(python: str, folder: Path, n: int, env: dict[str, str]) -> None:
    if (folder / "filled").exists():
        say(f"  reusing {folder}: {n:,} MLflow runs")
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    say(f"  filling {folder} with {n:,} MLflow runs ...")
    done = run_mlflow(python, ["fill", os.fspath(folder), str(n)], env, folder, FILL_LIMIT_S)
    say(f"  {n:,} MLflow runs in {done['fill']['seconds']:.0f} s")
    (folder / "filled").write_text(f"{n}\n")


# -- the run --------------------------------------------------------------------------------


@dataclass
class Plan:
    data: Path
    sizes: list[int]
    stores: list[str]  # "sqlite", "pg"
    pg: str | None
    keep_pg: bool
    server: bool
    repeats: int
    mlflow_python: str | None
    tmp: Path
    env: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def measure_store(
    plan: Plan, store: str, n: int, home: Path, url: str | None, want: Expected
) -> None:
    label_store = "SQLite" if url is None else "PostgreSQL"
    with cairn_client(home, url) as client:
        plan.figures += measure_cairn(client, label_store, n, "embedded", want, plan.repeats)
    if not plan.server:
        return
    env = dict(plan.env)
    if url is not None:
        env["CAIRN_STORE_URI"] = url
    log = plan.tmp / f"cairn-server-{store}-{label(n)}.log"
    with (
        stopping(start_server(home, None, env, log, plan.tmp)) as server,
        cairn.Client(server.url, environ={}) as client,
    ):
        plan.figures += measure_cairn(client, label_store, n, "server", want, plan.repeats)


def measure_mlflow(plan: Plan, n: int, want: Expected) -> None:
    assert plan.mlflow_python is not None
    env = mlflow_environment(plan.env)
    folder = plan.data / f"mlflow-{label(n)}"
    ensure_mlflow(plan.mlflow_python, folder, n, env)
    repeats = str(plan.repeats)
    db = folder / "mlflow.db"
    embedded = run_mlflow(
        plan.mlflow_python, ["bench", f"sqlite:///{db}", str(n), repeats], env, plan.tmp
    )
    attach(plan, n, "embedded", embedded, want)
    if not plan.server:
        return
    # A copy: the server may write to its store (migrations, its own tables).
    served = plan.tmp / "mlflow-server"
    served.mkdir(exist_ok=True)
    shutil.copyfile(db, served / "mlflow.db")
    say("  starting mlflow server ...")
    with stopping(start_mlflow(plan.mlflow_python, None, served, env)) as server:
        say(f"  {server.url}: {server.workers} workers (its default)")
        remote = run_mlflow(
            plan.mlflow_python, ["bench", server.url, str(n), repeats], env, plan.tmp
        )
    attach(plan, n, "server", remote, want)


def attach(plan: Plan, n: int, mode: str, found: dict[str, Any], want: Expected) -> None:
    """MLflow's times beside Cairn's (every store: MLflow's are on SQLite)."""
    top, listing = found["top"], found["list"]
    same = top["names"] == want.top
    say(
        f"  MLflow {label(n)} {mode}: (a) {ms(top['seconds'])} "
        f"({'the same 100 runs' if same else 'NOT the expected 100 runs'}), "
        f"(c) {ms(listing['seconds'])}"
    )
    if not same:
        plan.notes.append(f"MLflow {mode}: its top 100 differs from the generator's")
    for fig in plan.figures:
        if fig.n == n and fig.mode == mode and fig.measure in ("a", "c"):
            fig.mlflow = top["times"] if fig.measure == "a" else listing["times"]
    each_top = ", ".join(ms(t) for t in top["times"])
    each_list = ", ".join(ms(t) for t in listing["times"])
    plan.notes.append(
        f"MLflow {mode} medians: (a) {ms(top['seconds'])} [{each_top}]; "
        f"(c) {ms(listing['seconds'])} [{each_list}]"
    )


def run_plan(plan: Plan) -> None:
    wants = {}
    for n in plan.sizes:
        started = time.perf_counter()
        wants[n] = expected(n)
        say(
            f"expected answers for {n:,} runs computed in {time.perf_counter() - started:.1f} s: "
            f"(a) {wants[n].count_a:,} runs match, (b) {wants[n].count_b:,}"
        )
    if "sqlite" in plan.stores:
        for n in plan.sizes:
            say(f"SQLite, {n:,} runs")
            home = plan.data / f"sqlite-{label(n)}"
            ensure_filled(home, None, n)
            measure_store(plan, "sqlite", n, home, None, wants[n])
            if plan.mlflow_python is not None and n <= 10_000:
                measure_mlflow(plan, n, wants[n])
    if "pg" in plan.stores and plan.pg is not None:
        names = [f"search_bench_{label(n)}" for n in plan.sizes]
        with pg_databases(plan.pg, names, plan.keep_pg) as urls:
            for n, name in zip(plan.sizes, names, strict=True):
                say(f"PostgreSQL, {n:,} runs")
                home = plan.data / f"pg-home-{label(n)}"  # its objects folder
                ensure_filled(home, urls[name], n)
                measure_store(plan, "pg", n, home, urls[name], wants[n])


def report(plan: Plan) -> list[str]:
    cells: list[Sequence[str]] = [
        (
            "store",
            "runs",
            "mode",
            "measure",
            "Cairn median",
            "range",
            "MLflow",
            "MLflow/Cairn",
            "target",
            "status",
            "answer",
        )
    ]
    missed = []
    order = {"a": 0, "b": 1, "c": 2, "d": 3}
    for fig in sorted(
        plan.figures, key=lambda f: (f.store != "SQLite", f.n, f.mode, order[f.measure])
    ):
        ratio = fig.ratio
        target = ""
        if fig.target is not None:
            target = (
                f"ratio {fig.target.op} {fig.target.limit:g}"
                if fig.target.on == "ratio"
                else f"{fig.target.op} {ms(fig.target.limit)}"
            )
        status = fig.status()
        if status == "MISSED" or fig.check != "ok":
            missed.append(
                f"{fig.store} {label(fig.n)} {fig.mode} ({fig.measure}) {status} {fig.check}"
            )
        cells.append(
            (
                fig.store,
                label(fig.n),
                fig.mode,
                f"({fig.measure}) {MEASURES[fig.measure]}",
                ms(fig.median),
                f"{ms(min(fig.times))}-{ms(max(fig.times))}",
                "" if not fig.mlflow else ms(statistics.median(fig.mlflow)),
                "" if ratio is None else f"{ratio:,.1f}x",
                target,
                status,
                fig.check,
            )
        )
    say()
    for line in render(cells, {4, 5, 6, 7}):
        say(line)
    for note in plan.notes:
        say(f"  note: {note}")
    return missed


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cmd_bench(args: argparse.Namespace) -> int:
    base = clean_environment()
    stores = ["sqlite", "pg"] if args.only is None else [args.only]
    if "pg" in stores and args.pg is None:
        if args.only == "pg":
            raise SystemExit("--only pg needs --pg URL (bash scripts/postgres.sh lease $$)")
        stores.remove("pg")
    mlflow_python: str | None = None
    if not args.no_mlflow and "sqlite" in stores:
        if Path(args.mlflow_python).exists():
            mlflow_python = args.mlflow_python
        else:
            say(f"{args.mlflow_python} does not exist: MLflow is skipped")
    load = os.getloadavg()
    say(
        f"Search benchmark: {', '.join(f'{n:,}' for n in args.sizes)} runs; "
        f"{' and '.join(s if s == 'sqlite' else 'PostgreSQL' for s in stores)}; "
        f"embedded{' and server' if not args.no_server else ''}; median of {args.repeats}"
    )
    say(
        f"python {sys.version.split()[0]}, cairn {cairn.__version__}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    signal.signal(signal.SIGTERM, _interrupted)
    missed: list[str] = []
    with tempfile.TemporaryDirectory(
        prefix="cairn-bench-search-", ignore_cleanup_errors=True
    ) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "tmp").mkdir()
        env = {k: v for k, v in base.items() if not k.lower().endswith("_proxy")}
        if mlflow_python is not None:
            say(
                f"mlflow {mlflow_version(mlflow_python, mlflow_environment(env))} ({mlflow_python})"
            )
        plan = Plan(
            Path(args.data),
            args.sizes,
            stores,
            args.pg,
            args.keep_pg,
            not args.no_server,
            args.repeats,
            mlflow_python,
            tmp,
            env,
        )
        try:
            run_plan(plan)
        except (ServerFailed, RuntimeError, subprocess.SubprocessError) as exc:
            say(f"\nthe benchmark stopped: {exc}")
        except KeyboardInterrupt:
            say("\ninterrupted")
        except Exception:
            say(f"\nthe benchmark failed:\n{traceback.format_exc()}")
        missed = report(plan)
    say()
    say(
        "times: median after one warm-up; MLflow/Cairn = MLflow's median / Cairn's, same mode "
        f"(MLflow on SQLite); a met target within {CLOSE_MARGIN:.0%} of its limit is 'close'"
    )
    say(f"targets missed or answers wrong: {'; '.join(missed) if missed else 'none'}")
    load = os.getloadavg()
    say(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


def cmd_fill(args: argparse.Namespace) -> int:
    clean_environment()
    home = Path(args.home)
    with cairn_client(home, args.store) as client:
        have = client.count_runs("")
        if have == args.n:
            say(f"{home}: already holds {have:,} runs; {_search_fill.check(client, args.n)}")
            return 0
        if have:
            raise SystemExit(f"{home} holds {have:,} runs, not 0 or {args.n:,}: use a new home")
        kind = "SQLite" if args.store is None else "PostgreSQL"
        where = home if args.store is None else safe(args.store)
        say(f"  filling {where} ({kind}) with {args.n:,} runs ...")
        jobs = args.jobs or (1 if args.store is None else 4)
        seconds = _search_fill.fill(client, args.n, say, jobs)
        say(f"  {args.n:,} runs in {seconds:.1f} s ({args.n / seconds:,.0f} runs/s)")
        say(f"  check: {_search_fill.check(client, args.n)}")
    return 0


def cmd_fill_mlflow(args: argparse.Namespace) -> int:
    env = mlflow_environment(clean_environment())
    ensure_mlflow(args.mlflow_python, Path(args.dir), args.n, env)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None, allow_abbrev=False
    )
    parser.add_argument(
        "--data", default=DEFAULT_DATA, help=f"filled stores, kept (default {DEFAULT_DATA})"
    )
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 100_000]
    )
    parser.add_argument("--only", choices=("sqlite", "pg"), default=None)
    parser.add_argument(
        "--pg", default=None, metavar="URL", help="a PostgreSQL server (SQLAlchemy URL)"
    )
    parser.add_argument(
        "--keep-pg", action="store_true", help="keep the filled PostgreSQL databases"
    )
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--mlflow-python", default=DEFAULT_MLFLOW_PYTHON, metavar="PATH")
    sub = parser.add_subparsers(dest="command")
    fill = sub.add_parser("fill", help="fill a Cairn store once, to reuse")
    fill.add_argument("--n", type=int, required=True)
    fill.add_argument("--home", required=True)
    fill.add_argument(
        "--store", default=None, help="a PostgreSQL URL (default: SQLite in the home)"
    )
    fill.add_argument(
        "--jobs", type=int, default=None, help="chunks written at once (default: 1 SQLite, 4 PG)"
    )
    fill_mlflow = sub.add_parser("fill-mlflow", help="fill MLflow's SQLite store once, to reuse")
    fill_mlflow.add_argument("--n", type=int, required=True)
    fill_mlflow.add_argument("--dir", required=True)
    fill_mlflow.add_argument("--mlflow-python", default=DEFAULT_MLFLOW_PYTHON, metavar="PATH")
    args = parser.parse_args(argv)
    if args.command == "fill":
        return cmd_fill(args)
    if args.command == "fill-mlflow":
        return cmd_fill_mlflow(args)
    return cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
