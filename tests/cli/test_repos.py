"""``cairn repos ...`` and ``cairn runs restore`` on an embedded store and through a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.core.settings import Settings
from cairn.versioning import Hyperparameters, Python
from tests.servers import serve_in_thread

from .conftest import Invoke, json_of


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str]:
    """A repository churn/ingredients: main and exp diverged on the learning rate; a run
    linked to main's head. (home, run id)"""
    home = tmp_path / "store"
    with cairn.Client(home=home, settings=Settings(home=str(home), capture="none")) as client:
        client.set_project("churn")
        repo = client.set_repository("ingredients")
        main = repo.get_commit(branch="main")
        main.update("config/hp", Hyperparameters({"lr": 0.1}))
        main.update("env/py", Python(["numpy==1.26.0"]))
        main.save("first")
        exp = repo.branch("exp")
        exp.update("config/hp", Hyperparameters({"lr": 0.2}))
        exp.save("exp lr")
        main.update("config/hp", Hyperparameters({"lr": 0.3}))
        main.update("env/py", Python(["numpy==2.0.0"]))
        main.save("main lr")
        run = client.start_run()
        run.log_commit(main, key_paths={"hp": "config/hp"})
        run.end()
    return home, run.id


@pytest.fixture(params=["embedded", "http"])
def where(request: pytest.FixtureRequest, store: tuple[Path, str]) -> Iterator[list[str]]:
    home, _ = store
    if request.param == "embedded":
        yield ["--home", str(home)]
        return
    with serve_in_thread(Settings(home=str(home))) as url:
        yield ["--url", url]


def test_ls_log_and_show(invoke: Invoke, where: list[str]) -> None:
    listed = invoke("repos", "ls", "churn", *where)
    assert listed.exit_code == 0 and "ingredients" in listed.stdout
    log = json_of(invoke("repos", "log", "churn/ingredients", *where, "--json"))
    assert [c["message"] for c in log] == ["main lr", "first", "Initial commit"]
    by_path = json_of(
        invoke("repos", "log", "churn/ingredients", "--path", "env/py", *where, "--json")
    )
    assert [c["message"] for c in by_path] == ["main lr", "first"]
    shown = json_of(invoke("repos", "show", "churn/ingredients", "main", *where, "--json"))
    assert shown["paths"] == {"config/hp": "config.hyperparameters", "env/py": "environment.python"}
    blob = invoke("repos", "show", "churn/ingredients", log[1]["id"][:10], "config/hp", *where)
    assert json.loads(blob.stdout) == {
        "kind": "config.hyperparameters",
        "body": {"values": {"lr": ["float", "0.1"]}, "ranges": {}, "sets": {}},
    }


def test_diff(invoke: Invoke, where: list[str]) -> None:
    result = invoke("repos", "diff", "churn/ingredients", "exp", "main", *where)
    assert result.exit_code == 0, result.stderr
    assert "~ config/hp (config.hyperparameters, modified)" in result.stdout
    assert "values.lr: 0.2 -> 0.3" in result.stdout
    assert "requirements.numpy: numpy==1.26.0 -> numpy==2.0.0" in result.stdout


def test_merge_with_a_conflict_moves_nothing(invoke: Invoke, where: list[str]) -> None:
    before = json_of(invoke("repos", "log", "churn/ingredients", "--limit", "1", *where, "--json"))
    result = invoke("repos", "merge", "churn/ingredients", "exp", "--into", "main", *where)
    assert result.exit_code == 1
    assert "config/hp: values.lr: base 0.1, ours 0.3, theirs 0.2" in result.stdout
    after = json_of(invoke("repos", "log", "churn/ingredients", "--limit", "1", *where, "--json"))
    assert after == before


def test_branch_tag_checkout_and_a_clean_merge(
    invoke: Invoke, where: list[str], tmp_path: Path
) -> None:
    assert invoke("repos", "tag", "churn/ingredients", "v1", "main", *where).exit_code == 0
    again = invoke("repos", "tag", "churn/ingredients", "v1", "exp", *where)
    assert again.exit_code == 1 and "exists" in again.stderr
    assert (
        invoke("repos", "branch", "churn/ingredients", "fix", "--from", "v1", *where).exit_code == 0
    )
    merged = invoke("repos", "merge", "churn/ingredients", "fix", "--into", "main", *where)
    assert merged.exit_code == 0, merged.stdout  # fix is main's own commit: nothing to merge
    out = tmp_path / "out"
    result = invoke("repos", "checkout", "churn/ingredients", "v1", str(out), *where)
    assert result.exit_code == 0, result.stderr
    assert (out / "env" / "py" / "requirements.txt").read_text() == "numpy==2.0.0\n"


def test_runs_restore(
    invoke: Invoke, where: list[str], store: tuple[Path, str], tmp_path: Path
) -> None:
    _, run_id = store
    result = invoke("runs", "restore", run_id, str(tmp_path / "back"), *where)
    assert result.exit_code == 0, result.stderr
    assert "restored" in result.stdout
    config = tmp_path / "back" / "ingredients" / "config" / "hp" / "hyperparameters.json"
    assert json.loads(config.read_text())["values"] == {"lr": 0.3}
