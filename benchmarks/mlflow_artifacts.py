"""Peer benchmark: artifact upload and download through a real MLflow tracking server (with
artifact proxying) and through a real ``cairn server``, side by side in the same run.

Usage::

    python3 -m venv /work/peers/mlflow && /work/peers/mlflow/bin/pip install mlflow
    .venv/bin/python benchmarks/mlflow_artifacts.py --mlflow-python /work/peers/mlflow/bin/python
    .venv/bin/python benchmarks/mlflow_artifacts.py --mlflow-python ... --rounds 3 --size-mib 256
    .venv/bin/python benchmarks/mlflow_artifacts.py --mlflow-python ... --workers 1  # mlflow's

MLflow lives in its own virtual environment (never this repository's ``.venv``). Both servers
run on 127.0.0.1 on free ports, each with its own store in one temporary folder that is
removed at the end, and both are stopped at the end (SIGTERM, then SIGKILL of what is left):

* ``mlflow server --serve-artifacts --backend-store-uri sqlite:///DIR/mlflow.db
  --artifacts-destination DIR/mlruns-artifacts`` (its default worker count, 4, unless
  ``--workers`` is given);
* ``python -m cairn server --home DIR/cairn-home`` (its default, 1 worker, unless
  ``--cairn-workers`` is given), started as ``benchmarks/server.py`` starts it.

Each round writes fresh random bytes to a source file (fsynced, so never a dedup hit and no
writeback of the source during the timing), then moves them through MLflow, then through
Cairn. Each side runs in a fresh client process of its own Python (the MLflow venv's, this
repository's), which sets up a run and moves a few bytes up and down to warm its imports and
connection before anything is timed; the time is measured inside that process around the one
call alone, so interpreter start-up is not counted:

* MLflow: ``MlflowClient().log_artifact(run_id, path)`` and
  ``mlflow.artifacts.download_artifacts(run_id=..., artifact_path=..., dst_path=...)``;
* Cairn: ``run.log_artifact("blob", path)`` and
  ``client.get_run(run.id).download_artifact("blob", dest)``.

The table shows MB/s (10^6 bytes per second), best of the rounds and their range, and the
ratio Cairn/MLflow of the best figures beside the ratios the issue quotes. The exit code is 0
whether the ratios are kept or not: this is a measuring tool.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import gc
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from _report import CLOSE_MARGIN, Target, clean_environment, render, say, write_synced
from server import Server, ServerFailed, free_port, log_tail, start_server

import cairn

MiB = 1 << 20
STARTUP_LIMIT_S = 180.0  # MLflow takes ~8 s to answer on an idle 2-CPU machine
CLIENT_LIMIT_S = 600.0  # one client process: set-up, warm-up, one upload and one download
MLFLOW_DEFAULT_WORKERS = 4  # `mlflow server --help`: "--workers ... (default: 4)"

# Cairn/MLflow through the server, measured side by side, as the issue states them.
ISSUE_UP = (2.3, 2.5)
ISSUE_DOWN = (3.6, 5.6)

PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


# -- the client processes ---------------------------------------------------------------

# Both client scripts speak the same small protocol on stdin/stdout, so that the parent can
# read the servers' CPU time right before and right after each timed call: the child prints
# "@@bench {...}" lines; it waits for "go" on stdin before each timed call.
PRELUDE = r"""
import gc, json, os, sys, time

def say(**fields):
    sys.stdout.write("@@bench " + json.dumps(fields) + "\n")
    sys.stdout.flush()

def timed(op, call):
    gc.collect()
    gc.freeze()
    if sys.stdin.readline().strip() != "go":
        sys.exit(3)
    cpu = time.process_time()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    gc.unfreeze()
    say(op=op, seconds=seconds, cpu=cpu)
    return result

src, work = sys.argv[1], sys.argv[2]
warm = os.path.join(work, "warm.txt")
with open(warm, "wb") as f:
    f.write(b"warm-up")
"""

MLFLOW_CLIENT = (
    PRELUDE
    + r"""
import mlflow
from mlflow import MlflowClient

client = MlflowClient()
run_id = client.create_run("0").info.run_id  # the Default experiment
client.log_artifact(run_id, warm)
mlflow.artifacts.download_artifacts(
    run_id=run_id, artifact_path="warm.txt", dst_path=os.path.join(work, "warm-down")
)
say(ready=mlflow.__version__)
timed("up", lambda: client.log_artifact(run_id, src))
out = timed(
    "down",
    lambda: mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=os.path.basename(src), dst_path=os.path.join(work, "down")
    ),
)
client.set_terminated(run_id)
say(done=str(out))
"""
)

CAIRN_CLIENT = (
    PRELUDE
    + r"""
import cairn

client = cairn.Client(sys.argv[3])
run = client.start_run()
run.log_artifact("warm", warm)
client.get_run(run.id).download_artifact("warm", os.path.join(work, "warm-down.txt"))
say(ready=cairn.__version__)
dest = os.path.join(work, "down.bin")
timed("up", lambda: run.log_artifact("blob", src))
out = timed("down", lambda: client.get_run(run.id).download_artifact("blob", dest))
run.end()
client.close()
say(done=str(out))
"""
)


class ClientFailed(Exception):
    """A client process exited, timed out or said something unexpected."""


class Child:
    """A client process speaking the ``@@bench`` protocol, killed after ``limit`` seconds."""

    def __init__(
        self, command: list[str], env: dict[str, str], cwd: Path, log: Path, limit: float
    ) -> None:
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                env=env,
                cwd=cwd,
                text=True,
            )
        self.expired = False
        self._timer = threading.Timer(limit, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        with contextlib.suppress(OSError):
            self.process.kill()

    def expect(self, key: str) -> dict[str, Any]:
        """The next ``@@bench`` message, which must carry ``key`` or be the result of the
        timed call ``key`` (``op``)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if not line.startswith("@@bench "):
                continue
            message = json.loads(line[len("@@bench ") :])
            if not isinstance(message, dict) or (key not in message and message.get("op") != key):
                raise ClientFailed(f"expected {key!r}, got {line.strip()}")
            return message
        self.process.wait(10)
        why = "timed out" if self.expired else f"exited with {self.process.returncode}"
        raise ClientFailed(f"the client {why} before {key!r}:\n{log_tail(self.log)}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def close(self) -> None:
        """Let the process end: with stdin closed, one that waits for "go" exits at once
        (after an interruption too); SIGKILL if it has not within 30 s."""
        self._timer.cancel()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass(frozen=True)
class Op:
    """One timed call: wall seconds (inside the client process), the client process's CPU
    seconds in it, and every server process's CPU seconds from just before to just after."""

    seconds: float
    client_cpu: float
    server_cpu: float


@dataclass(frozen=True)
class Round:
    up: Op
    down: Op


@dataclass
class Side:
    name: str  # "MLflow" or "Cairn"
    version: str
    server: Server
    python: str
    script: str
    extra: list[str]  # arguments after src and work
    env: dict[str, str]
    rounds: list[Round]

    def label(self) -> str:
        plural = "s" if self.server.workers > 1 else ""
        return f"{self.name} {self.version} ({self.server.workers} worker{plural})"


def run_side(side: Side, src: Path, work: Path) -> Round:
    """One client process of ``side``: warm-up, then the timed upload and download of
    ``src``; checks that the downloaded file is ``src`` and removes it."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    command = [side.python, "-c", side.script, os.fspath(src), os.fspath(work), *side.extra]
    child = Child(command, side.env, work, work.parent / f"{work.name}.log", CLIENT_LIMIT_S)
    try:
        child.expect("ready")
        ops = []
        for op in ("up", "down"):
            before = side.server.cpu_seconds()
            child.go()
            message = child.expect(op)
            server_cpu = side.server.cpu_seconds() - before
            ops.append(Op(float(message["seconds"]), float(message["cpu"]), server_cpu))
        out = Path(str(child.expect("done")["done"]))
    finally:
        child.close()
    if child.process.returncode != 0:
        raise ClientFailed(f"{side.name} client exited with {child.process.returncode}")
    if not filecmp.cmp(src, out, shallow=False):
        raise ClientFailed(f"{side.name}: the downloaded {out} differs from {src}")
    shutil.rmtree(work, ignore_errors=True)
    return Round(ops[0], ops[1])


# -- the MLflow server ------------------------------------------------------------------


def answers(port: int, path: str) -> bool:
    """Whether GET ``path`` on 127.0.0.1:``port`` returns 200 (plain ``http.client``: no
    proxy from the environment can get in the way)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start_mlflow(python: str, workers: int | None, tmp: Path, env: dict[str, str]) -> Server:
    """Spawn ``mlflow server`` with artifact proxying, wait for /health to answer and every
    worker to log its start-up."""
    port = free_port()
    command = [
        python,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{tmp / 'mlflow.db'}",
        "--serve-artifacts",  # the default since MLflow 2.0; explicit in case it changes
        "--artifacts-destination",
        os.fspath(tmp / "mlruns-artifacts"),
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    log = tmp / "mlflow-server.log"
    started_wall = time.time()
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
        )
    count = workers if workers is not None else MLFLOW_DEFAULT_WORKERS
    server = Server(process, f"http://127.0.0.1:{port}", log, count, started_wall, float("nan"))
    try:
        while not answers(port, "/health"):
            if process.poll() is not None or time.perf_counter() - started > STARTUP_LIMIT_S:
                raise ServerFailed(f"mlflow server did not answer /health:\n{log_tail(log)}")
            time.sleep(0.1)
        server.startup_s = time.perf_counter() - started
        # uvicorn logs one line per worker; wait for all, so none is still importing MLflow
        # while something is timed.
        while log.read_text(errors="replace").count("Application startup complete.") < count:
            if process.poll() is not None or time.perf_counter() - started > STARTUP_LIMIT_S:
                raise ServerFailed(f"mlflow server workers did not all start:\n{log_tail(log)}")
            time.sleep(0.1)
    except BaseException:
        server.refresh()
        server.kill()
        raise
    server.refresh()
    return server


@contextlib.contextmanager
def stopping(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        seconds = server.stop()
        say(f"  stopped {server.url} {seconds:.2f} s after SIGTERM")


# -- environments -----------------------------------------------------------------------


def child_environment(base: dict[str, str], tmp: Path) -> dict[str, str]:
    """The caller's environment without proxies (loopback only) or MLflow settings, with
    temporary files in the benchmark's folder."""
    env = {
        k: v
        for k, v in base.items()
        if k.lower() not in PROXY_VARIABLES and not k.startswith("MLFLOW_")
    }
    env["TMPDIR"] = os.fspath(tmp / "tmp")
    return env


def mlflow_environment(base: dict[str, str], url: str | None = None) -> dict[str, str]:
    env = dict(base)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # no network but loopback
    env["DO_NOT_TRACK"] = "true"
    # The job runner (huey) is unrelated to artifacts and would keep its queue in a new
    # folder of /dev/shm, outside the benchmark's folder and never removed.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    if url is not None:
        env["MLFLOW_TRACKING_URI"] = url
        env["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(CLIENT_LIMIT_S))  # default 120 s
    return env


def cairn_environment(base: dict[str, str], tmp: Path) -> dict[str, str]:
    # A warmed private bytecode cache, as after a pip install (benchmarks/server.py): this
    # environment may run with PYTHONDONTWRITEBYTECODE and a venv without .pyc files.
    env = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.fspath(tmp / "pycache")
    return env


def mlflow_version(python: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [python, "-c", "from importlib import metadata; print(metadata.version('mlflow'))"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} has no mlflow: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


# -- the report -------------------------------------------------------------------------


def mb_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def best(rounds: Sequence[Round], way: str) -> Op:
    ops: list[Op] = [getattr(r, way) for r in rounds]
    return min(ops, key=lambda op: op.seconds)


def speed_range(size: int, rounds: Sequence[Round], way: str) -> str:
    speeds = [mb_s(size, getattr(r, way).seconds) for r in rounds]
    return f"{min(speeds):,.0f}-{max(speeds):,.0f}"


def report(size: int, mlflow: Side, ours: Side) -> None:
    pairs = list(zip(mlflow.rounds, ours.rounds, strict=False))
    if not pairs:
        return
    n = len(pairs)
    cells: list[Sequence[str]] = [
        (
            "measure",
            f"{mlflow.label()} MB/s",
            "range",
            f"{ours.label()} MB/s",
            "range",
            "Cairn/MLflow",
            "per round",
            "issue",
            "status",
        )
    ]
    for way, verb, issue in (("up", "upload", ISSUE_UP), ("down", "download", ISSUE_DOWN)):
        theirs_best, ours_best = best(mlflow.rounds, way), best(ours.rounds, way)
        ratio = theirs_best.seconds / ours_best.seconds
        each = [getattr(m, way).seconds / getattr(c, way).seconds for m, c in pairs]
        cells.append(
            (
                f"{verb} {size / MiB:g} MiB, best of {n}",
                f"{mb_s(size, theirs_best.seconds):,.0f}",
                speed_range(size, mlflow.rounds, way),
                f"{mb_s(size, ours_best.seconds):,.0f}",
                speed_range(size, ours.rounds, way),
                f"{ratio:.2f}x",
                f"{min(each):.2f}-{max(each):.2f}x",
                f"{issue[0]}-{issue[1]}x",
                Target(">=", issue[0]).check(ratio),
            )
        )
    say()
    say(f"artifacts through the server, {size / MiB:g} MiB of fresh random bytes per round")
    for line in render(cells, {1, 2, 3, 4, 5, 6}):
        say(line)
    say(
        "  note: Cairn/MLflow = MLflow's best time / Cairn's best time (2.00x: Cairn twice as "
        "fast); per round: the same for each round's pair; status: met if at least the issue's "
        f"lower figure (close: within {CLOSE_MARGIN:.0%})"
    )
    for side in (mlflow, ours):
        up, down = best(side.rounds, "up"), best(side.rounds, "down")
        say(
            f"  note: {side.name} best rounds, CPU seconds: up client {up.client_cpu:.2f} + "
            f"server {up.server_cpu:.2f} in {up.seconds:.2f} s wall; down client "
            f"{down.client_cpu:.2f} + server {down.server_cpu:.2f} in {down.seconds:.2f} s wall"
        )
    for i, (m, c) in enumerate(pairs, 1):
        say(
            f"  note: round {i}, wall s (CPU client+server): MLflow up {m.up.seconds:.3f} "
            f"({cpu(m.up)}), down {m.down.seconds:.3f} ({cpu(m.down)}); Cairn up "
            f"{c.up.seconds:.3f} ({cpu(c.up)}), down {c.down.seconds:.3f} ({cpu(c.down)})"
        )


def cpu(op: Op) -> str:
    return f"{op.client_cpu:.2f}+{op.server_cpu:.2f}"


# -- main -------------------------------------------------------------------------------


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def bench(args: argparse.Namespace, tmp: Path, base: dict[str, str]) -> None:
    size = args.size_mib * MiB
    (tmp / "tmp").mkdir()
    env = child_environment(base, tmp)
    version = mlflow_version(args.mlflow_python, env)
    cairn_env = cairn_environment(env, tmp)
    say(f"mlflow {version} ({args.mlflow_python}); cairn {cairn.__version__} ({sys.executable})")
    say("starting mlflow server ...")
    with contextlib.ExitStack() as stack:
        mlflow_server = stack.enter_context(
            stopping(start_mlflow(args.mlflow_python, args.workers, tmp, mlflow_environment(env)))
        )
        say(
            f"  {mlflow_server.url}: /health after {mlflow_server.startup_s:.1f} s; "
            f"{mlflow_server.workers} worker(s) "
            f"({'--workers' if args.workers else 'its default'}), "
            f"{len(mlflow_server.family)} processes"
        )
        say("starting cairn server ...")
        cairn_log = tmp / "cairn-server.log"
        cairn_server = stack.enter_context(
            stopping(
                start_server(tmp / "cairn-home", args.cairn_workers, cairn_env, cairn_log, tmp)
            )
        )
        cairn_server.wait_all_workers(STARTUP_LIMIT_S)
        say(
            f"  {cairn_server.url}: /health after {cairn_server.startup_s:.1f} s; "
            f"{cairn_server.workers} worker(s) "
            f"({'--cairn-workers' if args.cairn_workers else 'its default'}), "
            f"{len(cairn_server.family)} processes"
        )
        mlflow = Side(
            "MLflow",
            version,
            mlflow_server,
            args.mlflow_python,
            MLFLOW_CLIENT,
            [],
            mlflow_environment(env, mlflow_server.url),
            [],
        )
        ours = Side(
            "Cairn",
            cairn.__version__,
            cairn_server,
            sys.executable,
            CAIRN_CLIENT,
            [cairn_server.url],
            cairn_env,
            [],
        )
        src = tmp / "blob.bin"
        try:
            for i in range(1, args.rounds + 1):
                write_synced(src, os.urandom(size))  # fresh bytes: never a dedup hit
                gc.collect()
                rounds = []
                for side in (mlflow, ours):
                    rounds.append(run_side(side, src, tmp / f"{side.name.lower()}-{i}"))
                    os.sync()  # the write-back of one side does not land in the other's
                for side, result in zip((mlflow, ours), rounds, strict=True):
                    side.rounds.append(result)
                say(
                    f"round {i}/{args.rounds}: MLflow up {mb_s(size, rounds[0].up.seconds):,.0f}"
                    f", down {mb_s(size, rounds[0].down.seconds):,.0f} MB/s; Cairn up "
                    f"{mb_s(size, rounds[1].up.seconds):,.0f}, down "
                    f"{mb_s(size, rounds[1].down.seconds):,.0f} MB/s; "
                    f"load {os.getloadavg()[0]:.2f}"
                )
        finally:
            src.unlink(missing_ok=True)
            report(size, mlflow, ours)
            say(
                "  note: MLflow's server streams an upload into a temporary file in the "
                "destination and renames it (no hash, no fsync) and sends a download as a "
                "FileResponse; Cairn hashes (BLAKE3) on both ends and fsyncs what it stores"
            )
            say(
                "  note: mlflow server runs with telemetry and its job runner off "
                "(MLFLOW_DISABLE_TELEMETRY, MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false); "
                "os.sync() after each side, untimed"
            )
        say("stopping the servers ...")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--mlflow-python",
        required=True,
        metavar="PATH",
        help="the python of a virtual environment with mlflow installed",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, best of (default 3)")
    parser.add_argument("--size-mib", type=int, default=256, help="artifact size (default 256)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"mlflow server --workers N (default: its own, {MLFLOW_DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--cairn-workers",
        type=int,
        default=None,
        metavar="N",
        help="cairn server --workers N (default: its own, 1)",
    )
    args = parser.parse_args(argv)
    base = clean_environment()

    load = os.getloadavg()
    say(
        f"MLflow vs Cairn artifact benchmark: {args.size_mib} MiB, {args.rounds} round(s), "
        "both servers on 127.0.0.1"
    )
    say(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    # SIGTERM unwinds like Ctrl-C, so both servers are stopped and the folder removed.
    signal.signal(signal.SIGTERM, _interrupted)
    with tempfile.TemporaryDirectory(
        prefix="cairn-bench-mlflow-", ignore_cleanup_errors=True
    ) as tmp_name:
        try:
            bench(args, Path(tmp_name), base)
        except (ServerFailed, ClientFailed) as exc:
            say(f"\nthe benchmark stopped: {exc}")
        except KeyboardInterrupt:
            say("\ninterrupted")
        except Exception:
            say(f"\nthe benchmark failed:\n{traceback.format_exc()}")
    load = os.getloadavg()
    say(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
