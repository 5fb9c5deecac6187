"""Every time the service records comes from its injected clock."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import cairn
from cairn.core.model import MetricRecord, RunStatus
from cairn.core.settings import Settings
from cairn.service import TrackingService

from .conftest import START_MS, FakeClock


def id_time(entity_id: str) -> int:
    """The milliseconds a UUIDv7 was made at."""
    return uuid.UUID(entity_id).int >> 80


def test_project_and_experiment_times(service: TrackingService, clock: FakeClock) -> None:
    project = service.entities.set_project("p", owner="ann")
    assert (project.created_at, project.updated_at) == (START_MS, START_MS)
    assert id_time(project.id) == START_MS
    clock.tick()
    experiment = service.entities.set_experiment(project.id, "e")
    assert (experiment.created_at, experiment.updated_at) == (START_MS + 1000, START_MS + 1000)
    assert id_time(experiment.id) == START_MS + 1000
    assert service.entities.get_project(project.id).updated_at == START_MS


def test_get_or_create_without_changes_keeps_updated_at(
    service: TrackingService, clock: FakeClock
) -> None:
    project = service.entities.set_project("p", description="d", tags=["t"])
    clock.tick()
    again = service.entities.set_project("p")
    assert again == project
    again = service.entities.set_project("p", description="d")  # the same description: no change
    assert again.updated_at == START_MS
    changed = service.entities.set_project("p", description="new")
    assert (changed.created_at, changed.updated_at) == (START_MS, START_MS + 1000)
    clock.tick()
    tagged = service.entities.set_project("p", tags=["t2"])
    assert tagged.updated_at == START_MS + 2000


@pytest.mark.parametrize("kind", ["project", "experiment", "run"])
def test_writes_move_updated_at(service: TrackingService, clock: FakeClock, kind: str) -> None:
    project = service.entities.set_project("p")
    experiment = service.entities.set_experiment(project.id, "e")
    run = service.entities.create_run(experiment.id, "r")
    entity_id = {"project": project.id, "experiment": experiment.id, "run": run.id}[kind]
    read = {
        "project": service.entities.get_project,
        "experiment": service.entities.get_experiment,
        "run": service.entities.get_run,
    }[kind]
    writes = [
        lambda: service.labels.add_tags(entity_id, ["a"]),
        lambda: service.labels.remove_tags(entity_id, ["a"]),
        lambda: service.labels.set_attributes(entity_id, {"k": 1}),
        lambda: service.labels.remove_attributes(entity_id, ["k"]),
        lambda: service.entities.set_description(entity_id, "text"),
        lambda: service.artifacts.log_artifact(entity_id, "f.txt", b"bytes"),
    ]
    for write in writes:
        now = clock.tick()
        write()
        info = read(entity_id)
        assert info.updated_at == now
        assert info.created_at == START_MS


def test_run_lifecycle_times(service: TrackingService, clock: FakeClock) -> None:
    project = service.entities.set_project("p")
    experiment = service.entities.set_experiment(project.id, "e")
    clock.tick()
    run = service.entities.create_run(experiment.id)
    t0 = START_MS + 1000
    assert (run.start_time, run.created_at, run.updated_at) == (t0, t0, t0)
    assert run.end_time is None
    assert run.deleted_at is None
    assert run.status is RunStatus.RUNNING
    assert id_time(run.id) == t0

    t1 = clock.tick(250)
    service.labels.log_hyperparameters(run.id, {"lr": 0.1})
    assert service.entities.get_run(run.id).updated_at == t1

    t2 = clock.tick(5000)
    ended = service.entities.end_run(run.id, "finished")
    assert ended.status is RunStatus.FINISHED
    assert (ended.start_time, ended.end_time, ended.updated_at) == (t0, t2, t2)

    t3 = clock.tick()
    deleted = service.entities.delete_run(run.id)
    assert (deleted.deleted_at, deleted.updated_at) == (t3, t3)
    clock.tick()
    assert service.entities.delete_run(run.id).deleted_at == t3  # deleting again changes nothing

    t5 = clock.tick()
    restored = service.entities.restore_run(run.id)
    assert restored.deleted_at is None
    assert restored.updated_at == t5
    assert restored.end_time == t2


def test_set_run_and_create_run(service: TrackingService, clock: FakeClock) -> None:
    experiment = service.entities.set_experiment(service.entities.set_project("p").id, "e")
    run = service.entities.set_run(experiment.id, "r")
    clock.tick()
    assert service.entities.set_run(experiment.id, "r") == run
    with pytest.raises(cairn.AlreadyExists, match="'r'"):
        service.entities.create_run(experiment.id, "r")
    other = service.entities.create_run(experiment.id, "other")
    assert other.start_time == START_MS + 1000


def test_generated_run_names_are_unique_at_one_instant(service: TrackingService) -> None:
    experiment = service.entities.set_experiment(service.entities.set_project("p").id, "e")
    runs = [service.entities.create_run(experiment.id) for _ in range(30)]
    assert len({r.name for r in runs}) == 30
    assert len({r.id for r in runs}) == 30
    assert {r.start_time for r in runs} == {START_MS}


def test_artifact_created_at(service: TrackingService, clock: FakeClock) -> None:
    project = service.entities.set_project("p")
    t = clock.tick(42)
    info = service.artifacts.log_artifact(project.id, "a.bin", b"a")
    assert info.created_at == t
    clock.tick()
    [listed] = service.artifacts.list_artifacts(project.id)
    assert listed.created_at == t


def test_metric_timestamps_are_kept_as_given(service: TrackingService, clock: FakeClock) -> None:
    experiment = service.entities.set_experiment(service.entities.set_project("p").id, "e")
    run = service.entities.create_run(experiment.id, "r")
    service.metrics.log_metric_records(
        [MetricRecord(run.id, "loss", 0, 5, 1.0), MetricRecord(run.id, "loss", 1, 3, 0.5)]
    )
    latest = service.metrics.get_latest_metrics(run.id)["loss"]
    assert (latest.step, latest.timestamp, latest.value) == (1, 3, 0.5)


def test_client_uses_an_injected_clock(tmp_path: Path, store_url: str) -> None:
    clock = FakeClock(1_234_567_890_000)
    settings = Settings(home=f"{tmp_path}/home", store_uri=store_url)
    with cairn.Client(settings=settings, clock=clock) as client:
        project = client.set_project("p")
        run = client.set_experiment_run("r")
        run.log_metric("loss", 1.0)
        run.log_metrics({"acc": 0.5})
        [point] = run.get_metric_history("loss")
        assert point.timestamp == 1_234_567_890_000
        assert run.get_metrics_latest()["acc"].timestamp == 1_234_567_890_000
        assert project.info.created_at == 1_234_567_890_000
        clock.tick(7)
        run.end()
        assert run.info.end_time == 1_234_567_890_007
