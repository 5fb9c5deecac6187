"""Sweep benchmark: many short runs (start, 3 hyperparameters, 2 metrics, end), Cairn against
MLflow in the same run, embedded and through a real server.

Usage::

    .venv/bin/python benchmarks/sweep.py                  # 1,000 Cairn / 100 MLflow runs, x3
    .venv/bin/python benchmarks/sweep.py --quick          # 200 / 30 runs, 1 round
    .venv/bin/python benchmarks/sweep.py --only embedded  # or --only server
    .venv/bin/python benchmarks/sweep.py --mlflow-python /work/peers/mlflow/bin/python

Per run, the sequence a sweep script writes:

* Cairn (after ``client.set_project("sweep"); client.set_experiment("grid")``)::

      run = client.start_run()  # default capture; also capture="none"
      run.log_hyperparameters({"lr": lr, "depth": depth, "optimizer": "adam"})
      run.log_metric("loss", loss); run.log_metric("acc", acc)
      run.end()

* MLflow (its fluent API, after ``mlflow.set_experiment("grid")``)::

      with mlflow.start_run():
          mlflow.log_params({"lr": lr, "depth": depth, "optimizer": "adam"})
          mlflow.log_metric("loss", loss); mlflow.log_metric("acc", acc)

Embedded: ``cairn.Client(home=DIR)`` (SQLite) and ``mlflow.set_tracking_uri("sqlite:///DIR/
mlflow.db")``. Server: a real ``cairn server`` (its default, 1 worker) and a real ``mlflow
server --backend-store-uri sqlite:///DIR/mlflow.db`` (its default, 4 workers), both on
127.0.0.1, stopped at the end (SIGTERM, then SIGKILL of what is left). MLflow runs in its own
virtual environment (``--mlflow-python``), never this repository's ``.venv``; without it only
Cairn is measured.

Each variant runs in a fresh client process of its own Python: the sweep script is a file in
the client's working folder (as a user's ``sweep.py`` in their repository); it runs 20
warm-up runs (imports, connection, tables), then one timed loop of new runs per round, timed
inside the process around the loop alone, so interpreter start-up is not counted. Rounds
take the variants in turn (so the machine's drifts hit all alike); best of ``--rounds``. The
working folder is either a plain folder (not a git work tree: Cairn's default capture
records the Python environment only) or a small git work tree (one commit, one modified file:
Cairn records the git reference with the diff, MLflow its git commit tags); MLflow is
compared with Cairn in the same folder. Target: Cairn >= 10x MLflow's runs/s, same mode.
Everything lives in one temporary folder, removed at the end; the exit code is 0 whatever the
figures (a measuring tool).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from _report import CLOSE_MARGIN, Target, clean_environment, render, say
from mlflow_artifacts import (
    Child,
    ClientFailed,
    cairn_environment,
    child_environment,
    mlflow_environment,
    mlflow_version,
    start_mlflow,
    stopping,
)
from server import Server, ServerFailed, start_server

import cairn

DEFAULT_MLFLOW_PYTHON = "/work/peers/mlflow/bin/python"
WARM_RUNS = 20
# A client process is killed after CLIENT_BASE_S (start-up, warm-up, checks) plus an
# allowance per timed run (about 10x what each side needed on a busy 2-CPU machine).
CLIENT_BASE_S = 120.0
CAIRN_ALLOWANCE_S = 0.1
MLFLOW_ALLOWANCE_S = 0.5
STARTUP_LIMIT_S = 180.0
TARGET = Target(">=", 10.0, on="ratio")  # Cairn runs/s >= 10x MLflow's, same mode

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


# -- the client scripts -----------------------------------------------------------------

# Both speak mlflow_artifacts' protocol: "@@bench {json}" lines on stdout, "go" on stdin
# before the timed block (so the parent reads the server's CPU right around it).
PRELUDE = '''\
"""A hyperparameter sweep (benchmarks/sweep.py writes this file)."""
import gc, json, sys, time


def say(**fields):
    sys.stdout.write("@@bench " + json.dumps(fields) + "\\n")
    sys.stdout.flush()


def grid(count, offset):
    lrs, depths = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), (2, 4, 6, 8)
    return [
        (lrs[i % 5], depths[(i // 5) % 4], 1.0 / (i + 1), 1.0 - 1.0 / (i + 2))
        for i in range(offset, offset + count)
    ]


def rounds(sweep, warm, runs, version):
    """The warm-up, then one timed loop of new points per "go" line on stdin, until any
    other line or the end of stdin; returns the last run and its point."""
    sweep(grid(warm, 0))
    say(ready=version)
    offset, last, point = warm, None, None
    while True:
        points = grid(runs, offset)
        offset += runs
        gc.collect()
        gc.freeze()
        if sys.stdin.readline().strip() != "go":
            gc.unfreeze()
            return last, point
        cpu = time.process_time()  # every thread of the process
        start = time.perf_counter()
        last = sweep(points)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        gc.unfreeze()
        point = points[-1]
        say(op="sweep", seconds=seconds, cpu=cpu, runs=len(points))


target, runs, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
'''

CAIRN_SCRIPT = (
    PRELUDE
    + """
import cairn

capture = sys.argv[4]
options = {} if capture == "default" else {"capture": capture}
client = cairn.Client(target) if "://" in target else cairn.Client(home=target)
client.set_project("sweep")
client.set_experiment("grid")


def sweep(points):
    run = None
    for lr, depth, loss, acc in points:
        run = client.start_run(**options)
        run.log_hyperparameters({"lr": lr, "depth": depth, "optimizer": "adam"})
        run.log_metric("loss", loss)
        run.log_metric("acc", acc)
        run.end()
    return run


last, point = rounds(sweep, warm, runs, cairn.__version__)
if last is None:  # stopped before any round
    sys.exit(0)
lr, depth, loss, acc = point
stored = client.get_run(last.id)
assert stored.get_hyperparameters() == {"lr": lr, "depth": depth, "optimizer": "adam"}
assert stored.get_metrics() == {"loss": loss, "acc": acc}, stored.get_metrics()
kinds = sorted(stored.get_capture())
client.close()
say(done=kinds)
"""
)

MLFLOW_SCRIPT = (
    PRELUDE
    + """
import mlflow

mlflow.set_tracking_uri(target)
mlflow.set_experiment("grid")


def sweep(points):
    run = None
    for lr, depth, loss, acc in points:
        with mlflow.start_run() as run:
            mlflow.log_params({"lr": lr, "depth": depth, "optimizer": "adam"})
            mlflow.log_metric("loss", loss)
            mlflow.log_metric("acc", acc)
    return run.info.run_id


last, point = rounds(sweep, warm, runs, mlflow.__version__)
if last is None:  # stopped before any round
    sys.exit(0)
lr, depth, loss, acc = point
data = mlflow.get_run(last).data
assert data.params == {"lr": str(lr), "depth": str(depth), "optimizer": "adam"}, data.params
assert data.metrics == {"loss": loss, "acc": acc}, data.metrics
say(done=sorted(k for k in data.tags if k.startswith("mlflow.source.git")))
"""
)

CAIRN_FILE = "sweep_cairn.py"
MLFLOW_FILE = "sweep_mlflow.py"
PROJECT_FILES = (CAIRN_FILE, MLFLOW_FILE, "config.py")


# -- the working folders ----------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout


def write_project(root: Path) -> None:
    """A small training project: the two sweep scripts and a configuration file."""
    root.mkdir(parents=True)
    (root / CAIRN_FILE).write_text(CAIRN_SCRIPT)
    (root / MLFLOW_FILE).write_text(MLFLOW_SCRIPT)
    (root / "config.py").write_text('OPTIMIZER = "adam"\nEPOCHS = 10\n')


def plain_folder(root: Path) -> str:
    """The project in a folder outside any git work tree; what git says about it."""
    write_project(root)
    done = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 0 and done.stdout.strip() == "true":
        return "WARNING: inside a git work tree after all (TMPDIR is in a repository)"
    return "not a git work tree (git rev-parse --is-inside-work-tree fails)"


def git_work_tree(root: Path) -> str:
    """The project committed once, then ``config.py`` changed (an uncommitted diff)."""
    write_project(root)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "gc.auto", "0")
    git(root, "remote", "add", "origin", "https://example.com/acme/sweep.git")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a sweep")
    with (root / "config.py").open("a") as f:
        f.write("EPOCHS = 20  # an uncommitted change\n")
    # An index written in the same second as the files is "racy": read-only git calls
    # would re-hash the files until something rewrites it. One `git status` does, as on a
    # user's machine (benchmarks/versioning.py).
    time.sleep(1.1)
    return git(root, "status", "--short").strip()


# -- the variants and their rounds ------------------------------------------------------


@dataclass(frozen=True)
class Round:
    seconds: float
    runs: int
    client_cpu: float
    server_cpu: float | None  # every server process, around the timed loop

    @property
    def per_s(self) -> float:
        return self.runs / self.seconds

    @property
    def ms(self) -> float:
        return self.seconds * 1000 / self.runs


@dataclass
class Variant:
    side: str  # "Cairn" or "MLflow"
    label: str
    folder: str  # "plain" or "git"
    capture: str = "default"  # Cairn only: "default" or "none"
    rounds: list[Round] = field(default_factory=list)
    captured: list[str] | None = None  # Cairn: the capture's kinds; MLflow: its git tags

    def best(self) -> Round | None:
        return min(self.rounds, key=lambda r: r.ms) if self.rounds else None


@dataclass
class Mode:
    """One way of storing (embedded or server), both sides."""

    name: str
    cairn_target: str  # a home folder or a server URL
    mlflow_target: str  # a tracking URI
    cairn_server: Server | None = None
    mlflow_server: Server | None = None
    variants: list[Variant] = field(default_factory=list)

    def pairs(self) -> list[tuple[Variant, Variant | None]]:
        """Each Cairn variant with the MLflow variant run in the same folder."""
        mlflow = {v.folder: v for v in self.variants if v.side == "MLflow"}
        return [(v, mlflow.get(v.folder)) for v in self.variants if v.side == "Cairn"]


@dataclass(frozen=True)
class Setup:
    folders: dict[str, Path]
    cairn_env: dict[str, str]
    mlflow_env: dict[str, str]
    mlflow_python: str | None
    runs_cairn: int
    runs_mlflow: int
    rounds: int


def variants(with_mlflow: bool) -> list[Variant]:
    chosen = [
        Variant("Cairn", "capture on (default)", "plain"),
        Variant("Cairn", 'capture="none"', "plain", capture="none"),
        Variant("MLflow", "fluent API", "plain"),
        Variant("Cairn", "capture in a git work tree", "git"),
        Variant("MLflow", "fluent API, git work tree", "git"),
    ]
    return [v for v in chosen if with_mlflow or v.side == "Cairn"]


def spawn(setup: Setup, mode: Mode, variant: Variant, log: Path) -> Child:
    """A fresh client process for ``variant``, returned once its warm-up is done."""
    if variant.side == "Cairn":
        python, env, script, target = sys.executable, setup.cairn_env, CAIRN_FILE, mode.cairn_target
        runs, per_run = setup.runs_cairn, CAIRN_ALLOWANCE_S
    else:
        assert setup.mlflow_python is not None
        python, env, script = setup.mlflow_python, setup.mlflow_env, MLFLOW_FILE
        target, runs, per_run = mode.mlflow_target, setup.runs_mlflow, MLFLOW_ALLOWANCE_S
    command = [python, script, target, str(runs), str(WARM_RUNS), variant.capture]
    limit = CLIENT_BASE_S + per_run * runs * setup.rounds
    child = Child(command, env, setup.folders[variant.folder], log, limit)
    try:
        child.expect("ready")
    except BaseException:
        child.close()
        raise
    return child


def timed_round(child: Child, server: Server | None) -> Round:
    """One timed loop in ``child``, with the server's CPU seconds around it."""
    before = server.cpu_seconds() if server is not None else 0.0
    child.go()
    message = child.expect("sweep")
    server_cpu = server.cpu_seconds() - before if server is not None else None
    return Round(float(message["seconds"]), int(message["runs"]), float(message["cpu"]), server_cpu)


def finish(child: Child, variant: Variant) -> None:
    """End of input: the child checks its last run (untimed) and says what was captured."""
    assert child.process.stdin is not None
    child.process.stdin.close()
    done: Any = child.expect("done")["done"]
    child.close()
    if child.process.returncode != 0:
        raise ClientFailed(f"{variant.side} client exited with {child.process.returncode}")
    variant.captured = [str(kind) for kind in done]


def run_mode(setup: Setup, mode: Mode, tmp: Path) -> None:
    """One process per variant, started one after the other (a new store is created by the
    first); then the rounds, each variant's loop in turn, so drifts of the machine's load
    hit every variant alike."""
    children: list[Child] = []
    try:
        for variant in mode.variants:
            log = tmp / f"client-{mode.name}-{variant.side}-{variant.folder}-{variant.capture}.log"
            children.append(spawn(setup, mode, variant, log))
        for i in range(1, setup.rounds + 1):
            parts = []
            for variant, child in zip(mode.variants, children, strict=True):
                server = mode.cairn_server if variant.side == "Cairn" else mode.mlflow_server
                result = timed_round(child, server)
                variant.rounds.append(result)
                parts.append(f"{variant.side} {variant.label} {result.per_s:,.0f}")
            say(
                f"{mode.name} round {i}/{setup.rounds}, runs/s: {'; '.join(parts)}; "
                f"load {os.getloadavg()[0]:.2f}"
            )
        for variant, child in zip(mode.variants, children, strict=True):
            finish(child, variant)
    finally:
        for child in children:
            child.close()


# -- the report -------------------------------------------------------------------------


def runs_range(variant: Variant) -> str:
    speeds = [r.per_s for r in variant.rounds]
    if not speeds:
        return ""
    return f"{min(speeds):,.0f}-{max(speeds):,.0f}"


def rate(best: Round | None) -> tuple[str, str]:
    if best is None:
        return "", ""
    return f"{best.per_s:,.1f}" if best.per_s < 100 else f"{best.per_s:,.0f}", f"{best.ms:.2f}"


def report(mode: Mode, setup: Setup, missed: list[str]) -> None:
    rounds = max((len(v.rounds) for v in mode.variants), default=0)
    if rounds == 0:  # stopped before the first round
        return
    cells: list[Sequence[str]] = [
        (
            "variant",
            "Cairn runs/s",
            "ms/run",
            "range",
            "MLflow runs/s",
            "ms/run",
            "range",
            "Cairn/MLflow",
            "per round",
            "target",
            "status",
        )
    ]
    for ours, theirs in mode.pairs():
        our_best = ours.best()
        their_best = theirs.best() if theirs is not None else None
        ratio = status = each = ""
        if our_best is not None and their_best is not None and theirs is not None:
            value = their_best.ms / our_best.ms
            ratio = f"{value:,.1f}x"
            status = TARGET.check(value)
            pairs = zip(ours.rounds, theirs.rounds, strict=False)
            ratios = [m.ms / c.ms for c, m in pairs]
            each = f"{min(ratios):,.1f}-{max(ratios):,.1f}x"
            if status == "MISSED":
                missed.append(f"{mode.name}, {ours.label}")
        elif our_best is not None:
            status = "n/a"
        cells.append(
            (
                f"{mode.name}, {ours.label}",
                *rate(our_best),
                runs_range(ours),
                *rate(their_best),
                "" if theirs is None else runs_range(theirs),
                ratio,
                each,
                f"{TARGET.op} {TARGET.limit:g}x",
                status,
            )
        )
    say()
    say(
        f"{mode.name}: {setup.runs_cairn:,} Cairn runs, {setup.runs_mlflow:,} MLflow runs per "
        f"round, after {WARM_RUNS} warm-up runs; best of {rounds}"
    )
    for line in render(cells, {1, 2, 3, 4, 5, 6, 7, 8}):
        say(line)
    for variant in mode.variants:
        best = variant.best()
        if best is None:
            continue
        server = (
            "" if best.server_cpu is None else f" + server {best.server_cpu * 1000 / best.runs:.2f}"
        )
        what = "captured" if variant.side == "Cairn" else "git tags"
        say(
            f"  note: {variant.side} {variant.label}, best round: CPU ms/run client "
            f"{best.client_cpu * 1000 / best.runs:.2f}{server} in {best.ms:.2f} ms wall; "
            f"{what}: {', '.join(variant.captured or []) or 'none'}"
        )


# -- main -------------------------------------------------------------------------------


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def find_mlflow(python: str, env: dict[str, str]) -> tuple[str | None, str]:
    """The MLflow python and its version, or None and why it is skipped."""
    if not Path(python).exists():
        return None, f"{python} does not exist: MLflow is skipped, Cairn measured alone"
    try:
        return python, mlflow_version(python, env)
    except SystemExit as exc:
        return None, f"{exc}: MLflow is skipped, Cairn measured alone"


def bench(args: argparse.Namespace, tmp: Path, base: dict[str, str], missed: list[str]) -> None:
    (tmp / "tmp").mkdir()
    env = child_environment(base, tmp)
    mlflow_python, version = find_mlflow(args.mlflow_python, env)
    if mlflow_python is None:
        say(version)
    else:
        say(f"mlflow {version} ({mlflow_python})")
    say(f"cairn {cairn.__version__} ({sys.executable})")
    plain = plain_folder(tmp / "plain")
    status = git_work_tree(tmp / "repo")
    say(f"  note: client cwd {tmp / 'plain'}: {plain}")
    say(f"  note: client cwd {tmp / 'repo'}: a git work tree, 1 commit, git status: {status}")
    mlflow_env = mlflow_environment(env)
    mlflow_env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
    setup = Setup(
        {"plain": tmp / "plain", "git": tmp / "repo"},
        cairn_environment(env, tmp),
        mlflow_env,
        mlflow_python,
        args.runs_cairn,
        args.runs_mlflow,
        args.rounds,
    )
    with_mlflow = mlflow_python is not None
    if args.only in (None, "embedded"):
        (tmp / "embedded").mkdir()
        mode = Mode(
            "embedded",
            os.fspath(tmp / "embedded" / "cairn-home"),
            f"sqlite:///{tmp / 'embedded' / 'mlflow.db'}",
            variants=variants(with_mlflow),
        )
        try:
            run_mode(setup, mode, tmp)
        finally:
            report(mode, setup, missed)
    if args.only in (None, "server"):
        with contextlib.ExitStack() as stack:
            cairn_server, mlflow_server = start_servers(stack, setup, tmp, with_mlflow)
            mode = Mode(
                "server",
                cairn_server.url,
                "" if mlflow_server is None else mlflow_server.url,
                cairn_server,
                mlflow_server,
                variants(with_mlflow),
            )
            try:
                run_mode(setup, mode, tmp)
            finally:
                report(mode, setup, missed)
            say("stopping the servers ...")
    # What the clients left behind, e.g. an mlruns/ folder would be a change in the tree.
    after = git(tmp / "repo", "status", "--short", "--untracked-files=all").strip()
    extra = sorted({p.name for p in (tmp / "plain").iterdir()} - set(PROJECT_FILES))
    say(
        f"  note: at the end, git status in the work tree: {after.replace(chr(10), '; ')}; "
        f"new in the plain folder: {', '.join(extra) or 'nothing'}"
    )


def start_servers(
    stack: contextlib.ExitStack, setup: Setup, tmp: Path, with_mlflow: bool
) -> tuple[Server, Server | None]:
    mlflow_server = None
    if with_mlflow:
        assert setup.mlflow_python is not None
        say("starting mlflow server ...")
        (tmp / "mlflow-server").mkdir()
        mlflow_server = stack.enter_context(
            stopping(
                start_mlflow(setup.mlflow_python, None, tmp / "mlflow-server", setup.mlflow_env)
            )
        )
        say(
            f"  {mlflow_server.url}: /health after {mlflow_server.startup_s:.1f} s; "
            f"{mlflow_server.workers} workers (its default), {len(mlflow_server.family)} processes"
        )
    say("starting cairn server ...")
    cairn_server = stack.enter_context(
        stopping(
            start_server(
                tmp / "cairn-server-home", None, setup.cairn_env, tmp / "cairn-server.log", tmp
            )
        )
    )
    cairn_server.wait_all_workers(STARTUP_LIMIT_S)
    say(
        f"  {cairn_server.url}: /health after {cairn_server.startup_s:.1f} s; "
        f"{cairn_server.workers} worker(s) (its default), {len(cairn_server.family)} processes"
    )
    return cairn_server, mlflow_server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="200 / 30 runs, 1 round")
    parser.add_argument("--runs-cairn", type=int, default=None, metavar="N", help="default 1000")
    parser.add_argument("--runs-mlflow", type=int, default=None, metavar="N", help="default 100")
    parser.add_argument("--rounds", type=int, default=None, help="rounds, best of (default 3)")
    parser.add_argument("--only", choices=("embedded", "server"), default=None)
    parser.add_argument(
        "--mlflow-python",
        default=DEFAULT_MLFLOW_PYTHON,
        metavar="PATH",
        help=f"the python of a virtual environment with mlflow (default {DEFAULT_MLFLOW_PYTHON})",
    )
    args = parser.parse_args(argv)
    quick = (200, 30, 1) if args.quick else (1000, 100, 3)
    args.runs_cairn = args.runs_cairn or quick[0]
    args.runs_mlflow = args.runs_mlflow or quick[1]
    args.rounds = args.rounds or quick[2]
    base = clean_environment()

    load = os.getloadavg()
    say(
        f"Sweep benchmark: start a run, log 3 hyperparameters and 2 metrics, end it; "
        f"{args.runs_cairn:,} Cairn / {args.runs_mlflow:,} MLflow runs, {args.rounds} round(s)"
    )
    say(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    missed: list[str] = []
    # SIGTERM unwinds like Ctrl-C, so both servers are stopped and the folder removed.
    signal.signal(signal.SIGTERM, _interrupted)
    with tempfile.TemporaryDirectory(
        prefix="cairn-bench-sweep-", ignore_cleanup_errors=True
    ) as tmp_name:
        try:
            bench(args, Path(tmp_name), base, missed)
        except (ServerFailed, ClientFailed) as exc:
            say(f"\nthe benchmark stopped: {exc}")
        except KeyboardInterrupt:
            say("\ninterrupted")
        except Exception:
            say(f"\nthe benchmark failed:\n{traceback.format_exc()}")
    say()
    say(
        "Cairn/MLflow = MLflow's best ms/run / Cairn's best ms/run, same mode and same client "
        f"folder; target >= {TARGET.limit:g}x (close: within {CLOSE_MARGIN:.0%})"
    )
    say(f"targets missed: {'; '.join(missed) if missed else 'none'}")
    load = os.getloadavg()
    say(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
