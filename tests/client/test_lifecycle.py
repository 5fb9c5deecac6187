"""The run lifecycle: an ended run's record is closed until it is resumed, ends do not
rewrite each other, heartbeats keep a run from reading as crashed; runs found by short id
or by name; soft deletes of projects and experiments. On every backend."""

from __future__ import annotations

import time
from array import array
from pathlib import Path

import pytest

import cairn
from cairn.core.columns import SeriesPoints
from cairn.core.ids import short_id
from cairn.core.model import RunStatus
from cairn.core.settings import Settings
from tests.client.conftest import MakeClient, MakeSettings, expect_error


def test_an_ended_run_refuses_what_it_records_and_keeps_what_describes_it(
    client: cairn.Client, open_client: MakeClient, tmp_path: Path
) -> None:
    run = client.start_run("done", capture="none")
    run.log_metric("loss", 1.0)
    run.end()
    for call in (
        lambda: run.log_hyperparameter("lr", 0.1),
        lambda: run.log_artifact("weights", b"w"),
    ):
        error = expect_error(cairn.Conflict, "write to a finished run", call)
        assert run.id in str(error) and "finished" in str(error)
    # This handle knows it ended the run: it refuses at once.
    with pytest.raises(cairn.Conflict, match="resume it first"):
        run.log_metric("loss", 2.0)
    # Another handle (another process, say) finds out when its points are written.
    other = open_client().get_run(run.id)
    other.log_metric("loss", 2.0)
    with pytest.raises(cairn.Conflict, match=f"run {run.id} is finished"):
        other.flush()
    # Tags, attributes and the description describe the run: they stay editable.
    run.log_tag("best")
    run.log_attribute("note", {"why": "late review"})
    run.set_description("reviewed")
    assert run.get_tags() == ["best"]
    assert run.info.description == "reviewed"
    assert [p.value for p in run.get_metric_history("loss")] == [1.0]
    assert run.get_hyperparameters() == {}


def test_ending_again_keeps_the_first_end(client: cairn.Client) -> None:
    run = client.start_run(capture="none")
    run.end("failed")
    first = run.info
    run.end("failed")  # the same end again: a no-op
    assert run.info.end_time == first.end_time
    with pytest.raises(cairn.Conflict, match="already ended as failed"):
        run.end("finished")
    assert run.status is RunStatus.FAILED
    with pytest.raises(cairn.InvalidArgument, match="status"):
        run.end("running")


def test_a_with_block_leaves_an_end_made_inside_it(client: cairn.Client) -> None:
    with client.start_run(capture="none") as run:
        run.end("killed")
    assert run.status is RunStatus.KILLED
    with client.start_run(capture="none") as stopped, pytest.raises(SystemExit):
        raise SystemExit(0)  # sys.exit(0) is a finished run
    assert stopped.status is RunStatus.FINISHED


def test_resume_reopens_the_record_and_steps_go_on(
    client: cairn.Client, open_client: MakeClient
) -> None:
    run = client.start_run("long", capture="none")
    for value in (1.0, 2.0, 3.0):
        run.log_metric("loss", value)
    run.end()
    resumed = open_client().start_run(resume=run.id, hyperparameters={"phase": 2})
    assert resumed.id == run.id
    info = resumed.info
    assert (info.status, info.end_time) == (RunStatus.RUNNING, None)
    resumed.log_metric("loss", 4.0)
    resumed.log_artifact("notes", b"second phase")
    resumed.end()
    assert [(p.step, p.value) for p in run.get_metric_history("loss")] == [
        (0, 1.0),
        (1, 2.0),
        (2, 3.0),
        (3, 4.0),
    ]
    assert run.get_hyperparameters() == {"phase": 2}
    # The first handle resumes too, and then writes again.
    run.resume()
    run.log_metric("loss", 5.0)
    run.end()
    assert run.get_metric("loss") == 5.0


def test_runs_are_found_by_short_id_prefix_case_and_name(client: cairn.Client) -> None:
    client.set_project("vision")
    client.set_experiment("resnet/50")  # names may hold '/'
    run = client.start_run("trial 1", capture="none")
    twin = client.start_run("trial 2", capture="none")
    assert client.get_run(short_id(run.id)).id == run.id
    assert client.get_run(run.id.upper()).id == run.id
    assert client.get_run(run.id[-12:]).id == run.id
    assert client.get_run(run.id.replace("-", "")[:20]).id == run.id
    assert client.get_run("vision/resnet/50/trial 2").id == twin.id
    # Two runs made in the same minute share their first 8 digits.
    assert run.id[:8] == twin.id[:8]
    error = expect_error(cairn.InvalidArgument, "ambiguous", client.get_run, run.id[:8])
    assert short_id(run.id) in str(error) and short_id(twin.id) in str(error)
    assert "'trial 1'" in str(error)
    expect_error(cairn.NotFound, "no such tail", client.get_run, "0123abcd")
    expect_error(cairn.NotFound, "no such name", client.get_run, "vision/resnet/50/trial 3")
    expect_error(cairn.InvalidArgument, "too short", client.get_run, "abc")
    expect_error(cairn.InvalidArgument, "not hex", client.get_run, "trial 1")


def test_a_heartbeat_keeps_a_running_run_alive(
    open_client: MakeClient, make_settings: MakeSettings, server_url: str | None
) -> None:
    if server_url is None:
        writer = open_client(settings=make_settings(heartbeat_interval=0.1))
    else:
        writer = open_client(url=server_url, settings=Settings(heartbeat_interval=0.1))
    run = writer.start_run(capture="none")
    first = run.info.heartbeat_at
    assert first is not None and run.status is RunStatus.RUNNING
    deadline = time.monotonic() + 5
    while run.info.heartbeat_at == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.info.heartbeat_at is not None and run.info.heartbeat_at > first
    run.end()
    ended_at = run.info.heartbeat_at
    time.sleep(0.3)  # an ended run gets no more heartbeats
    assert run.info.heartbeat_at == ended_at


def test_deleted_projects_and_experiments_hide_and_come_back(client: cairn.Client) -> None:
    project = client.set_project("old")
    experiment = client.set_experiment("first")
    client.set_experiment("second")
    experiment.delete()
    assert [e.name for e in project.list_experiments()] == ["second"]
    assert experiment.info.deleted
    with pytest.raises(cairn.Conflict, match="'first' is deleted"):
        client.set_experiment("first")
    experiment.undelete()
    assert [e.name for e in project.list_experiments()] == ["first", "second"]
    project.delete()
    assert "old" not in [p.name for p in client.list_projects()]
    assert client.get_project("old").info.deleted  # found by name, to be restored
    with pytest.raises(cairn.Conflict, match="'old' is deleted"):
        client.set_project("old")
    with pytest.raises(cairn.Conflict, match="deleted"):
        project.set_experiment("third")
    project.undelete()
    assert client.set_project("old").id == project.id


def test_a_short_runs_last_points_go_with_its_end(client: cairn.Client) -> None:
    batches: list[object] = []
    metrics = client._backend.metrics
    real = metrics.log_metric_batch
    metrics.log_metric_batch = lambda *a, **k: (batches.append(a), real(*a, **k))[1]  # type: ignore[method-assign]
    run = client.start_run(capture="none")
    run.log_metric("loss", 0.5)
    run.log_metrics({"acc": 0.9, "loss": 0.25})
    run.end()
    assert batches == []  # one write: the points and the end together
    assert [(p.step, p.value) for p in run.get_metric_history("loss")] == [(0, 0.5), (1, 0.25)]
    assert run.get_metric("acc") == 0.9
    # Many points at the end are flushed first, in batches, as before.
    long = client.start_run(capture="none")
    for i in range(1_500):
        long.log_metric("x", float(i))
    long.end()
    assert batches and len(long.get_metric_history("x")) == 1_500


def test_an_end_with_points_is_applied_once_per_key(client: cairn.Client) -> None:
    entities = client._backend.entities
    run = client.start_run(capture="none")
    client._untrack(run.id)
    points = SeriesPoints(array("q", [0]), array("q", [1]), array("d", [1.0]))
    key = "end-" + run.id
    for _ in range(2):  # a retry after a lost answer carries the same key
        entities.end_run(run.id, "finished", metrics={(run.id, "x"): points}, idempotency_key=key)
    assert len(run.get_metric_history("x")) == 1
    with pytest.raises(cairn.Conflict, match="is finished"):  # points for an ended run
        entities.end_run(run.id, "finished", metrics={(run.id, "x"): points})
    other = client.start_run(capture="none")
    with pytest.raises(cairn.InvalidArgument, match="points of run"):
        entities.end_run(other.id, "finished", metrics={(run.id, "x"): points})
