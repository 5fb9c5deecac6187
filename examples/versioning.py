"""Versioning tutorial, end to end on the embedded store (docs/versioning.md walks through it).

    .venv/bin/python examples/versioning.py [WORKSPACE]

In WORKSPACE (default: a new temporary folder) it writes a small project — a training
script, a CSV of data — and then: versions its ingredients (config, code, data,
environment) as a commit, trains a run linked to that commit, changes data and config on a
branch while main moves on, diffs the two, merges them with a conflict and resolves it,
trains again, and finally restores the first run's state into a folder of its own.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import cairn
from cairn.versioning import Hyperparameters, Python, Snapshot
from cairn.versioning import Path as DataPath

TRAIN_PY = '''"""Fits y = w * x + b to data/train.csv by gradient descent."""
import csv, sys

def train(rows, lr, epochs):
    w = b = 0.0
    for _ in range(epochs):
        gw = sum((w * x + b - y) * x for x, y in rows) / len(rows)
        gb = sum((w * x + b - y) for x, y in rows) / len(rows)
        w, b = w - lr * gw, b - lr * gb
    return w, b
'''


def write_data(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["x", "y"])
        for _ in range(rows):
            x = rng.uniform(0, 1)
            out.writerow([f"{x:.4f}", f"{3 * x + 1 + rng.gauss(0, 0.05):.4f}"])


def read_data(path: Path) -> list[tuple[float, float]]:
    with path.open() as f:
        return [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]


def train(run: cairn.Run, rows: list[tuple[float, float]], lr: float, epochs: int) -> float:
    """The model of src/train.py, with its loss logged as it goes."""
    w = b = 0.0
    for epoch in range(epochs):
        gw = sum((w * x + b - y) * x for x, y in rows) / len(rows)
        gb = sum((w * x + b - y) for x, y in rows) / len(rows)
        w, b = w - lr * gw, b - lr * gb
        loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
        run.log_metric("loss", loss, step=epoch)
    run.log_artifact("weights.json", json.dumps({"w": w, "b": b}).encode())
    return loss


def make_project(workspace: Path) -> None:
    """A training script and its data, in a git work tree if git is here."""
    (workspace / "src").mkdir(parents=True, exist_ok=True)
    (workspace / "data").mkdir(exist_ok=True)
    (workspace / "src" / "train.py").write_text(TRAIN_PY)
    write_data(workspace / "data" / "train.csv", rows=200, seed=1)
    try:  # a git work tree, so that runs record the code they ran from
        git = ["git", "-c", "user.name=tutorial", "-c", "user.email=t@example.com"]
        for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "start"]):
            subprocess.run([*git, *step], cwd=workspace, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        print("(no git here: runs will record their environment only)")


def main(workspace: Path) -> None:
    os.chdir(workspace)  # as a training script runs from its project's folder
    make_project(workspace)
    client = cairn.Client(home=str(workspace / ".cairn"))
    client.set_project("churn")
    client.set_experiment("linear")

    # 1. Version the ingredients: config, code, data, environment.
    repo = client.set_repository("churn-ingredients")
    commit = repo.get_commit(branch="main")
    commit.update("config/hp", Hyperparameters({"lr": 0.5, "epochs": 60}))
    commit.update("code/src", Snapshot(workspace / "src"))
    commit.update("data/train", DataPath(workspace / "data" / "train.csv"))
    commit.update("env/python", Python.capture())
    first = commit.save("first ingredients")
    print(f"1. saved {first.id[:12]}: {sorted(first.paths())}")

    # 2. Train a run from that commit; it records its code and environment by itself.
    hp = first.get("config/hp", Hyperparameters).values
    with client.start_run(hyperparameters=hp) as run1:
        run1.log_commit(first, key_paths={"hp": "config/hp", "data": "data/train"})
        loss = train(
            run1, read_data(workspace / "data" / "train.csv"), float(hp["lr"]), int(hp["epochs"])
        )
    print(f"2. run {run1.id} trained from {first.id[:12]}: loss {loss:.4f}")
    assert run1.get_commit() == first  # the link, read back

    # 3. On a branch: more data and a higher learning rate.
    exp = repo.branch("more-data", from_=first)
    write_data(workspace / "data" / "train.csv", rows=400, seed=2)
    exp.update("data/train", DataPath(workspace / "data" / "train.csv"))
    exp.update("config/hp", Hyperparameters({"lr": 0.8, "epochs": 60}))
    exp.save("400 rows; lr 0.8")

    # ... while main moves on: more epochs, and a learning rate of its own.
    main_commit = repo.get_commit(branch="main")
    main_commit.update("config/hp", Hyperparameters({"lr": 0.3, "epochs": 120}))
    main_commit.save("lr 0.3, 120 epochs")

    # 4. What changed between the first commit and the branch, down to each key.
    print("4. diff first -> more-data:")
    for change in repo.diff(first, "more-data"):
        print(f"   {change.status:8} {change.path}")
        for field in change.fields:
            print(f"            {field}")

    # 5. Merge the branch into main: epochs merge by themselves (only main changed them);
    #    lr changed on both sides: a conflict, and nothing moves until it is settled.
    result = repo.merge("more-data", into="main", message="merge more data")
    for conflict in result.conflicts:
        print(f"5. conflict: {conflict}")
    result.resolve("config/hp", "lr", theirs=True)
    merged = result.commit()
    print(f"   merged {merged.id[:12]} (parents {[p[:12] for p in merged.parents]}):")
    print(f"   config/hp = {merged.get('config/hp', Hyperparameters).values}")

    # 6. Train again from the merge.
    hp = merged.get("config/hp", Hyperparameters).values
    with client.start_run(hyperparameters=hp) as run2:
        run2.log_commit(merged, key_paths={"hp": "config/hp", "data": "data/train"})
        loss = train(
            run2, read_data(workspace / "data" / "train.csv"), float(hp["lr"]), int(hp["epochs"])
        )
    print(f"6. run {run2.id} trained from the merge: loss {loss:.4f}")
    print(f"   runs of the first commit: {[r.id for r in first.list_runs()]}")

    # 7. Time travel: everything the first run was built from, verified, in one call.
    report = run1.restore(workspace / "restore-run1")
    print(f"7. {report}")
    restored = workspace / "restore-run1" / "ingredients"
    print("   config:", (restored / "config" / "hp" / "hyperparameters.json").read_text().strip())
    client.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="cairn-tutorial-") as tmp:
            main(Path(tmp))
