"""Fixtures of the CLI suite: a clean environment, a runner, and a store with runs in it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import cairn
from cairn.cli import app
from cairn.core.settings import SETTINGS

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CAIRN_* variable of the machine leaks in; the working folder is the test's own
    (so a default ``./.cairn`` lands there)."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def invoke() -> Invoke:
    """Run ``cairn ARGS...`` in-process; the Result has exit_code, stdout and stderr."""
    runner = CliRunner()

    def run(*args: str, **options: Any) -> Result:
        return runner.invoke(app, [str(a) for a in args], **options)

    return run


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


@dataclass(frozen=True)
class Tracked:
    home: Path
    project_id: str
    experiment_id: str
    run_id: str
    deleted_run_id: str


@pytest.fixture
def tracked(tmp_path: Path) -> Iterator[Tracked]:
    """An embedded store with project churn / experiment baseline: run "first" (everything
    logged) and run "second" (soft-deleted)."""
    home = tmp_path / "store"
    plots = tmp_path / "plots-src"
    (plots / "sub").mkdir(parents=True)
    (plots / "loss.txt").write_text("loss curve\n")
    (plots / "sub" / "acc.txt").write_text("accuracy curve\n")
    with cairn.Client(home=home) as client:
        project = client.set_project("churn", description="who leaves?")
        experiment = client.set_experiment("baseline", description="first try")
        with client.set_experiment_run(
            "first",
            tags=["baseline"],
            hyperparameters={"lr": 0.1, "epochs": 3, "model": "logreg", "shuffle": True},
        ) as run:
            for step, loss in enumerate((0.9, 0.5, 0.25)):
                run.log_metrics({"loss": loss, "acc": 1 - loss}, step=step)
            run.log_attribute("confusion", [[1, 2], [3, 4]])
            run.log_artifact("weights", b"\x00\x01weights")
            run.log_artifact("plots", plots)
        second = client.set_experiment_run("second")
        second.end()
        second.delete()
        yield Tracked(home, project.id, experiment.id, run.id, second.id)
