"""The input rules of cairn.core.validation: each names the field and the rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.core.errors import InvalidArgument
from cairn.core.validation import (
    check_artifact_key,
    check_entity_id,
    check_hyperparameter_value,
    check_metric_value,
    check_name,
    check_step,
    check_text,
    encode_attribute,
)


@pytest.mark.parametrize("name", ["a", "x" * 256, "résumé", "数据集", "🚀 run", "שלום", "a b/c:d"])
def test_names_accept_any_unicode_up_to_256(name: str) -> None:
    assert check_name(name, "run name") == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "1 to 256 characters"),
        ("x" * 257, "1 to 256 characters"),
        ("tab\there", "control characters"),
        ("nul\x00", "control characters"),
        ("line\nbreak", "control characters"),
        ("c1\x85", "control characters"),
        ("del\x7f", "control characters"),
        (42, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_bad_names_name_field_and_rule(name: object, rule: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_name(name, "project name")
    assert err.value.field == "project name"
    assert str(err.value).startswith("project name: ")
    assert rule in str(err.value)


@given(
    st.text(min_size=1, max_size=256).filter(
        lambda s: not any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in s)
    )
)
def test_any_printable_text_is_a_name(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "key",
    ["/etc/passwd", "../up", "a/../../b", "a/./b", "a\\b", "a\x00b", "a//b", "a/", "", "C:/x", "."],
)
def test_hostile_artifact_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_artifact_key(key)
    assert err.value.field == "key"


@pytest.mark.parametrize("key", ["weights", "plots/a.png", "données/é.csv", "a..b", ".hidden/x"])
def test_relative_posix_artifact_keys_pass(key: str) -> None:
    assert check_artifact_key(key) == key


@pytest.mark.parametrize("value", [1, 1.0, "1", True, False, 0, -(2**63), 2**63 - 1, math.inf])
def test_hyperparameters_keep_their_type(value: object) -> None:
    out = check_hyperparameter_value(value, "lr")
    assert type(out) is type(value)
    assert out == value


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, 2**64, b"x"])
def test_bad_hyperparameters(value: object) -> None:
    with pytest.raises(InvalidArgument, match="lr"):
        check_hyperparameter_value(value, "lr")


def test_metric_values() -> None:
    assert check_metric_value(3) == 3.0
    assert type(check_metric_value(3)) is float
    assert math.isnan(check_metric_value(math.nan))
    assert check_metric_value(-math.inf) == -math.inf
    for bad in ("1", None, True, [1.0]):
        with pytest.raises(InvalidArgument, match="loss"):
            check_metric_value(bad, "loss")


def test_steps_are_non_negative_ints() -> None:
    assert check_step(0) == 0
    for bad in (-1, 1.5, "3", True, 2**63):
        with pytest.raises(InvalidArgument, match="step"):
            check_step(bad)


def test_attributes_json_and_limit() -> None:
    assert encode_attribute({"b": [1, 2.5, None, "é"]}, "a", 100) == '{"b":[1,2.5,null,"é"]}'
    with pytest.raises(InvalidArgument, match="above the limit of 10 bytes"):
        encode_attribute("x" * 20, "note", 10)
    with pytest.raises(InvalidArgument, match="JSON-serializable"):
        encode_attribute({1, 2}, "note", 100)


def test_entity_ids() -> None:
    assert check_entity_id("01a21900-678d-76c5-bfe9-9b161f28d29b")
    for bad in ("", "../x", "01A21900-678D-76C5-BFE9-9B161F28D29B", "x" * 36, 5):
        with pytest.raises(InvalidArgument, match="run_id"):
            check_entity_id(bad, "run_id")


def test_a_lone_surrogate_is_not_text() -> None:
    """Half a UTF-16 pair has no UTF-8 form: refused by name, never a UnicodeEncodeError."""
    with pytest.raises(InvalidArgument, match="lone surrogate, U\\+D800") as caught:
        check_name("a\ud800", "tag")
    assert caught.value.field == "tag"
    with pytest.raises(InvalidArgument, match="lone surrogate, U\\+DFFF"):
        check_text("x\udfff", "description")
    assert check_name("emoji \U0001f600 fine") == "emoji \U0001f600 fine"  # a real pair


def test_paths_refuse_lone_surrogates() -> None:
    with pytest.raises(InvalidArgument, match=r"path: must be text .*U\+D800"):
        check_artifact_key("z\ud800", "path")
