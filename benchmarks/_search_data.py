"""The runs of the search benchmark (``benchmarks/search.py``): the same N runs, run by run,
for Cairn and for MLflow. Plain Python (no Cairn import): MLflow's own virtual environment
imports this module too, so both stores get exactly the same values.

Run ``i`` (0 <= i < N) lies in experiment ``exp-{i % 10}`` of project ``search-bench`` and has

* 5 hyperparameters of mixed types: ``lr`` float (1e-5..1e-1, log-uniform), ``model`` str
  (``tree``, ``gbm``, ``rf``, ``mlp``), ``depth`` int (1..12), ``use_bn`` bool, ``seed`` int;
* 5 metrics with a 10-point history (steps 0..9): ``acc`` rises to a final value uniform in
  [0, 1], ``loss`` falls towards ``1 - acc``, ``val_acc``, ``val_loss``, ``grad_norm``;
* 3 tags: a workflow (``sweep``, ``manual``, ``ablation``), a device (``gpu``, ``cpu``,
  ``tpu``), and ``best`` on ~5% of the runs (else a version ``v1``..``v3``);
* 2 attributes: ``team`` str (``vision``, ``nlp``, ``speech``, ``tabular``) and ``budget``
  (a number, 10..1000 with two decimals).

So ``metrics.acc > 0.9 and hyperparameters.model = 'tree'`` matches ~2.5% of the runs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

PROJECT = "search-bench"
EXPERIMENTS = 10
STEPS = 10
MODELS = ("tree", "gbm", "rf", "mlp")
WORKFLOWS = ("sweep", "manual", "ablation")
DEVICES = ("gpu", "cpu", "tpu")
VERSIONS = ("v1", "v2", "v3")
TEAMS = ("vision", "nlp", "speech", "tabular")
METRICS = ("acc", "loss", "val_acc", "val_loss", "grad_norm")
BEST_SHARE = 0.05
SEED = 13  # the number: the same data on every machine


def experiment_name(k: int) -> str:
    return f"exp-{k}"


@dataclass(frozen=True, slots=True)
class RunData:
    index: int
    name: str
    experiment: int  # 0..EXPERIMENTS-1
    hyperparameters: dict[str, float | int | str | bool]
    metrics: dict[str, list[float]]  # key -> values at steps 0..STEPS-1
    tags: list[str]
    attributes: dict[str, str | float]

    def latest(self) -> dict[str, float]:
        return {k: v[-1] for k, v in self.metrics.items()}


def make_run(i: int, seed: int = SEED) -> RunData:
    rng = random.Random((seed << 32) + i)
    lr = 10 ** rng.uniform(-5, -1)
    hyper: dict[str, float | int | str | bool] = {
        "lr": lr,
        "model": rng.choice(MODELS),
        "depth": rng.randint(1, 12),
        "use_bn": rng.random() < 0.5,
        "seed": i,
    }
    acc = rng.random()
    val_acc = max(0.0, min(1.0, acc - rng.uniform(0, 0.05)))
    grad = rng.uniform(0.1, 10.0)
    metrics: dict[str, list[float]] = {k: [] for k in METRICS}
    for step in range(STEPS):
        f = (step + 1) / STEPS  # the curves end at the final values at the last step
        rise = 1 - math.exp(-4 * f)
        end = 1 - math.exp(-4)
        metrics["acc"].append(acc * rise / end)
        metrics["loss"].append((1 - acc) + (1 - rise / end) * 2.0)
        metrics["val_acc"].append(val_acc * rise / end)
        metrics["val_loss"].append((1 - val_acc) + (1 - rise / end) * 2.2)
        metrics["grad_norm"].append(grad / f)
    tags = [
        rng.choice(WORKFLOWS),
        rng.choice(DEVICES),
        "best" if rng.random() < BEST_SHARE else rng.choice(VERSIONS),
    ]
    attributes: dict[str, str | float] = {
        "team": rng.choice(TEAMS),
        "budget": round(rng.uniform(10, 1000), 2),
    }
    return RunData(i, f"run-{i:06d}", i % EXPERIMENTS, hyper, metrics, tags, attributes)


def runs(start: int, stop: int, seed: int = SEED) -> Iterator[RunData]:
    for i in range(start, stop):
        yield make_run(i, seed)
