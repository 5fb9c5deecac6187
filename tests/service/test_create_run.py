"""create_run and set_run: the one-statement path of the usual case, and every case it
hands over to the full path (missing experiment or parent, a parent of another project, a
taken name, get-or-create of an existing run). Whichever path answers, nothing is written
unless the run is created."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import cairn
from cairn.core.model import ExperimentInfo, RunStatus
from cairn.service import TrackingService

from .conftest import START_MS, FakeClock

UNKNOWN = "0190abcd-0000-7000-8000-00000000beef"


@pytest.fixture
def experiment(service: TrackingService) -> ExperimentInfo:
    return service.entities.set_experiment(service.entities.set_project("p").id, "e")


def test_a_new_run_is_returned_as_stored(
    service: TrackingService, experiment: ExperimentInfo, clock: FakeClock
) -> None:
    run = service.entities.create_run(
        experiment.id, "r", description="d", owner="ann", tags=["b", "a"]
    )
    assert run == service.entities.get_run(run.id)
    assert (run.experiment_id, run.project_id) == (experiment.id, experiment.project_id)
    assert (run.name, run.description, run.owner) == ("r", "d", "ann")
    assert run.status is RunStatus.RUNNING
    assert (run.start_time, run.created_at, run.updated_at) == (START_MS,) * 3
    assert (run.parent_id, run.end_time, run.deleted_at) == (None, None, None)
    assert service.labels.get_tags(run.id) == ["a", "b"]


def test_a_child_run_takes_its_parent(service: TrackingService, experiment: ExperimentInfo) -> None:
    parent = service.entities.create_run(experiment.id, "parent")
    sibling = service.entities.set_experiment(experiment.project_id, "other experiment")
    child = service.entities.create_run(sibling.id, "child", parent_id=parent.id)
    assert child == service.entities.get_run(child.id)
    assert (child.parent_id, child.project_id) == (parent.id, experiment.project_id)
    assert service.entities.list_child_runs(parent.id) == [child]


def test_a_deleted_parent_still_takes_children(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    parent = service.entities.create_run(experiment.id, "parent")
    service.entities.delete_run(parent.id)
    child = service.entities.create_run(experiment.id, "child", parent_id=parent.id)
    assert child.parent_id == parent.id


def test_an_unknown_experiment_is_not_found(service: TrackingService) -> None:
    with pytest.raises(cairn.NotFound, match=UNKNOWN) as caught:
        service.entities.create_run(UNKNOWN, "r", tags=["t"])
    assert caught.value.details == {"kind": "experiment", "id": UNKNOWN}


def test_an_unknown_parent_is_not_found_and_writes_nothing(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    with pytest.raises(cairn.NotFound, match=UNKNOWN) as caught:
        service.entities.create_run(experiment.id, "r", parent_id=UNKNOWN, tags=["t"])
    assert caught.value.details == {"kind": "run", "id": UNKNOWN}
    assert service.entities.list_runs(experiment.id) == []


def test_a_parent_of_another_project_writes_nothing(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    elsewhere = service.entities.set_experiment(service.entities.set_project("other").id, "e")
    parent = service.entities.create_run(elsewhere.id, "parent")
    with pytest.raises(cairn.InvalidArgument) as caught:
        service.entities.create_run(experiment.id, "r", parent_id=parent.id)
    assert caught.value.field == "parent_id"
    assert service.entities.list_runs(experiment.id) == []


def test_a_taken_name_is_refused_and_the_run_is_untouched(
    service: TrackingService, experiment: ExperimentInfo, clock: FakeClock
) -> None:
    first = service.entities.create_run(experiment.id, "r")
    clock.tick()
    with pytest.raises(cairn.AlreadyExists, match="'r'") as caught:
        service.entities.create_run(experiment.id, "r", description="new", tags=["t"])
    assert caught.value.details == {"kind": "run", "name": "r"}
    assert service.entities.get_run(first.id) == first
    assert service.labels.get_tags(first.id) == []


def test_set_run_gets_the_existing_run_and_applies_changes(
    service: TrackingService, experiment: ExperimentInfo, clock: FakeClock
) -> None:
    first = service.entities.set_run(experiment.id, "r")
    assert service.entities.set_run(experiment.id, "r") == first
    clock.tick()
    again = service.entities.set_run(experiment.id, "r", description="d", tags=["t"])
    assert again.id == first.id
    assert (again.description, again.updated_at) == ("d", START_MS + 1000)
    assert service.labels.get_tags(first.id) == ["t"]
    assert [r.id for r in service.entities.list_runs(experiment.id)] == [first.id]


def test_a_generated_name_that_is_taken_is_drawn_again(
    service: TrackingService, experiment: ExperimentInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Random names collide too rarely to meet by chance; the draw is made to repeat.
    service.entities.create_run(experiment.id, "taken")
    names: Iterator[str] = iter(["taken", "taken", "free"])
    monkeypatch.setattr("cairn.service.entities.generate_run_name", lambda: next(names))
    assert service.entities.create_run(experiment.id).name == "free"
    monkeypatch.setattr("cairn.service.entities.generate_run_name", lambda: "taken")
    with pytest.raises(cairn.Conflict, match="unique run name"):
        service.entities.create_run(experiment.id)
    assert sorted(r.name for r in service.entities.list_runs(experiment.id)) == ["free", "taken"]


def test_one_name_created_at_once_by_many_threads_is_created_once(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    created: list[str] = []
    refused: list[BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            created.append(service.entities.create_run(experiment.id, "r").id)
        except cairn.AlreadyExists as exc:
            refused.append(exc)

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(created) == 1
    assert len(refused) == threads - 1
    assert [r.id for r in service.entities.list_runs(experiment.id)] == created
