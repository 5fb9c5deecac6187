"""Projects, experiments and runs through the embedded client: get-or-create, the run
lifecycle, listings, soft delete and persistence across clients."""

from __future__ import annotations

import getpass
import time

import pytest

import cairn
from cairn import RunStatus

from .conftest import MakeClient


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- projects and experiments ----------------------------------------------------------


def test_set_project_creates_then_gets(client: cairn.Client) -> None:
    first = client.set_project("vision", description="image models", tags=["cv", "prod"])
    again = client.set_project("vision")
    assert again.id == first.id
    assert again == first
    assert first.name == "vision"
    assert first.info.description == "image models"
    assert first.get_tags() == ["cv", "prod"]


def test_set_project_keeps_description_unless_given(client: cairn.Client) -> None:
    project = client.set_project("p", description="first")
    client.set_project("p")
    assert project.info.description == "first"
    client.set_project("p", description="second", tags=["new"])
    assert project.info.description == "second"
    assert project.get_tags() == ["new"]


def test_owner_is_the_os_user_unless_given(client: cairn.Client) -> None:
    user = getpass.getuser()
    project = client.set_project("mine")
    experiment = client.set_experiment("exp")
    assert project.info.owner == user
    assert experiment.info.owner == user
    theirs = client.set_project("theirs", owner="alice")
    assert theirs.info.owner == "alice"
    assert client.set_experiment("exp2", owner="bob").info.owner == "bob"


def test_projects_and_experiments_carry_times(client: cairn.Client) -> None:
    before = now_ms()
    project = client.set_project("p")
    experiment = client.set_experiment("e")
    after = now_ms()
    for info in (project.info, experiment.info):
        assert before <= info.created_at <= after
        assert info.created_at <= info.updated_at <= after
    time.sleep(0.005)
    project.log_tag("moved")
    assert project.info.updated_at > project.info.created_at


def test_set_experiment_is_inside_the_current_project(client: cairn.Client) -> None:
    a = client.set_project("a")
    exp_a = client.set_experiment("train")
    b = client.set_project("b")
    exp_b = client.set_experiment("train")
    assert exp_a.project_id == a.id
    assert exp_b.project_id == b.id
    assert exp_a.id != exp_b.id
    assert client.set_experiment("train").id == exp_b.id
    assert [e.id for e in a.list_experiments()] == [exp_a.id]
    assert [e.id for e in b.list_experiments()] == [exp_b.id]


def test_set_experiment_without_project_uses_default(client: cairn.Client) -> None:
    experiment = client.set_experiment("e")
    project = client.get_project(id=experiment.project_id)
    assert project.name == "default"


def test_list_projects(client: cairn.Client) -> None:
    assert client.list_projects() == []
    names = ["one", "two", "three"]
    for name in names:
        client.set_project(name)
    assert sorted(p.name for p in client.list_projects()) == sorted(names)
    assert client.get_project("two").name == "two"


def test_projects_and_experiments_carry_metadata(client: cairn.Client) -> None:
    project = client.set_project("p", description="desc", tags=["t1"])
    experiment = client.set_experiment("e", description="exp desc", tags=["t2"])
    for entity in (project, experiment):
        entity.log_tags(["x", "y"])
        entity.log_attribute("config", {"a": [1, 2]})
        entity.log_artifact("notes.txt", b"hello")
    assert project.get_tags() == ["t1", "x", "y"]
    assert experiment.get_tags() == ["t2", "x", "y"]
    assert experiment.info.description == "exp desc"
    for entity in (project, experiment):
        assert entity.get_attributes() == {"config": {"a": [1, 2]}}
        assert [a.key for a in entity.list_artifacts()] == ["notes.txt"]
        with entity.open_artifact("notes.txt") as stream:
            assert stream.read() == b"hello"


# -- runs -------------------------------------------------------------------------------


def test_set_experiment_run_gets_or_creates_by_name(client: cairn.Client) -> None:
    client.set_project("p")
    experiment = client.set_experiment("e")
    run = client.set_experiment_run("baseline")
    assert run.name == "baseline"
    assert run.experiment_id == experiment.id
    assert client.set_experiment_run("baseline").id == run.id
    other = client.set_experiment("e2")
    elsewhere = client.set_experiment_run("baseline")
    assert elsewhere.id != run.id
    assert elsewhere.experiment_id == other.id


def test_start_run_generates_unique_names(client: cairn.Client) -> None:
    client.set_experiment("e")
    runs = [client.start_run() for _ in range(20)]
    names = [r.name for r in runs]
    assert len(set(names)) == len(names)
    assert all(1 <= len(n) <= 256 for n in names)
    for run in runs:
        run.end()


def test_start_run_with_taken_name_is_already_exists(client: cairn.Client) -> None:
    client.set_experiment("e")
    client.start_run("fixed").end()
    with pytest.raises(cairn.AlreadyExists, match="fixed"):
        client.start_run("fixed")


def test_run_context_finishes(client: cairn.Client) -> None:
    before = now_ms()
    with client.start_run() as run:
        info = run.info
        assert info.status is RunStatus.RUNNING
        assert info.end_time is None
        assert before <= info.start_time <= now_ms()
    info = run.info
    assert info.status is RunStatus.FINISHED
    assert info.end_time is not None
    assert info.start_time <= info.end_time <= now_ms()


def test_run_context_fails_when_the_block_raises(client: cairn.Client) -> None:
    with pytest.raises(ZeroDivisionError), client.start_run() as run:
        run.log_metric("loss", 1.0)
        _ = 1 / 0
    assert run.status is RunStatus.FAILED
    assert run.info.end_time is not None
    assert run.get_metric("loss") == 1.0  # queued points were still written


def test_run_end_with_status(client: cairn.Client) -> None:
    run = client.start_run()
    run.end(status="failed")
    assert run.status is RunStatus.FAILED
    other = client.start_run()
    other.end(RunStatus.KILLED)
    assert other.status is RunStatus.KILLED


def test_run_end_with_unknown_status_is_invalid(client: cairn.Client) -> None:
    run = client.start_run()
    with pytest.raises(cairn.InvalidArgument, match="status") as caught:
        run.end(status="exploded")
    assert caught.value.field == "status"
    assert run.status is RunStatus.RUNNING
    run.end()


def test_child_runs(client: cairn.Client) -> None:
    client.set_experiment("e")
    with client.start_run() as parent:
        children = [client.start_run(parent=parent) for _ in range(3)]
        for child in children:
            assert child.parent_id == parent.id
            assert child.experiment_id == parent.experiment_id
            child.end()
        assert sorted(c.id for c in parent.get_children()) == sorted(c.id for c in children)
        assert children[0].get_children() == []


def test_get_run_by_id(client: cairn.Client) -> None:
    run = client.start_run("named", description="about it")
    found = client.get_run(run.id)
    assert found == run
    assert found.name == "named"
    assert found.info.description == "about it"
    assert found.info.owner == getpass.getuser()
    assert found.project_id == run.project_id


def test_experiment_list_runs(client: cairn.Client) -> None:
    experiment = client.set_experiment("e")
    runs = [client.start_run(f"r{i}") for i in range(3)]
    assert sorted(r.id for r in experiment.list_runs()) == sorted(r.id for r in runs)
    assert client.set_experiment("empty").list_runs() == []


# -- soft delete ------------------------------------------------------------------------


def test_deleted_run_leaves_listings_and_comes_back(client: cairn.Client) -> None:
    experiment = client.set_experiment("e")
    keep = client.start_run("keep")
    gone = client.start_run("gone")
    gone.delete()
    assert [r.id for r in experiment.list_runs()] == [keep.id]
    assert sorted(r.id for r in experiment.list_runs(include_deleted=True)) == sorted(
        [keep.id, gone.id]
    )
    assert client.get_run(gone.id).info.deleted
    restored = client.restore_run(gone.id)
    assert restored.id == gone.id
    assert not restored.info.deleted
    assert sorted(r.id for r in experiment.list_runs()) == sorted([keep.id, gone.id])


def test_deleted_child_leaves_get_children(client: cairn.Client) -> None:
    parent = client.start_run()
    child = client.start_run(parent=parent)
    child.delete()
    assert parent.get_children() == []
    client.restore_run(child.id)
    assert [c.id for c in parent.get_children()] == [child.id]


def test_writing_to_a_deleted_run_is_a_conflict(client: cairn.Client) -> None:
    run = client.start_run()
    run.delete()
    with pytest.raises(cairn.Conflict, match="deleted"):
        run.log_hyperparameter("lr", 0.1)
    with pytest.raises(cairn.Conflict, match="deleted"):
        run.end()
    client.restore_run(run.id)
    run.log_hyperparameter("lr", 0.1)
    run.end()


# -- persistence ------------------------------------------------------------------------


def test_everything_persists_across_clients(open_client: MakeClient) -> None:
    first = open_client()
    project = first.set_project("p", description="pd", tags=["pt"])
    project.log_attribute("pa", {"k": 1})
    experiment = first.set_experiment("e", description="ed", tags=["et"])
    experiment.log_artifact("readme.md", b"# hi")
    with first.start_run("r", tags=["rt"]) as run:
        run.log_hyperparameters({"lr": 0.01, "layers": 3, "opt": "adam", "bn": True})
        run.log_metric("loss", 0.5)
        run.log_metrics({"loss": 0.25, "acc": 0.9})
        run.log_attributes({"nested": {"a": [1, None, "x"]}})
        run.log_artifact("weights.bin", b"\x00\x01\x02")
        child = first.start_run(parent=run)
        child.end("failed")
    deleted = first.start_run("deleted")
    deleted.delete()
    first.close()

    second = open_client()
    [project2] = second.list_projects()
    assert project2.id == project.id
    assert project2.info.description == "pd"
    assert project2.get_tags() == ["pt"]
    assert project2.get_attributes() == {"pa": {"k": 1}}
    [experiment2] = project2.list_experiments()
    assert experiment2.id == experiment.id
    assert experiment2.info.description == "ed"
    assert experiment2.get_tags() == ["et"]
    with experiment2.open_artifact("readme.md") as stream:
        assert stream.read() == b"# hi"
    runs = {r.name: r for r in experiment2.list_runs()}
    assert set(runs) == {"r", child.name}
    run2 = runs["r"]
    assert run2.status is RunStatus.FINISHED
    assert run2.get_tags() == ["rt"]
    assert run2.get_hyperparameters() == {"lr": 0.01, "layers": 3, "opt": "adam", "bn": True}
    assert run2.get_metric("loss") == 0.25
    assert run2.get_metric("acc") == 0.9
    assert [p.value for p in run2.get_metric_history("loss")] == [0.5, 0.25]
    assert run2.get_attributes() == {"nested": {"a": [1, None, "x"]}}
    with run2.open_artifact("weights.bin") as stream:
        assert stream.read() == b"\x00\x01\x02"
    assert [c.id for c in run2.get_children()] == [child.id]
    assert second.get_run(child.id).status is RunStatus.FAILED
    assert second.get_run(deleted.id).info.deleted
    assert {r.id for r in experiment2.list_runs(include_deleted=True)} == {
        run.id,
        child.id,
        deleted.id,
    }
