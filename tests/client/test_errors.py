"""One error hierarchy under cairn.CairnError; each message names the field and the rule."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import cairn

from .conftest import expect_error

UNKNOWN_ID = "0190abcd-0000-7000-8000-00000000beef"


@pytest.mark.parametrize(
    "error",
    [
        cairn.NotFound,
        cairn.AlreadyExists,
        cairn.Conflict,
        cairn.InvalidArgument,
        cairn.CorruptObject,
        cairn.SchemaOutOfDate,
        cairn.StoreUnavailable,
        cairn.PermissionDenied,
        cairn.Unauthenticated,
    ],
)
def test_every_error_is_a_cairn_error(error: type[cairn.CairnError]) -> None:
    assert issubclass(error, cairn.CairnError)
    assert issubclass(cairn.CairnError, Exception)
    assert error.code != cairn.CairnError.code


def test_errors_survive_pickling(client: cairn.Client) -> None:
    with pytest.raises(cairn.InvalidArgument) as caught:
        client.set_project("")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is cairn.InvalidArgument
    assert str(copy) == str(caught.value)
    assert copy.details == caught.value.details


def test_unknown_ids_are_not_found(client: cairn.Client) -> None:
    calls = {
        "get_run": lambda: client.get_run(UNKNOWN_ID),
        "restore_run": lambda: client.restore_run(UNKNOWN_ID),
        "delete_run": lambda: client.delete_run(UNKNOWN_ID),
        "get_experiment": lambda: client.get_experiment(UNKNOWN_ID),
        "get_project": lambda: client.get_project(id=UNKNOWN_ID),
        "get_project_by_name": lambda: client.get_project("no such project"),
    }
    for name, call in calls.items():
        with pytest.raises(cairn.NotFound) as caught:
            call()
        message = str(caught.value)
        assert UNKNOWN_ID in message or "no such project" in message, name
        assert message.startswith("no "), name


def test_unknown_ids_through_handles_are_not_found(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    experiment = client.get_experiment(run.experiment_id)
    project = client.get_project(id=run.project_id)
    ghost_run = client.get_run(run.id)
    ghost_run.id = UNKNOWN_ID
    ghost_experiment = client.get_experiment(experiment.id)
    ghost_experiment.id = UNKNOWN_ID
    ghost_project = client.get_project(id=project.id)
    ghost_project.id = UNKNOWN_ID
    for call in (
        ghost_run.get_hyperparameters,
        lambda: ghost_run.get_metric_history("loss"),
        ghost_run.get_tags,
        lambda: ghost_run.log_tag("x"),
        lambda: ghost_run.log_attribute("x", 1),
        lambda: ghost_run.log_hyperparameter("x", 1),
        lambda: ghost_run.log_artifact("x", b"x"),
        ghost_run.list_artifacts,
        ghost_run.get_children,
        ghost_experiment.list_runs,
        ghost_project.list_experiments,
        lambda: client.start_run(parent=ghost_run),
    ):
        with pytest.raises(cairn.NotFound, match=UNKNOWN_ID):
            call()


MALFORMED_IDS = ["", "not-a-uuid", UNKNOWN_ID.upper(), UNKNOWN_ID + "0", "../../etc/passwd", 42]


def test_malformed_ids_are_invalid(client: cairn.Client) -> None:
    for bad_id in MALFORMED_IDS:
        # A run is found by its id in any case, or by PROJECT/EXPERIMENT/NAME.
        if bad_id != UNKNOWN_ID.upper() and "/" not in str(bad_id):
            error = expect_error(cairn.InvalidArgument, bad_id, client.get_run, bad_id)
            assert error.field == "run"
            assert "8 or more hex digits" in str(error)
        error = expect_error(cairn.InvalidArgument, bad_id, client.get_experiment, bad_id)
        assert error.field == "experiment_id"
        error = expect_error(cairn.InvalidArgument, bad_id, client.get_project, id=bad_id)
        assert error.field == "project_id"
        if bad_id != UNKNOWN_ID.upper() and "/" not in str(bad_id):
            error = expect_error(cairn.InvalidArgument, bad_id, client.restore_run, bad_id)
            assert error.field == "run"


def test_already_exists_names_the_run(client: cairn.Client) -> None:
    experiment = client.set_experiment("e")
    client.start_run("taken")
    with pytest.raises(cairn.AlreadyExists) as caught:
        client.start_run("taken")
    assert "'taken'" in str(caught.value)
    assert "already exists" in str(caught.value)
    assert caught.value.details["name"] == "taken"
    assert [r.name for r in experiment.list_runs()] == ["taken"]


def test_conflict_names_the_key_and_the_way_out(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_hyperparameter("lr", 0.1)
    with pytest.raises(cairn.Conflict) as caught:
        run.log_hyperparameter("lr", 0.2)
    message = str(caught.value)
    assert "'lr'" in message
    assert "0.1" in message
    assert "0.2" in message
    assert "overwrite=True" in message
    assert caught.value.details["field"] == "lr"


def test_invalid_argument_carries_the_field(client: cairn.Client) -> None:
    with pytest.raises(cairn.InvalidArgument) as caught:
        client.set_project("x" * 300)
    error = caught.value
    assert error.field == "project name"
    assert error.details["field"] == "project name"
    assert error.code == "invalid_argument"
    assert str(error) == "project name: must be 1 to 256 characters long, got 300"


def test_description_rules(client: cairn.Client) -> None:
    with pytest.raises(cairn.InvalidArgument, match="description") as caught:
        client.set_project("p", description="nul\x00inside")
    assert "NUL" in str(caught.value)
    with pytest.raises(cairn.InvalidArgument, match="description"):
        client.set_project("p", description="x" * 70_000)
    assert client.list_projects() == []
    project = client.set_project("p", description="multi\nline\ttext is fine")
    assert project.info.description == "multi\nline\ttext is fine"


def test_get_project_needs_one_of_name_and_id(client: cairn.Client) -> None:
    with pytest.raises(cairn.InvalidArgument, match="name"):
        client.get_project()
    with pytest.raises(cairn.InvalidArgument, match="name"):
        client.get_project("p", id=UNKNOWN_ID)


def test_bad_store_urls(tmp_path: Path) -> None:
    with pytest.raises(cairn.InvalidArgument, match="store_uri"):
        cairn.Client(home=str(tmp_path), store="mysql://localhost/db")
    with pytest.raises(cairn.InvalidArgument, match="store_uri"):
        cairn.Client(home=str(tmp_path), store="not a url")


def test_unreachable_store_is_unavailable(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(cairn.StoreUnavailable) as caught:
        cairn.Client(home=str(tmp_path), store=url)
    assert "127.0.0.1" in str(caught.value)
