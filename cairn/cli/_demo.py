"""``cairn demo``: a few real runs to look at, from a small NumPy training loop."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cairn.cli._common import HomeOption, StoreOption, UrlOption, connect, fail

if TYPE_CHECKING:
    import numpy as np

    from cairn.client import Run

__all__ = ["DEMO_EXPERIMENT", "DEMO_PROJECT", "demo"]

DEMO_PROJECT = "demo"
DEMO_EXPERIMENT = "logreg"
LEARNING_RATES = (0.05, 0.2, 0.8, 2.0, 0.01, 0.5, 1.0, 4.0, 0.1, 0.3)


def demo(
    runs: Annotated[
        int,
        typer.Option(
            "--runs", metavar="N", min=1, max=len(LEARNING_RATES), help="How many runs to make."
        ),
    ] = 3,
    epochs: Annotated[
        int,
        typer.Option("--epochs", metavar="N", min=1, max=10_000, help="Training epochs per run."),
    ] = 40,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Fill a store (or the server given by --url) with a few runs to look at.

    Trains a small logistic regression with NumPy once per learning rate, logging
    hyperparameters, loss and accuracy per epoch, tags, attributes and the weights as an
    artifact, into project "demo", experiment "logreg". Running it again adds runs.
    """
    try:
        import numpy as np
    except ModuleNotFoundError:
        fail("cairn demo trains with NumPy, which is not installed: pip install numpy")

    rng = np.random.default_rng(7)
    data = _make_data(rng)
    with connect(url, home, store, existing=False) as client:
        client.set_project(
            DEMO_PROJECT,
            description="Made by `cairn demo`: logistic regression on synthetic data.",
            tags=["demo"],
        )
        experiment = client.set_experiment(
            DEMO_EXPERIMENT, description="One run per learning rate."
        )
        results: list[tuple[Run, float]] = []
        for lr in LEARNING_RATES[:runs]:
            hyperparameters = {"lr": lr, "epochs": epochs, "l2": 1e-3, "seed": 7, "model": "logreg"}
            with client.start_run(tags=["demo"], hyperparameters=hyperparameters) as run:
                accuracy = _train(run, data, hyperparameters)
            results.append((run, accuracy))
            typer.echo(f"run {run.name} ({run.id}): lr={lr}, val_acc={accuracy:.3f}")
        best, best_accuracy = max(results, key=lambda pair: pair[1])
        best.log_tag("best")
        where = client.settings.url or client.settings.store_uri or client.settings.home
        exp_id = experiment.id
    typer.echo(
        f"\n{len(results)} runs in {DEMO_PROJECT}/{DEMO_EXPERIMENT} ({exp_id}) at {where}; "
        f"best: {best.name} (val_acc={best_accuracy:.3f}). Next:\n"
        f"  cairn runs ls {DEMO_PROJECT}/{DEMO_EXPERIMENT}\n"
        f"  cairn runs show {best.id}\n"
        f"  cairn artifacts get {best.id} weights out/"
    )


Data = tuple["np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray"]


def _make_data(rng: np.random.Generator, n: int = 2_000, features: int = 8) -> Data:
    """A noisy linearly separable binary problem; 80% train, 20% validation."""
    import numpy as np

    x = rng.normal(size=(n, features))
    true_w = rng.normal(size=features)
    y = (x @ true_w + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
    split = int(0.8 * n)
    return x[:split], y[:split], x[split:], y[split:]


def _train(run: Run, data: Data, hp: dict[str, Any]) -> float:
    import numpy as np

    x_train, y_train, x_val, y_val = data
    w = np.zeros(x_train.shape[1])
    accuracy = 0.0
    for epoch in range(int(hp["epochs"])):
        p = 1 / (1 + np.exp(-(x_train @ w)))
        grad = x_train.T @ (p - y_train) / len(y_train) + hp["l2"] * w
        w -= hp["lr"] * grad
        loss = -np.mean(y_train * np.log(p + 1e-12) + (1 - y_train) * np.log(1 - p + 1e-12))
        accuracy = float(np.mean(((x_val @ w) > 0) == y_val))
        run.log_metrics({"loss": float(loss), "val_acc": accuracy}, step=epoch)
    predicted = (x_val @ w) > 0
    run.log_attribute(
        "confusion",
        [
            [int(np.sum(~predicted & (y_val == 0))), int(np.sum(predicted & (y_val == 0)))],
            [int(np.sum(~predicted & (y_val == 1))), int(np.sum(predicted & (y_val == 1)))],
        ],
    )
    run.log_attribute("dataset", {"train": len(y_train), "validation": len(y_val)})
    with tempfile.TemporaryDirectory(prefix="cairn-demo-") as folder:
        np.save(Path(folder, "coef.npy"), w)
        Path(folder, "model.json").write_text(
            json.dumps({"kind": "logistic-regression", "features": len(w), **hp}, indent=2)
        )
        run.log_artifact("weights", folder)
    return accuracy
