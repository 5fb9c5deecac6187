"""Cairn quickstart: train a small logistic-regression model with NumPy and track it.

Everything lands in the embedded store (``$CAIRN_HOME``, default ``./.cairn``):
no server, nothing to start. Run it twice and the second run sits beside the first.
"""

from __future__ import annotations

import io
import sys

import numpy as np

import cairn


def make_data(rng: np.random.Generator, n: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs in 8 dimensions: a churn-like binary problem."""
    x = rng.normal(size=(n, 8))
    true_w = rng.normal(size=8)
    y = (x @ true_w + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def main() -> int:
    hyperparameters = {"lr": 0.5, "epochs": 60, "l2": 1e-3, "seed": 7, "model": "logreg"}
    rng = np.random.default_rng(hyperparameters["seed"])
    x, y = make_data(rng)
    split = int(0.8 * len(x))
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]

    client = cairn.Client()
    client.set_project("churn", description="Quickstart: who is about to leave?", tags=["tabular"])
    client.set_experiment("baseline")
    with client.start_run(tags=["quickstart"], hyperparameters=hyperparameters) as run:
        w = np.zeros(x.shape[1])
        for epoch in range(int(hyperparameters["epochs"])):
            p = 1 / (1 + np.exp(-(x_train @ w)))
            grad = x_train.T @ (p - y_train) / len(y_train) + hyperparameters["l2"] * w
            w -= hyperparameters["lr"] * grad
            loss = -np.mean(y_train * np.log(p + 1e-12) + (1 - y_train) * np.log(1 - p + 1e-12))
            val_acc = np.mean(((x_val @ w) > 0) == y_val)
            run.log_metrics({"loss": float(loss), "val_acc": float(val_acc)}, step=epoch)
        predictions = (x_val @ w) > 0
        confusion = [
            [int(np.sum(~predictions & (y_val == 0))), int(np.sum(predictions & (y_val == 0)))],
            [int(np.sum(~predictions & (y_val == 1))), int(np.sum(predictions & (y_val == 1)))],
        ]
        run.log_attribute("confusion", confusion)
        buffer = io.BytesIO()
        np.save(buffer, w)
        run.log_artifact("model/weights.npy", buffer.getvalue())
        run.log_tag("baseline")

    # Read it all back from the store, as any later process would.
    stored = client.get_run(run.id)
    history = stored.get_metric_history("loss")
    print(f"run        {stored.name} ({stored.id}) in {client.settings.home}")
    print(f"status     {stored.status}")
    print(f"hyperparams {stored.get_hyperparameters()}")
    print(f"tags       {stored.get_tags()}")
    print(f"loss       {len(history)} points: {history[0].value:.4f} -> {history[-1].value:.4f}")
    print(f"val_acc    {stored.get_metric('val_acc'):.3f} (latest)")
    print(f"attributes {stored.get_attributes()}")
    for artifact in stored.list_artifacts():
        print(f"artifact   {artifact.key}: {artifact.size} bytes, blake3 {artifact.digest[:16]}...")
    with stored.open_artifact("model/weights.npy") as f:
        weights = np.load(io.BytesIO(f.read()))
    print(f"weights    {np.round(weights, 3).tolist()}")
    runs = client.set_experiment("baseline").list_runs()
    print(f"runs in churn/baseline: {len(runs)}")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
