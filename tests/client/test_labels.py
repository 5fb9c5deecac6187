"""Tags and attributes, on projects, experiments and runs."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.client import Experiment, Project, Run
from cairn.core.settings import Settings

from .conftest import MakeClient, MakeSettings, expect_error

Entity = Project | Experiment | Run

ENTITIES: dict[str, Callable[[cairn.Client], Entity]] = {
    "project": lambda c: c.set_project("p"),
    "experiment": lambda c: c.set_experiment("e"),
    "run": lambda c: c.set_experiment_run("r"),
}

JSON_VALUES: dict[str, Any] = {
    "null": None,
    "true": True,
    "false": False,
    "int": 42,
    "negative": -1,
    "big_int": 2**80,
    "float": 0.1,
    "exp": 1e-300,
    "str": "text",
    "unicode": "🚀 实验 مرحبا",
    "empty_str": "",
    "empty_list": [],
    "empty_dict": {},
    "list": [1, "two", 3.0, None, True, [4], {"five": 5}],
    "nested": {"a": {"b": {"c": [1, {"d": None}]}}, "e": "f"},
    "quotes": {'k"ey': "va'lue\\", "nl": "line\nbreak", "nul": "a\x00b"},
}


@pytest.fixture(params=list(ENTITIES))
def entity(request: pytest.FixtureRequest, client: cairn.Client) -> Entity:
    return ENTITIES[request.param](client)


# -- tags -------------------------------------------------------------------------------


def test_tags(entity: Entity) -> None:
    assert entity.get_tags() == []
    entity.log_tag("b")
    entity.log_tags(["c", "a", "b"])
    assert entity.get_tags() == ["a", "b", "c"]
    entity.remove_tag("b")
    assert entity.get_tags() == ["a", "c"]
    entity.remove_tag("never-there")
    entity.log_tags([])
    assert entity.get_tags() == ["a", "c"]


def test_tags_need_a_list_not_one_string(entity: Entity) -> None:
    with pytest.raises(cairn.InvalidArgument, match="tag") as caught:
        entity.log_tags("abc")
    assert "list" in str(caught.value)
    assert entity.get_tags() == []


def test_entity_tags_at_creation(client: cairn.Client) -> None:
    project = client.set_project("p", tags=["x", "y", "x"])
    experiment = client.set_experiment("e", tags=["z"])
    run = client.start_run(tags=["r1"])
    named = client.set_experiment_run("named", tags=["n1"])
    assert project.get_tags() == ["x", "y"]
    assert experiment.get_tags() == ["z"]
    assert run.get_tags() == ["r1"]
    assert client.set_experiment_run("named", tags=["n2"]).get_tags() == ["n1", "n2"]
    assert named.get_tags() == ["n1", "n2"]
    with pytest.raises(cairn.InvalidArgument, match="tags"):
        client.set_project("q", tags="one-string")
    assert [p.name for p in client.list_projects()] == ["p"]


def test_tags_are_per_entity(client: cairn.Client) -> None:
    project = client.set_project("p")
    experiment = client.set_experiment("e")
    project.log_tag("only-project")
    assert experiment.get_tags() == []


# -- attributes -------------------------------------------------------------------------


def test_attributes_round_trip(open_client: MakeClient) -> None:
    client = open_client()
    entities = [make(client) for make in ENTITIES.values()]
    for entity in entities:
        for key, value in JSON_VALUES.items():
            entity.log_attribute(key, value)
        assert entity.get_attributes() == JSON_VALUES
    client.close()

    again = open_client()
    project, experiment, run = entities
    for found in (
        again.get_project(id=project.id),
        again.get_experiment(experiment.id),
        again.get_run(run.id),
    ):
        got = found.get_attributes()
        assert got == JSON_VALUES
        assert type(got["int"]) is int
        assert type(got["float"]) is float
        assert type(got["true"]) is bool
        assert found.get_attribute("nested") == JSON_VALUES["nested"]


def test_log_attributes_replaces_values(entity: Entity) -> None:
    entity.log_attributes({"a": 1, "b": [1]})
    entity.log_attributes({"b": {"now": "a dict"}, "c": None})
    assert entity.get_attributes() == {"a": 1, "b": {"now": "a dict"}, "c": None}
    entity.remove_attribute("a")
    assert entity.get_attributes() == {"b": {"now": "a dict"}, "c": None}
    with pytest.raises(cairn.NotFound, match="'a'"):
        entity.get_attribute("a")


def test_non_finite_floats_survive(entity: Entity) -> None:
    entity.log_attribute("x", {"nan": math.nan, "inf": math.inf, "-inf": -math.inf})
    got = entity.get_attribute("x")
    assert math.isnan(got["nan"])
    assert got["inf"] == math.inf
    assert got["-inf"] == -math.inf


class Unserializable:
    pass


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


NON_JSON = [Unserializable(), {1, 2}, b"bytes", {"deep": [Unserializable()]}, _circular()]
NON_STRING_KEYS = [{1: "int key"}, {None: "none key"}, {1.5: "float key"}, {(1, 2): "tuple"}]


def test_non_json_values_are_refused(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for value in NON_JSON:
        error = expect_error(
            cairn.InvalidArgument, value, run.log_attributes, {"good": 1, "bad": value}
        )
        assert error.field == "attribute 'bad'"
        assert "JSON" in str(error)
    assert run.get_attributes() == {}


def test_non_string_object_keys_are_refused(client: cairn.Client) -> None:
    """JSON object keys are strings: {1: "x"} would come back as {"1": "x"}, not equal."""
    run = client.set_experiment_run("r")
    for value in NON_STRING_KEYS:
        error = expect_error(cairn.InvalidArgument, value, run.log_attribute, "bad", value)
        assert error.field == "attribute 'bad'"
    assert run.get_attributes() == {}


def test_attribute_size_limit_default(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    limit = 1024 * 1024
    fits = "x" * (limit - 2)  # two bytes of quotes make it exactly the limit
    run.log_attribute("fits", fits)
    assert run.get_attribute("fits") == fits
    with pytest.raises(cairn.InvalidArgument, match="attribute 'big'") as caught:
        run.log_attribute("big", "x" * (limit - 1))
    assert str(limit) in str(caught.value)
    assert "limit" in str(caught.value)
    assert set(run.get_attributes()) == {"fits"}


def test_attribute_size_is_counted_in_utf8_bytes(make_settings: MakeSettings) -> None:
    with cairn.Client(settings=make_settings(max_attribute_bytes=10)) as client:
        run = client.set_experiment_run("r")
        run.log_attribute("ok", "éééé")  # 2 quotes + 4 * 2 bytes = 10
        with pytest.raises(cairn.InvalidArgument):
            run.log_attribute("too-big", "ééééé")  # 12 bytes, though only 7 characters
        assert run.get_attributes() == {"ok": "éééé"}


def test_attribute_size_limit_from_settings(make_settings: MakeSettings) -> None:
    with cairn.Client(settings=make_settings(max_attribute_bytes=100)) as client:
        run = client.set_experiment_run("r")
        run.log_attribute("fits", "y" * 98)
        with pytest.raises(cairn.InvalidArgument, match="100 bytes"):
            run.log_attribute("big", "y" * 99)
        with pytest.raises(cairn.InvalidArgument, match="100 bytes"):
            run.log_attribute("list", list(range(40)))
        assert set(run.get_attributes()) == {"fits"}


def test_attribute_size_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, home: Path, store_url: str
) -> None:
    monkeypatch.setenv("CAIRN_MAX_ATTRIBUTE_BYTES", "64")
    with cairn.Client(home=home, store=store_url) as client:
        assert client.settings.max_attribute_bytes == 64
        project = client.set_project("p")
        project.log_attribute("fits", "z" * 62)
        with pytest.raises(cairn.InvalidArgument, match="64 bytes"):
            project.log_attribute("big", "z" * 63)
    monkeypatch.delenv("CAIRN_MAX_ATTRIBUTE_BYTES")
    environ = {"CAIRN_MAX_ATTRIBUTE_BYTES": "16"}
    with (
        cairn.Client(home=home, store=store_url, environ=environ) as client,
        pytest.raises(cairn.InvalidArgument, match="16 bytes"),
    ):
        client.set_project("p").log_attribute("big", "z" * 20)


def test_explicit_home_and_store_are_kept_with_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, home: Path, store_url: str
) -> None:
    """``settings=`` changes a limit; it must not silently drop ``home=`` and ``store=``."""
    monkeypatch.chdir(tmp_path)  # where a default ./.cairn would appear
    settings = Settings(max_attribute_bytes=32)
    try:
        client = cairn.Client(home=home, store=store_url, settings=settings)
    except cairn.InvalidArgument:
        return  # refusing the ambiguous combination is fine too
    with client:
        assert client.settings.max_attribute_bytes == 32
        assert client.settings.home == str(home)
        assert client.settings.store_uri == store_url
        client.set_project("p")
    assert not (tmp_path / ".cairn").exists()
    with cairn.Client(home=home, store=store_url) as again:
        assert [p.name for p in again.list_projects()] == ["p"]


def test_invalid_setting_in_the_environment_names_it(home: Path, store_url: str) -> None:
    environ = {"CAIRN_MAX_ATTRIBUTE_BYTES": "-1"}
    with pytest.raises(cairn.InvalidArgument, match="CAIRN_MAX_ATTRIBUTE_BYTES"):
        cairn.Client(home=home, store=store_url, environ=environ)
