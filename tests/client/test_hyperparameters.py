"""Hyperparameters keep their type exactly; a changed value needs overwrite=True; a failed
call writes nothing."""

from __future__ import annotations

import math
from typing import Any

import pytest

import cairn

from .conftest import MakeClient, expect_error

TYPED = {
    "int": 1,
    "float": 1.0,
    "str": "1",
    "bool": True,
    "false": False,
    "zero": 0,
    "negative": -7,
    "big": 2**63 - 1,
    "small": -(2**63),
    "tiny": 1e-300,
    "precise": 0.1 + 0.2,
    "inf": math.inf,
    "neg_inf": -math.inf,
    "empty": "",
    "text": "adam 🚀 优化",
    "true_text": "true",
}


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert type(got[key]) is type(value), key
        assert got[key] == value, key


def test_types_come_back_exactly(open_client: MakeClient) -> None:
    client = open_client()
    run = client.set_experiment_run("r")
    run.log_hyperparameters(TYPED)
    assert_same(run.get_hyperparameters(), TYPED)
    client.close()
    assert_same(open_client().get_run(run.id).get_hyperparameters(), TYPED)


def test_one_at_a_time(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for key, value in TYPED.items():
        run.log_hyperparameter(key, value)
    assert_same(run.get_hyperparameters(), TYPED)
    assert type(run.get_hyperparameter("int")) is int
    assert type(run.get_hyperparameter("bool")) is bool
    with pytest.raises(cairn.NotFound, match="missing"):
        run.get_hyperparameter("missing")


def test_nan_comes_back_as_nan(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_hyperparameter("nan", math.nan)
    value = run.get_hyperparameter("nan")
    assert type(value) is float
    assert math.isnan(value)
    run.log_hyperparameter("nan", math.nan)  # the same value again: no conflict


def test_numpy_scalars_keep_their_kind(client: cairn.Client) -> None:
    np = pytest.importorskip("numpy")
    run = client.set_experiment_run("r")
    run.log_hyperparameters({"i": np.int64(3), "f": np.float32(0.5)})
    assert_same(run.get_hyperparameters(), {"i": 3, "f": 0.5})


CHANGES = [
    (0.1, 0.2),
    (1, 1.0),
    (1, True),
    (1, "1"),
    (True, 1),
    (0, False),
    (0.0, -0.0),
    ("adam", "sgd"),
]


def test_changed_value_is_a_conflict(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for i, (first, second) in enumerate(CHANGES):
        key = f"lr{i}"
        run.log_hyperparameter(key, first)
        error = expect_error(cairn.Conflict, key, run.log_hyperparameter, key, second)
        assert key in str(error)
        assert "overwrite=True" in str(error)
        assert_same(run.get_hyperparameters(), {key: first})
        run.log_hyperparameter(key, second, overwrite=True)
        assert_same(run.get_hyperparameters(), {key: second})
        run.log_hyperparameter(key, second)  # now the same value: fine
        run.end()
        run = client.set_experiment_run(f"r{i}")


def test_same_value_again_is_a_no_op(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_hyperparameters({"lr": 0.1, "layers": 3, "opt": "adam", "bn": False})
    run.log_hyperparameters({"lr": 0.1, "layers": 3, "opt": "adam", "bn": False})
    run.log_hyperparameter("layers", 3)
    assert_same(run.get_hyperparameters(), {"lr": 0.1, "layers": 3, "opt": "adam", "bn": False})


def test_a_conflict_writes_nothing(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_hyperparameter("lr", 0.1)
    with pytest.raises(cairn.Conflict):
        run.log_hyperparameters({"a": 1, "lr": 0.2, "z": "zz"})
    assert_same(run.get_hyperparameters(), {"lr": 0.1})


def test_overwrite_applies_every_value(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_hyperparameters({"lr": 0.1, "layers": 3})
    run.log_hyperparameters({"lr": 0.2, "layers": 3, "new": "x"}, overwrite=True)
    assert_same(run.get_hyperparameters(), {"lr": 0.2, "layers": 3, "new": "x"})


BAD_VALUES = [None, [1, 2], {"a": 1}, b"bytes", object(), 2**63, -(2**63) - 1, "a\x00b"]


def test_bad_values_are_refused_and_write_nothing(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for value in BAD_VALUES:
        error = expect_error(
            cairn.InvalidArgument, value, run.log_hyperparameters, {"good": 1, "bad": value}
        )
        assert error.field == "hyperparameter 'bad'"
        assert str(error).startswith("hyperparameter 'bad': ")
    assert run.get_hyperparameters() == {}


def test_hyperparameters_at_run_creation(client: cairn.Client) -> None:
    run = client.start_run(hyperparameters={"lr": 0.1, "epochs": 10})
    assert_same(run.get_hyperparameters(), {"lr": 0.1, "epochs": 10})
    again = client.set_experiment_run("named", hyperparameters={"lr": 0.1})
    with pytest.raises(cairn.Conflict):
        client.set_experiment_run("named", hyperparameters={"lr": 0.5})
    assert_same(again.get_hyperparameters(), {"lr": 0.1})
