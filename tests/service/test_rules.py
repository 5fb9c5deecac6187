"""Rules the service enforces for every face: metric batches, runs, parents."""

from __future__ import annotations

import math
from typing import Any

import pytest

import cairn
from cairn.core.model import MetricRecord
from cairn.service import TrackingService


def make_run(service: TrackingService, name: str = "r", experiment: str = "e") -> str:
    project = service.entities.set_project("p")
    return service.entities.set_run(
        service.entities.set_experiment(project.id, experiment).id, name
    ).id


@pytest.mark.parametrize(
    ("record", "field"),
    [
        pytest.param(("loss", 0, 1, "x"), "metric 'loss'", id="str-value"),
        pytest.param(("loss", 0, 1, None), "metric 'loss'", id="none-value"),
        pytest.param(("loss", 0, 1, True), "metric 'loss'", id="bool-value"),
        pytest.param(("loss", -1, 1, 1.0), "step", id="negative-step"),
        pytest.param(("loss", 2**63, 1, 1.0), "step", id="huge-step"),
        pytest.param(("loss", 0, -1, 1.0), "timestamp", id="negative-timestamp"),
        pytest.param(("", 0, 1, 1.0), "metric key", id="empty-key"),
        pytest.param(("a\nb", 0, 1, 1.0), "metric key", id="control-key"),
    ],
)
def test_bad_points_are_refused_and_write_nothing(
    service: TrackingService, record: tuple[str, int, int, Any], field: str
) -> None:
    run_id = make_run(service)
    good = MetricRecord(run_id, "good", 0, 1, 1.0)
    with pytest.raises(cairn.InvalidArgument) as caught:
        service.metrics.log_metric_records([good, MetricRecord(run_id, *record)])
    assert caught.value.field == field
    assert service.metrics.get_latest_metrics(run_id) == {}


def test_non_finite_values_are_kept(service: TrackingService) -> None:
    run_id = make_run(service)
    service.metrics.log_metric_records(
        [
            MetricRecord(run_id, "nan", 0, 1, math.nan),
            MetricRecord(run_id, "inf", 0, 1, math.inf),
            MetricRecord(run_id, "-inf", 0, 1, -math.inf),
            MetricRecord(run_id, "int", 0, 1, 3),  # type: ignore[arg-type]
        ]
    )
    latest = service.metrics.get_latest_metrics(run_id)
    assert math.isnan(latest["nan"].value)
    assert latest["inf"].value == math.inf
    assert latest["-inf"].value == -math.inf
    assert latest["int"].value == 3.0
    assert type(latest["int"].value) is float


def test_a_batch_touching_a_deleted_run_writes_nothing(service: TrackingService) -> None:
    live = make_run(service, "live")
    gone = make_run(service, "gone")
    service.entities.delete_run(gone)
    with pytest.raises(cairn.Conflict, match="deleted"):
        service.metrics.log_metric_records(
            [MetricRecord(live, "loss", 0, 1, 1.0), MetricRecord(gone, "loss", 0, 1, 1.0)]
        )
    assert service.metrics.get_latest_metrics(live) == {}
    service.entities.restore_run(gone)
    service.metrics.log_metric_records([MetricRecord(gone, "loss", 0, 1, 1.0)])
    assert service.metrics.get_latest_metrics(gone)["loss"].value == 1.0


def test_a_batch_touching_an_unknown_run_is_not_found(service: TrackingService) -> None:
    live = make_run(service)
    unknown = "0190abcd-0000-7000-8000-00000000beef"
    with pytest.raises(cairn.NotFound, match=unknown):
        service.metrics.log_metric_records(
            [MetricRecord(live, "loss", 0, 1, 1.0), MetricRecord(unknown, "loss", 0, 1, 1.0)]
        )
    assert service.metrics.get_latest_metrics(live) == {}


def test_set_run_needs_a_name(service: TrackingService) -> None:
    experiment = service.entities.set_experiment(service.entities.set_project("p").id, "e")
    with pytest.raises(cairn.InvalidArgument, match="run name"):
        service.entities.set_run(experiment.id, None)  # type: ignore[arg-type]
    assert service.entities.list_runs(experiment.id) == []


def test_parent_must_be_in_the_same_project(service: TrackingService) -> None:
    a = service.entities.set_project("a")
    b = service.entities.set_project("b")
    parent = service.entities.create_run(service.entities.set_experiment(a.id, "e").id)
    other_experiment = service.entities.set_experiment(b.id, "e")
    with pytest.raises(cairn.InvalidArgument) as caught:
        service.entities.create_run(other_experiment.id, parent_id=parent.id)
    assert caught.value.field == "parent_id"
    assert service.entities.list_runs(other_experiment.id) == []
    # Another experiment of the same project is fine.
    sibling = service.entities.set_experiment(a.id, "e2")
    child = service.entities.create_run(sibling.id, parent_id=parent.id)
    assert child.parent_id == parent.id


def test_unknown_parent_is_not_found(service: TrackingService) -> None:
    experiment = service.entities.set_experiment(service.entities.set_project("p").id, "e")
    unknown = "0190abcd-0000-7000-8000-00000000beef"
    with pytest.raises(cairn.NotFound, match=unknown):
        service.entities.create_run(experiment.id, parent_id=unknown)


def test_hyperparameter_conflict_rolls_back(service: TrackingService) -> None:
    run_id = make_run(service)
    service.labels.log_hyperparameters(run_id, {"lr": 0.1})
    with pytest.raises(cairn.Conflict):
        service.labels.log_hyperparameters(run_id, {"a": 1, "lr": 0.2})
    assert service.labels.get_hyperparameters(run_id) == {"lr": 0.1}


def test_attribute_limit_comes_from_settings(service: TrackingService) -> None:
    run_id = make_run(service)
    limit = service.settings.max_attribute_bytes
    assert limit == 1024 * 1024
    with pytest.raises(cairn.InvalidArgument, match=str(limit)):
        service.labels.set_attributes(run_id, {"big": "x" * limit})
