"""A folder of many small files as an artifact (issue 16's last three rows): log it, log it
again unchanged, download it; embedded and through a real ``cairn server``, beside ``cp -r``
of the same tree and, with ``--mlflow-python``, MLflow (its own virtual environment)
embedded and through its server, all in the same run.

Usage::

    .venv/bin/python benchmarks/artifact_folder.py                    # 10,000 x 4 KiB, 3 rounds
    .venv/bin/python benchmarks/artifact_folder.py --files 1000 --rounds 1   # a smoke test
    .venv/bin/python benchmarks/artifact_folder.py --mlflow-python /work/peers/mlflow/bin/python

The tree (``--files`` files of ``--size`` random bytes in folders of 500) is written once,
fsynced, and is at least 2.5 s old before anything logs it: Cairn's stat cache never trusts
a file written less than 2 s before it was read (the racy-git rule, see
``cairn/files/statcache.py``), and a folder logged again (a checkpoint, a tokenizer) was
usually written well before. Each round, for each side: a fresh store (and a fresh stat
cache), then timed around the call alone, in this process for Cairn (a client already
open) and in a client process of MLflow's own Python for MLflow (imports done first):

* log: ``run.log_artifact("ckpt", tree)`` / ``MlflowClient().log_artifacts(run_id, tree,
  "ckpt")``;
* log again: the same call on the same run, nothing changed;
* download: ``run.download_artifact("ckpt", empty_folder)`` /
  ``mlflow.artifacts.download_artifacts(run_id=..., artifact_path="ckpt", dst_path=...)``.

``cp -r tree dest`` (dest removed first) is timed in every round too. ``os.sync()`` runs
between timed steps so that no step's writeback lands in the next one's timing. Cairn
makes its objects durable (two file-system flushes a batch); ``cp`` and MLflow do not
sync. Best of the rounds; the exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from _report import clean_environment, say
from mlflow_artifacts import child_environment, mlflow_environment, start_mlflow, stopping
from server import running_server

import cairn
from cairn.core.settings import Settings

MLFLOW_CLIENT = textwrap.dedent(
    """
    import json, sys, time
    import mlflow
    from mlflow import MlflowClient
    tree, out = sys.argv[1], sys.argv[2]
    client = MlflowClient()
    run = client.create_run(client.create_experiment("folders-" + str(time.time_ns())))
    def timed(call):
        start = time.perf_counter(); call(); return time.perf_counter() - start
    found = {}
    found["log"] = timed(lambda: client.log_artifacts(run.info.run_id, tree, "ckpt"))
    found["log again"] = timed(lambda: client.log_artifacts(run.info.run_id, tree, "ckpt"))
    found["download"] = timed(lambda: mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="ckpt", dst_path=out))
    print(json.dumps(found))
    """
)
OPS = ("log", "log again", "download")
TARGETS = {
    # (embedded: at most this many times cp -r; through the server: at least this many
    # times faster than MLflow through its server; None: an absolute ceiling in seconds)
    "log": ("<= 3x cp -r", ">= 10x MLflow"),
    "log again": ("<= 0.3 s", "<= 0.3 s"),
    "download": ("<= 2x cp -r", ">= 10x MLflow"),
}


def make_tree(root: Path, files: int, size: int) -> None:
    for i in range(files):
        folder = root / f"d{i // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"f{i:06d}.bin", "wb") as f:
            f.write(os.urandom(size))
    os.sync()


def timed(call: Callable[[], object]) -> float:
    os.sync()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def cp_r(tree: Path, work: Path) -> float:
    dest = work / "cp-dest"
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()
    seconds = timed(lambda: subprocess.run(["cp", "-r", str(tree), str(dest)], check=True))
    shutil.rmtree(dest)
    return seconds


def cairn_side(client: cairn.Client, tree: Path, out: Path) -> dict[str, float]:
    run = client.start_run()
    found = {
        "log": timed(lambda: run.log_artifact("ckpt", tree)),
        "log again": timed(lambda: run.log_artifact("ckpt", tree)),
        "download": timed(lambda: run.download_artifact("ckpt", out)),
    }
    run.end()
    if sorted(p.name for p in out.rglob("*") if p.is_file()) != sorted(
        p.name for p in tree.rglob("*") if p.is_file()
    ):
        raise SystemExit("the download differs from the tree")
    shutil.rmtree(out)
    return found


def mlflow_side(
    python: str, env: dict[str, str], tree: Path, out: Path, cwd: Path
) -> dict[str, float]:
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [python, "-c", MLFLOW_CLIENT, str(tree), str(out)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the MLflow client failed:\n{done.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def best(rounds: list[dict[str, float]], op: str) -> float:
    return min(r[op] for r in rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mlflow-python", default=None)
    parser.add_argument("--mlflow-rounds", type=int, default=1)
    args = parser.parse_args()
    base = clean_environment()
    os.environ["CAIRN_CAPTURE"] = "none"
    with tempfile.TemporaryDirectory(prefix="cairn-folder-bench-") as name:
        tmp = Path(name)
        (tmp / "tmp").mkdir()
        tree = tmp / "tree"
        make_tree(tree, args.files, args.size)
        say(f"{args.files:,} files x {args.size:,} bytes in {tree}; load {os.getloadavg()}")
        time.sleep(max(0.0, 2.5 - (time.time() - tree.stat().st_mtime)))
        cp: list[float] = []
        embedded: list[dict[str, float]] = []
        served: list[dict[str, float]] = []
        for n in range(args.rounds):
            cp.append(cp_r(tree, tmp))
            home = tmp / f"home-{n}"
            settings = Settings(home=str(home), stat_cache=str(tmp / f"cache-e{n}.sqlite"))
            with cairn.Client(settings=settings) as client:
                embedded.append(cairn_side(client, tree, tmp / "out"))
            server_home = tmp / f"server-home-{n}"
            env = {**base, "CAIRN_CAPTURE": "none"}
            log = tmp / f"server-{n}.log"
            with running_server(server_home, None, env, log, tmp) as server:
                remote = Settings(url=server.url, stat_cache=str(tmp / f"cache-s{n}.sqlite"))
                with cairn.Client(settings=remote) as client:
                    served.append(cairn_side(client, tree, tmp / "out"))
            shutil.rmtree(home)
            shutil.rmtree(server_home)
            say(
                f"round {n + 1}: cp -r {cp[-1]:.3f} s; embedded {embedded[-1]}; server {served[-1]}"
            )
        ml_embedded: list[dict[str, float]] = []
        ml_served: list[dict[str, float]] = []
        if args.mlflow_python:
            child = child_environment(base, tmp)
            for n in range(args.mlflow_rounds):
                db = f"sqlite:///{tmp / f'mlflow-embedded-{n}.db'}"
                env = {**mlflow_environment(child), "MLFLOW_TRACKING_URI": db}
                ml_embedded.append(
                    mlflow_side(args.mlflow_python, env, tree, tmp / "ml-out", tmp / f"ml-e{n}")
                )
                ml_tmp = tmp / f"mlflow-server-{n}"
                ml_tmp.mkdir()
                with stopping(
                    start_mlflow(args.mlflow_python, None, ml_tmp, mlflow_environment(child))
                ) as ml:
                    env = mlflow_environment(child, ml.url)
                    ml_served.append(
                        mlflow_side(args.mlflow_python, env, tree, tmp / "ml-out", tmp / f"ml-s{n}")
                    )
                say(f"MLflow round {n + 1}: embedded {ml_embedded[-1]}; server {ml_served[-1]}")
        report(args, cp, embedded, served, ml_embedded, ml_served)
    return 0


def report(
    args: argparse.Namespace,
    cps: list[float],
    embedded: list[dict[str, float]],
    served: list[dict[str, float]],
    ml_embedded: list[dict[str, float]],
    ml_served: list[dict[str, float]],
) -> None:
    cp = min(cps)
    say()
    say(
        f"{args.files:,} x {args.size:,} B, best of {args.rounds} (MLflow: {args.mlflow_rounds});"
        f" cp -r {cp:.3f} s; load {os.getloadavg()}"
    )
    say(
        "| case | Cairn embedded | x cp -r (same round) | MLflow embedded | Cairn server "
        "| MLflow server | MLflow/Cairn server | target |"
    )
    say("|---|---|---|---|---|---|---|---|")
    for op in OPS:
        ours = best(embedded, op)
        theirs = best(served, op)
        ml_e = f"{best(ml_embedded, op):.2f} s" if ml_embedded else "-"
        ml_s = f"{best(ml_served, op):.2f} s" if ml_served else "-"
        ratio = f"{best(ml_served, op) / theirs:.1f}x" if ml_served else "-"
        embedded_target, server_target = TARGETS[op]
        # A noisy machine slows cp and Cairn alike within a round: each round's ratio
        # to its own cp -r, the best of them.
        per_round = min(r[op] / c for r, c in zip(embedded, cps, strict=True))
        say(
            f"| {op} | {ours:.3f} s | {per_round:.2f}x | {ml_e} | {theirs:.3f} s | {ml_s} | "
            f"{ratio} | {embedded_target}; {server_target} |"
        )


if __name__ == "__main__":
    sys.exit(main())
