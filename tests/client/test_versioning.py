"""Versioning of ingredients through the Python API, on both backends: repositories,
commits of every blob kind, branches and tags, log, diff, merge with resolution, revert,
checkout, runs linked to commits, captured code and environment, and restore."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

import cairn
from cairn.versioning import (
    Docker,
    Git,
    Hyperparameters,
    Notebook,
    Python,
    PythonEnvironment,
    Snapshot,
)
from cairn.versioning import Path as DataPath

from .conftest import MakeClient


@pytest.fixture
def repo(client: cairn.Client) -> cairn.Repository:
    client.set_project("p")
    return client.set_repository("ingredients")


def hp(**values: object) -> Hyperparameters:
    return Hyperparameters(values)


def saved(repo: cairn.Repository, branch: str, message: str, **changes: object) -> cairn.Commit:
    commit = repo.get_commit(branch=branch)
    for path, blob in changes.items():
        commit.update(path.replace("__", "/"), blob)
    return commit.save(message)


def git_tree(tmp_path: Path) -> Path:
    """A git work tree with one commit and one uncommitted change."""
    tree = tmp_path / "work"
    tree.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "remote", "add", "origin", "git@example.com:acme/train.git"],
    ):
        subprocess.run(command, cwd=tree, check=True, env=env)
    (tree / "train.py").write_text("print('v1')\n")
    subprocess.run(["git", "add", "-A"], cwd=tree, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "v1"], cwd=tree, check=True, env=env)
    (tree / "train.py").write_text("print('v2')\n")
    return tree


# -- repositories and commits ------------------------------------------------------------
def test_a_new_repository_starts_with_an_empty_commit_on_main(
    client: cairn.Client, repo: cairn.Repository
) -> None:
    first = repo.get_commit()
    assert first.message == "Initial commit" and first.parents == ()
    assert list(first.walk()) == []
    assert repo.branches() == {"main": first.id}
    assert client.set_repository("ingredients") == repo  # get-or-create
    assert client.get_repository("ingredients") == repo
    assert [r.name for r in client.list_repositories()] == ["ingredients"]
    repo.log_tag("prod")
    repo.log_attribute("owner-team", "tabular")
    assert repo.get_tags() == ["prod"] and repo.get_attribute("owner-team") == "tabular"


def test_every_kind_is_committed_and_read_back(repo: cairn.Repository, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("class Model: ...\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,y\n1,2\n")
    (tmp_path / "eda.ipynb").write_text(json.dumps({"cells": [], "nbformat": 4}))
    commit = repo.get_commit(branch="main")
    commit.update(
        "config/hp",
        Hyperparameters(
            {"lr": 0.01, "depth": 6, "opt": "adam", "bn": True},
            ranges={"lr": (0.001, 0.1, 0.001)},
            sets={"optimizer": ["adam", "sgd"]},
        ),
    )
    commit.update("env/python", Python(requirements=["numpy==1.26.0", "pandas>=2.0"]))
    commit.update(
        "env/docker", Docker("ghcr.io/acme/train", tag="1.4", digest="sha256:" + "a" * 64)
    )
    commit.update("env/captured", Python.capture())
    commit.update("code/src", Snapshot(tmp_path / "src"))
    commit.update("code/eda", Notebook(tmp_path / "eda.ipynb"))
    commit.update("code/train", Git.capture(git_tree(tmp_path)))
    commit.update("data/train", DataPath(tmp_path / "data"))
    commit.save("every kind")
    again = repo.get_commit(branch="main")
    assert again.id == commit.id and again.message == "every kind"
    blobs = dict(again.walk())
    assert sorted(blobs) == [
        "code/eda",
        "code/src",
        "code/train",
        "config/hp",
        "data/train",
        "env/captured",
        "env/docker",
        "env/python",
    ]
    assert blobs["config/hp"] == Hyperparameters(
        {"lr": 0.01, "depth": 6, "opt": "adam", "bn": True},
        ranges={"lr": (0.001, 0.1, 0.001)},
        sets={"optimizer": ["sgd", "adam"]},
    )
    assert blobs["config/hp"].values["depth"] == 6 and type(blobs["config/hp"].values["bn"]) is bool
    git = blobs["code/train"]
    assert git.remote == "git@example.com:acme/train.git" and git.dirty and git.diff is not None
    assert again.paths()["data/train"] == "dataset.path"
    # The bytes come back, verified, on checkout.
    files = {p.relative_to(tmp_path / "out").as_posix() for p in again.checkout(tmp_path / "out")}
    assert "code/src/model.py" in files and "code/eda/eda.ipynb" in files
    assert (tmp_path / "out" / "code" / "src" / "model.py").read_text() == "class Model: ...\n"
    assert "print('v2')" in (tmp_path / "out" / "code" / "train" / "uncommitted.patch").read_text()
    assert (tmp_path / "out" / "env" / "python" / "requirements.txt").read_text() == (
        "numpy==1.26.0\npandas>=2.0\n"
    )
    config = json.loads((tmp_path / "out" / "config" / "hp" / "hyperparameters.json").read_text())
    assert config["values"] == {"lr": 0.01, "depth": 6, "opt": "adam", "bn": True}


def test_saving_on_a_branch_that_moved_is_a_conflict_and_loses_nothing(
    client: cairn.Client, repo: cairn.Repository
) -> None:
    mine = repo.get_commit(branch="main")
    theirs = repo.get_commit(branch="main")
    theirs.update("config/hp", hp(lr=0.1))
    theirs.save("theirs")
    mine.update("config/hp", hp(lr=0.2))
    with pytest.raises(cairn.Conflict, match="moved"):
        mine.save("mine")
    assert mine.staged == {"config/hp": hp(lr=0.2)}  # still there, to merge and save again
    assert repo.get_commit(branch="main").message == "theirs"


def test_bad_ingredients_are_refused_by_name(repo: cairn.Repository, tmp_path: Path) -> None:
    commit = repo.get_commit(branch="main")
    with pytest.raises(cairn.InvalidArgument) as caught:
        commit.update("../outside", hp(lr=1))
    assert caught.value.field == "path"
    with pytest.raises(cairn.InvalidArgument) as caught:
        commit.update("env/py", Python(requirements=["numpy==="]))
    assert caught.value.field == "requirements"
    with pytest.raises(cairn.InvalidArgument):
        commit.update("x", {"lr": 1})
    with pytest.raises(cairn.InvalidArgument, match="nothing is staged"):
        commit.save("empty")
    with pytest.raises(cairn.InvalidArgument, match="git work tree"):
        Git.capture(tmp_path)


def test_log_is_newest_first_and_filters_by_path(repo: cairn.Repository) -> None:
    saved(repo, "main", "a", config__hp=hp(lr=1))
    saved(repo, "main", "b", env__py=Python(["numpy==1"]))
    saved(repo, "main", "c", config__hp=hp(lr=2))
    assert [c.message for c in repo.log()] == ["c", "b", "a", "Initial commit"]
    assert [c.message for c in repo.log(path="config/hp")] == ["c", "a"]
    assert [c.message for c in repo.log(limit=2)] == ["c", "b"]


def test_typed_diff(repo: cairn.Repository) -> None:
    a = saved(repo, "main", "a", config__hp=hp(lr=0.1, depth=6), env__py=Python(["numpy==1.26.0"]))
    b = saved(repo, "main", "b", config__hp=hp(lr=0.01, depth=6), env__py=Python(["numpy==2.0.0"]))
    changes = {c.path: [(f.name, f.before, f.after) for f in c.fields] for c in repo.diff(a, b)}
    assert changes == {
        "config/hp": [("values.lr", ["float", "0.1"], ["float", "0.01"])],
        "env/py": [("requirements.numpy", "numpy==1.26.0", "numpy==2.0.0")],
    }


# -- branches, tags, merges -----------------------------------------------------------------
def test_branch_names_that_need_quoting(repo: cairn.Repository) -> None:
    # A name is quoted once on its way to the server: it was quoted twice ('%253C').
    for name in ("café=<x>", "a%20b", "feat/#1&2"):
        branch = repo.branch(name, from_="main")
        branch.update("config/hp", hp(lr=1))
        branch.save("on " + name)
        assert name in repo.branches()


def test_branches_and_tags(repo: cairn.Repository) -> None:
    base = saved(repo, "main", "base", config__hp=hp(lr=1))
    exp = repo.branch("exp", from_=base)
    exp.update("config/hp", hp(lr=2))
    exp.save("on exp")
    assert repo.get_commit(branch="main").id == base.id  # main did not move
    repo.tag("v1", base)
    assert repo.get_commit(tag="v1").id == base.id
    with pytest.raises(cairn.AlreadyExists):
        repo.tag("v1", exp)
    assert repo.tag("v1", base).commit == base.id  # the same tag again: a retry, not an error
    with pytest.raises(cairn.AlreadyExists, match="force"):
        repo.branch("exp", from_=base)  # it exists
    assert repo.branch("exp", from_=base, force=True).id == base.id
    assert repo.get_commit(id=base.id[:10]).id == base.id
    for bad in ("bad..name", "x.lock/y", "refs/heads/x"):
        with pytest.raises(cairn.InvalidArgument):
            repo.branch(bad)


def test_a_tag_and_a_branch_of_one_name_stay_apart(repo: cairn.Repository) -> None:
    base = saved(repo, "main", "base", config__hp=hp(lr=1))
    repo.tag("v1", base)
    moving = repo.branch("v1", from_=base)
    moving.update("config/hp", hp(lr=2))
    moving.save("branch v1 moves")
    assert repo.get_commit(tag="v1").id == base.id
    assert repo.get_commit(branch="v1").id == moving.id
    assert repo.get_commit(id="v1").id == base.id  # a bare name: the tag first, as in git
    repo.tag("only-a-tag", base)
    with pytest.raises(cairn.NotFound, match="no branch"):
        repo.get_commit(branch="only-a-tag")
    with pytest.raises(cairn.NotFound, match="no tag"):
        repo.get_commit(tag="main")


def test_a_merge_without_conflicts_moves_the_target(repo: cairn.Repository) -> None:
    base = saved(repo, "main", "base", config__hp=hp(lr=0.1, depth=6))
    exp = repo.branch("exp", from_=base)
    exp.update("config/hp", hp(lr=0.01, depth=6))
    exp.save("lr")
    saved(repo, "main", "depth", config__hp=hp(lr=0.1, depth=8), env__py=Python(["numpy==1"]))
    result = repo.merge("exp", into="main")
    assert result.done and result.conflicts == []
    merged = repo.get_commit(branch="main")
    assert len(merged.parents) == 2
    assert merged.get("config/hp") == hp(lr=0.01, depth=8)  # merged per key
    assert merged.get("env/py") == Python(["numpy==1"])


def test_a_conflict_is_listed_then_resolved(repo: cairn.Repository) -> None:
    base = saved(repo, "main", "base", config__hp=hp(lr=0.1))
    exp = repo.branch("exp", from_=base)
    exp.update("config/hp", hp(lr=0.5))
    exp.save("exp lr")
    head = saved(repo, "main", "main lr", config__hp=hp(lr=0.2))
    dry = repo.merge("exp", into="main", dry_run=True)
    assert [c.name for c in dry.conflicts] == ["config/hp: values.lr"]
    result = repo.merge("exp", into="main")
    [conflict] = result.conflicts
    assert (conflict.base, conflict.ours, conflict.theirs) == (
        ["float", "0.1"],
        ["float", "0.2"],
        ["float", "0.5"],
    )
    assert repo.get_commit(branch="main").id == head.id  # nothing moved yet
    with pytest.raises(cairn.InvalidArgument, match="conflicts left"):
        result.commit()
    result.resolve("config/hp", "lr", value=0.3)
    merged = result.commit()
    assert merged.get("config/hp") == hp(lr=0.3)
    assert repo.get_commit(branch="main").id == merged.id


def test_an_aborted_merge_moves_nothing_and_unrelated_histories_are_refused(
    client: cairn.Client, repo: cairn.Repository
) -> None:
    base = saved(repo, "main", "base", config__hp=hp(lr=0.1))
    exp = repo.branch("exp", from_=base)
    exp.update("config/hp", hp(lr=0.5))
    exp.save("exp")
    head = saved(repo, "main", "main", config__hp=hp(lr=0.2))
    result = repo.merge("exp", into="main")
    result.abort()
    with pytest.raises(cairn.InvalidArgument, match="aborted"):
        result.commit()
    assert repo.get_commit(branch="main").id == head.id
    other = client.set_repository("other")
    foreign = saved(other, "main", "x", config__hp=hp(lr=9))
    with pytest.raises(cairn.NotFound):
        repo.merge(foreign.id, into="main")  # a commit of another repository


def test_revert(repo: cairn.Repository) -> None:
    saved(repo, "main", "a", config__hp=hp(lr=1))
    b = saved(repo, "main", "b", config__hp=hp(lr=2), env__py=Python(["numpy==1"]))
    with pytest.raises(cairn.InvalidArgument, match="branch"):
        repo.get_commit(id=b.id).revert()  # read by id: which branch is not known
    undone = repo.get_commit(id=b.id).revert(branch="main")
    assert undone.message == 'Revert "b"'
    head = repo.get_commit(branch="main")
    assert head.id == undone.id and head.get("config/hp") == hp(lr=1)
    assert "env/py" not in head.paths()
    elsewhere = repo.branch("other", from_=repo.log("main")[-1])
    elsewhere.update("x", hp(lr=9))
    elsewhere.save("x")
    with pytest.raises(cairn.InvalidArgument, match="not in the history"):
        repo.get_commit(branch="other").revert(branch="main")


def test_writes_retried_after_a_lost_answer_find_themselves_done(
    repo: cairn.Repository,
) -> None:
    """What a retry of the same request sees when the first one was applied: the result,
    not an error (the HTTP client retries every request whose answer it did not get)."""
    versions = repo._versions
    base = saved(repo, "main", "base", config__hp=hp(lr=1))
    changes = {"config/hp": hp(lr=2)}
    first = versions.save_commit(repo.id, "main", changes, message="m", base=base.id)
    again = versions.save_commit(repo.id, "main", changes, message="m", base=base.id)
    assert again == first
    with pytest.raises(cairn.Conflict):  # another change from the same base is not a retry
        versions.save_commit(repo.id, "main", {"config/hp": hp(lr=3)}, message="m", base=base.id)
    undo = versions.revert(repo.id, first.id, "main")
    assert versions.revert(repo.id, first.id, "main") == undo
    exp = repo.branch("exp", from_=base)
    exp.update("config/hp", hp(lr=5))
    exp.save("exp")
    saved(repo, "main", "lr 7", config__hp=hp(lr=7))
    seen = repo.merge("exp", into="main")  # a conflict on lr: resolved, then completed
    assert seen.conflicts
    seen.resolve("config/hp", "lr", theirs=True)
    asked = dict(
        resolutions={c.key: "theirs" for c in seen._outcome.conflicts},
        expected_source=seen._outcome.source,
        expected_target=seen._outcome.target,
    )
    done = seen.commit()
    outcome = versions.merge(repo.id, "exp", "main", author=repo._client._owner, **asked)
    assert outcome.commit is not None and outcome.commit.id == done.id


# -- runs ---------------------------------------------------------------------------------
def test_runs_link_to_commits_both_ways(client: cairn.Client, repo: cairn.Repository) -> None:
    commit = saved(repo, "main", "data", config__hp=hp(lr=1), env__py=Python(["numpy==1"]))
    run = client.start_run()
    run.log_commit(commit, key_paths={"hp": "config/hp"})
    run.log_commit(commit, key_paths={"env": "env/py"})  # more keys: fine
    assert run.get_commit() == commit
    assert run.get_commit_paths() == {"hp": "config/hp", "env": "env/py"}
    assert commit.list_runs() == [run]
    other = saved(repo, "main", "later", config__hp=hp(lr=2))
    with pytest.raises(cairn.Conflict):
        run.log_commit(other)
    with pytest.raises(cairn.InvalidArgument):
        client.start_run().log_commit(commit, key_paths={"x": "no/such/path"})
    run.delete()
    assert commit.list_runs() == []
    assert commit.list_runs(include_deleted=True) == [run]


@pytest.mark.capture
def test_a_run_records_its_code_and_environment_and_restores(
    client: cairn.Client, repo: cairn.Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = git_tree(tmp_path)
    monkeypatch.chdir(tree)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("CUDA_API_TOKEN", "s3cret")  # allowed by the pattern, but a secret
    commit = saved(repo, "main", "hp", config__hp=hp(lr=0.01))
    with client.start_run(hyperparameters={"lr": 0.01}) as run:
        run.log_commit(commit, key_paths={"hp": "config/hp"})
    captured = run.get_capture()
    assert sorted(captured) == ["code/git", "environment/python"]
    assert captured["code/git"].remote == "git@example.com:acme/train.git"
    assert captured["code/git"].dirty
    env = captured["environment/python"]
    assert env.environment.get("CUDA_VISIBLE_DEVICES") == "0"
    assert "CUDA_API_TOKEN" not in env.environment
    assert any(r.startswith("urllib3==") for r in env.requirements.values())
    report = run.restore(tmp_path / "restored")
    written = {p.relative_to(tmp_path / "restored").as_posix() for p in report.files}
    assert {
        "ingredients/config/hp/hyperparameters.json",
        "captured/code/git/git.json",
        "captured/code/git/uncommitted.patch",
        "captured/environment/python/requirements.txt",
        "hyperparameters.json",
        "restore.json",
    } <= written
    assert json.loads((tmp_path / "restored" / "hyperparameters.json").read_text()) == {"lr": 0.01}
    assert any("git@example.com:acme/train.git" in note for note in report.notes)
    assert not client.start_run(capture="none").get_capture()


@pytest.mark.capture
def test_a_sweep_shares_one_capture(open_client: MakeClient) -> None:
    client = open_client()
    client.set_project("p")
    runs = [client.start_run(capture="environment") for _ in range(3)]
    for run in runs:
        run.end()
    digests = {run.get_capture()["environment/python"].digest() for run in runs}
    assert len(digests) == 1  # one blob, stored once, whatever the number of runs


@pytest.mark.capture
def test_a_sweep_names_its_capture_as_each_run_is_created(
    open_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(git_tree(tmp_path))  # a dirty tree: a reference, with its diff
    client = open_client()
    client.set_project("p")
    first = client.start_run()
    first.end()  # waits for the capture, made in the background and stored
    calls: list[str] = []
    repositories = client._backend.repositories
    for name in ("capture_run", "link_capture"):
        real = getattr(repositories, name)
        setattr(
            repositories, name, lambda *a, _n=name, _r=real, **k: (calls.append(_n), _r(*a, **k))
        )
    later = [client.start_run() for _ in range(3)]
    for run in later:
        run.end()
    assert calls == []  # named as each run was created: nothing left for the background
    expected = first.get_capture()
    assert sorted(expected) == ["code/git", "environment/python"]
    for run in later:
        assert run.get_capture() == expected
    # A store that does not have them (another one here): the run is created without,
    # and the capture is stored as for a first run.
    other = open_client(home=tmp_path / "other", store=f"sqlite:///{tmp_path / 'other.db'}")
    other._capture._stored_blobs = set(client._capture._stored_blobs)
    other._capture._last_diff = client._capture._last_diff
    elsewhere = other.start_run()
    elsewhere.end()
    assert elsewhere.get_capture() == expected
    assert other.start_run().get_capture() == expected  # and now by name again


def test_get_with_a_kind_checks_it(repo: cairn.Repository) -> None:
    commit = saved(repo, "main", "hp", config__hp=hp(lr=0.5))
    assert commit.get("config/hp", Hyperparameters).values == {"lr": 0.5}
    with pytest.raises(cairn.InvalidArgument, match=r"config\.hyperparameters blob"):
        commit.get("config/hp", PythonEnvironment)


def test_conflicts_settled_by_a_blob_a_whole_path_or_a_literal_value(
    repo: cairn.Repository,
) -> None:
    def conflicting(ours: dict[str, object], theirs: dict[str, object]) -> cairn.MergeResult:
        name = f"b{len(repo.branches())}"
        base = repo.get_commit(branch="main")
        other = repo.branch(name, from_=base)
        for path, blob in theirs.items():
            other.update(path.replace("__", "/"), blob)
        other.save("theirs")
        saved(repo, "main", "ours", **ours)
        return repo.merge(name, into="main")

    a, b, c = ("a" * 40, "b" * 40, "c" * 40)
    saved(repo, "main", "base", code=Git(remote="r", commit=a), config__hp=hp(opt="x", lr=1))
    result = conflicting({"code": Git(remote="r", commit=b)}, {"code": Git(remote="r", commit=c)})
    assert [x.name for x in result.conflicts] == ["code: reference"]
    result.resolve("code", value=Git(remote="r", commit=c))  # a blob for the path's fields
    assert result.commit().get("code", Git).commit == c

    result = conflicting({"config__hp": hp(opt="y", lr=2)}, {"config__hp": hp(opt="z", lr=3)})
    assert len(result.conflicts) == 2
    result.resolve("config/hp", "opt", value="ours")  # a value that reads like a side
    result.resolve("config/hp", "lr", ours=True)
    assert result.commit().get("config/hp", Hyperparameters).values == {"opt": "ours", "lr": 2}

    result = conflicting({"env": Python(["numpy==1.0"])}, {"env": Python(["numpy==2.0"])})
    result.resolve("env", "numpy", value="pandas==3")
    with pytest.raises(cairn.InvalidArgument, match="requirement on pandas, not numpy"):
        result.commit()
    result.resolve("env", theirs=True)  # every conflict of the path
    assert result.commit().get("env", Python).requirements == {"numpy": "numpy==2.0"}


def test_concurrent_links_of_one_run_take_turns(
    client: cairn.Client, repo: cairn.Repository
) -> None:
    commit = saved(repo, "main", "hp", config__hp=hp(lr=1))
    run = client.start_run()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def link(i: int) -> None:
        barrier.wait()
        try:
            run.log_commit(commit, key_paths={f"k{i}": "config/hp"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=link, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert run.get_commit_paths() == {f"k{i}": "config/hp" for i in range(4)}
