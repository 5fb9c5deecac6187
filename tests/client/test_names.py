"""Names: 1-256 characters of any Unicode but control characters, unique within the
parent; a bad one is an InvalidArgument naming the field and the rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import cairn

from .conftest import MakeClient, expect_error

UNICODE_NAMES = [
    "🚀 launch 🧪",
    "👩‍🔬 scientist",  # a zero-width joiner sequence
    "实验 一号",
    "実験-テスト",
    "مرحبا بالعالم",
    "שלום עולם",
    "e\u0301te\u0301",
    "naïve café",
    "x" * 256,
    "🚀" * 256,
    " leading and trailing ",
    "a/b\\c:d*e?f\"g<h>i|j'k%l_m",
]

BAD_NAMES = [
    ("", "1 to 256"),
    ("x" * 257, "1 to 256"),
    ("🚀" * 257, "1 to 256"),
    ("a\x00b", "control"),
    ("a\nb", "control"),
    ("a\tb", "control"),
    ("a\rb", "control"),
    ("a\x1bb", "control"),
    ("a\x7fb", "control"),
    ("a\x85b", "control"),
]
NOT_STRINGS = [None, 42, b"bytes", ["list"]]


def _project(client: cairn.Client, name: Any) -> None:
    client.set_project(name)


def _experiment(client: cairn.Client, name: Any) -> None:
    client.set_experiment(name)


def _set_run(client: cairn.Client, name: Any) -> None:
    client.set_experiment_run(name)


def _start_run(client: cairn.Client, name: Any) -> None:
    client.start_run(name)


def _tag(client: cairn.Client, name: Any) -> None:
    client.set_project("p").log_tag(name)


def _metric(client: cairn.Client, name: Any) -> None:
    client.set_experiment_run("r").log_metric(name, 1.0)


def _hyperparameter(client: cairn.Client, name: Any) -> None:
    client.set_experiment_run("r").log_hyperparameter(name, 1)


def _attribute(client: cairn.Client, name: Any) -> None:
    client.set_project("p").log_attribute(name, 1)


NAMED: dict[str, tuple[Callable[[cairn.Client, Any], None], str]] = {
    "project": (_project, "project name"),
    "experiment": (_experiment, "experiment name"),
    "set-run": (_set_run, "run name"),
    "start-run": (_start_run, "run name"),
    "tag": (_tag, "tag"),
    "metric": (_metric, "metric key"),
    "hyperparameter": (_hyperparameter, "hyperparameter key"),
    "attribute": (_attribute, "attribute key"),
}


def test_bad_names_are_refused(client: cairn.Client) -> None:
    for name, rule in BAD_NAMES:
        for kind, (call, field) in NAMED.items():
            error = expect_error(cairn.InvalidArgument, (kind, name), call, client, name)
            assert error.field == field, kind
            assert str(error).startswith(f"{field}: must"), kind
            assert rule in str(error), kind


def test_names_must_be_strings(client: cairn.Client) -> None:
    for name in NOT_STRINGS:
        for kind, (call, field) in NAMED.items():
            if kind == "start-run" and name is None:
                continue  # start_run(None) asks for a generated name
            error = expect_error(cairn.InvalidArgument, (kind, name), call, client, name)
            assert error.field == field, kind
            assert str(error).startswith(f"{field}: must be a string"), kind


def test_a_refused_name_writes_nothing(client: cairn.Client) -> None:
    with pytest.raises(cairn.InvalidArgument):
        client.set_project("bad\nname")
    assert client.list_projects() == []
    experiment = client.set_experiment("e")
    with pytest.raises(cairn.InvalidArgument):
        client.start_run("x" * 257)
    assert experiment.list_runs() == []


def test_unicode_names_round_trip(open_client: MakeClient) -> None:
    client = open_client()
    ids = {}
    for name in UNICODE_NAMES:
        project = client.set_project(name, tags=[name])
        experiment = client.set_experiment(name)
        run = client.set_experiment_run(name)
        run.log_metric(name, 1.5)
        run.log_hyperparameter(name, name)
        run.log_attribute(name, {name: name})
        run.log_tag(name)
        ids[name] = (project.id, experiment.id, run.id)
    client.close()

    again = open_client()
    assert sorted(p.name for p in again.list_projects()) == sorted(UNICODE_NAMES)
    for name, (project_id, experiment_id, run_id) in ids.items():
        found = again.get_project(name)
        assert (found.id, found.name) == (project_id, name)
        assert found.get_tags() == [name]
        [found_experiment] = found.list_experiments()
        assert (found_experiment.id, found_experiment.name) == (experiment_id, name)
        [found_run] = found_experiment.list_runs()
        assert (found_run.id, found_run.name) == (run_id, name)
        assert found_run.get_metrics() == {name: 1.5}
        assert found_run.get_hyperparameters() == {name: name}
        assert found_run.get_attributes() == {name: {name: name}}
        assert found_run.get_tags() == [name]
        # Get-or-create finds the same entities by their Unicode names.
        assert again.set_project(name).id == project_id
        assert again.set_experiment(name).id == experiment_id
        assert again.set_experiment_run(name).id == run_id


def test_names_are_exact_not_normalized(client: cairn.Client) -> None:
    composed = client.set_project("caf\u00e9")
    decomposed = client.set_project("cafe\u0301")
    upper = client.set_project("CAFÉ")
    assert len({composed.id, decomposed.id, upper.id}) == 3


def test_names_are_unique_within_their_parent(client: cairn.Client) -> None:
    a = client.set_project("a")
    exp_a = client.set_experiment("same")
    run_a = client.set_experiment_run("same")
    client.set_project("b")
    exp_b = client.set_experiment("same")
    run_b = client.set_experiment_run("same")
    assert exp_a.id != exp_b.id
    assert run_a.id != run_b.id
    # A project and an experiment or run may share a name: different parents and kinds.
    assert client.set_project("same").id not in {exp_a.id, run_a.id}
    assert [e.name for e in a.list_experiments()] == ["same"]
    assert len(client.list_projects()) == 3
