"""The search API end to end (docs/search.md), on every backend: find with order and
pages, count, columns, to_pandas, experiments and projects, and the errors a caller gets
(QueryError with its position, a limit over the maximum, a cursor of another search)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

import cairn
from cairn.core.search import ExperimentRecord, ProjectRecord, RepositoryRecord, RunRecord

from .conftest import MakeClient, MakeSettings, expect_error


@dataclass(frozen=True)
class Store:
    """Project ``vision`` (tags prod) with experiment ``resnet`` (runs r0..r5) and ``vit``
    (runs v0, v1); project ``nlp`` with experiment ``bert`` (run b0, soft-deleted b1)."""

    names: dict[str, str]  # run name -> id


def _fill(client: cairn.Client) -> Store:
    ids: dict[str, str] = {}

    def run(name: str, hp: dict[str, object], metrics: dict[str, float], tags: list[str]) -> None:
        with client.start_run(name, hyperparameters=hp, tags=tags) as r:
            if metrics:
                r.log_metrics(metrics, step=0)
            r.log_attribute("team", "core" if name.startswith("r") else "other")
        ids[name] = r.id

    vision = client.set_project("vision", tags=["prod"])
    vision.log_attribute("tier", 1)
    client.set_experiment("resnet", tags=["cnn"])
    accs = [0.5, 0.92, 0.97, 0.8, 0.95]
    for i, acc in enumerate(accs):
        lr = [0.1, 0.001, 0.05, 0.2, 0.005][i]
        model = ["gbm", "rf", "gbm", "rf", "mlp"][i]
        run(f"r{i}", {"lr": lr, "model": model, "seed": 2**53 + i}, {"acc": acc}, [])
    run("r5", {"lr": 0.3, "model": "gbm"}, {"acc": math.nan}, ["best"])  # NaN: no match
    client.set_experiment("vit")
    run("v0", {"lr": 0.01, "model": "vit"}, {"acc": 0.99, "loss": 0.1}, ["best"])
    run("v1", {"lr": "auto"}, {}, [])  # no acc at all; lr a string
    client.set_project("nlp")
    client.set_experiment("bert")
    run("b0", {"lr": 0.02}, {"acc": 0.91}, [])
    run("b1", {"lr": 0.02}, {"acc": 0.99}, [])
    client.delete_run(ids["b1"])
    return Store(ids)


@pytest.fixture
def store(client: cairn.Client) -> Store:
    return _fill(client)


def _names(
    records: Iterable[RunRecord | ExperimentRecord | ProjectRecord | RepositoryRecord],
) -> list[str]:
    return [r.name for r in records]


def test_find_orders_filters_and_pages(client: cairn.Client, store: Store) -> None:
    query = "metrics.acc > 0.9 and (hyperparameters.lr < 0.01 or tags contains 'best')"
    page = client.find_runs(query, order_by=["-metrics.acc", "created_at"], limit=100)
    assert _names(page) == ["v0", "r4", "r1"]  # r5 is tagged best but its acc is NaN
    assert page.next_cursor is None

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = client.find_runs("metrics.acc > 0", order_by="-metrics.acc", limit=2, cursor=cursor)
        pages += 1
        assert len(page) <= 2
        seen += _names(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["v0", "r2", "r4", "r1", "b0", "r3", "r0"]  # b1 is deleted
    assert pages == 4
    assert _names(client.iter_runs("metrics.acc > 0", order_by="-metrics.acc")) == seen

    # Missing values (no acc, a NaN acc) last in both directions; ties by id.
    down = _names(client.find_runs("", order_by="-metrics.acc", limit=50))
    up = _names(client.find_runs("", order_by="metrics.acc", limit=50))
    assert down[:7] == seen and set(down[7:]) == {"r5", "v1"}
    assert up[:7] == seen[::-1] and set(up[7:]) == {"r5", "v1"}
    # Without an order, newest first.
    assert _names(client.find_runs(limit=3)) == ["b0", "v1", "v0"]


def test_semantics_through_the_api(client: cairn.Client, store: Store) -> None:
    def names(query: str) -> set[str]:
        return set(_names(client.find_runs(query, limit=100)))

    assert names("hyperparameters.model in ('gbm', 'rf') and not tags contains 'best'") == {
        "r0",
        "r1",
        "r2",
        "r3",
    }
    assert names("hyperparameters.lr = 'auto'") == {"v1"}  # a string matches strings only
    assert names("params.lr > 0.2") == {"r5"}
    assert names("not metrics.acc > 0.9") == {"r0", "r3", "r5", "v1"}  # missing and NaN too
    assert names("metrics.acc is null") == {"v1"}  # NaN is not missing
    assert names(f"hyperparameters.seed = {2**53 + 1}") == {"r1"}  # exact above 2^53
    assert names("attributes.team = 'core' and experiment.name = 'vit'") == set()
    assert names("project.name = 'nlp'") == {"b0"}
    assert names("name ilike 'R_'") == {f"r{i}" for i in range(6)}
    assert names("name like 'R_'") == set()
    assert names("status = 'finished' and duration >= 0 and created_at > 2020-01-01") == {
        *(f"r{i}" for i in range(6)),
        "v0",
        "v1",
        "b0",
    }
    with_deleted = client.find_runs("project.name = 'nlp'", include_deleted=True)
    assert set(_names(with_deleted)) == {"b0", "b1"}


def test_count_in_every_scope(client: cairn.Client, store: Store) -> None:
    assert client.count_runs() == 9
    assert client.count_runs(include_deleted=True) == 10
    assert client.count_runs("metrics.acc > 0.9") == 5
    vision = client.get_project("vision")
    assert vision.count_runs("metrics.acc > 0.9") == 4
    resnet = vision.get_experiment("resnet")
    assert resnet.count_runs("metrics.acc > 0.9") == 3
    assert _names(resnet.find_runs("metrics.acc > 0.9", order_by="name")) == ["r1", "r2", "r4"]
    assert _names(vision.find_runs("tags contains 'best'", order_by="name")) == ["r5", "v0"]
    assert sum(1 for _ in resnet.iter_runs(order_by="name")) == 6


def test_runs_come_whole_or_with_the_columns_asked(client: cairn.Client, store: Store) -> None:
    [v0] = client.find_runs("name = 'v0'")
    assert v0.id == store.names["v0"]
    assert v0.hyperparameters == {"lr": 0.01, "model": "vit"}
    assert v0.metrics == {"acc": 0.99, "loss": 0.1}
    assert v0.tags == ["best"]
    assert v0.attributes == {"team": "other"}
    assert v0.info.status is cairn.RunStatus.FINISHED

    [r1] = client.find_runs("name = 'r1'")
    assert type(r1.hyperparameters["seed"]) is int and r1.hyperparameters["seed"] == 2**53 + 1
    [r5] = client.find_runs("name = 'r5'")
    assert math.isnan(r5.metrics["acc"])

    [only] = client.find_runs("name = 'v0'", columns=["metrics.acc", "params.model"])
    assert only.metrics == {"acc": 0.99}
    assert only.hyperparameters == {"model": "vit"}
    assert only.tags == [] and only.attributes == {}
    [families] = client.find_runs("name = 'v0'", columns=["metrics", "tags"])
    assert families.metrics == {"acc": 0.99, "loss": 0.1} and families.tags == ["best"]
    assert families.hyperparameters == {}
    [bare] = client.find_runs("name = 'v0'", columns=[])
    assert (bare.metrics, bare.hyperparameters, bare.tags, bare.attributes) == ({}, {}, [], {})
    assert bare.info.name == "v0"
    error = expect_error(cairn.InvalidArgument, "columns", client.find_runs, "", columns=["nope.x"])
    assert error.field == "columns"


def test_a_page_as_a_data_frame(client: cairn.Client, store: Store) -> None:
    page = client.find_runs("experiment.name = 'vit'", order_by="name")
    frame = page.to_pandas()
    assert list(frame["name"]) == ["v0", "v1"]
    assert list(frame.columns[:9]) == [
        "id",
        "name",
        "status",
        "owner",
        "experiment_id",
        "project_id",
        "parent_id",
        "start_time",
        "end_time",
    ]
    assert "hyperparameters.lr" in frame.columns and "metrics.loss" in frame.columns
    assert list(frame["hyperparameters.lr"]) == [0.01, "auto"]
    assert frame["metrics.acc"][0] == 0.99 and math.isnan(frame["metrics.acc"][1])
    assert list(frame["tags"]) == [["best"], []]
    assert str(frame["start_time"].dt.tz) == "UTC"
    assert frame.columns[-1] == "tags"


def test_find_experiments_and_projects(client: cairn.Client, store: Store) -> None:
    projects = client.find_projects("tags contains 'prod'")
    assert _names(projects) == ["vision"]
    assert projects[0].tags == ["prod"] and projects[0].attributes == {"tier": 1}
    assert _names(
        client.find_projects("attributes.tier >= 1 or name = 'nlp'", order_by="name")
    ) == [
        "nlp",
        "vision",
    ]
    assert _names(client.find_projects(order_by="-name")) == ["vision", "nlp"]

    experiments = client.find_experiments("project.name = 'vision'", order_by="name")
    assert _names(experiments) == ["resnet", "vit"]
    assert experiments[0].tags == ["cnn"]
    assert experiments[0].info.project_id == client.get_project("vision").id
    vision = client.get_project("vision")
    assert _names(vision.find_experiments("name like 'v%'")) == ["vit"]
    first = client.find_experiments(order_by="name", limit=2)
    assert _names(first) == ["bert", "resnet"] and first.next_cursor is not None
    rest = client.find_experiments(order_by="name", limit=2, cursor=first.next_cursor)
    assert _names(rest) == ["vit"] and rest.next_cursor is None
    expect_error(cairn.QueryError, "a run field", client.find_projects, "status = 'finished'")

    client.set_repository("ingredients", tags=["data"], project=vision)
    client.set_repository("other", project=client.get_project("nlp"))
    found = client.find_repositories("tags contains 'data' and project.name = 'vision'")
    assert _names(found) == ["ingredients"] and found[0].tags == ["data"]
    assert _names(vision.find_repositories()) == ["ingredients"]


def test_query_errors_point_at_the_problem(client: cairn.Client, store: Store) -> None:
    error = expect_error(cairn.QueryError, "syntax", client.find_runs, "metrics.acc >> 0.5")
    assert isinstance(error, cairn.InvalidArgument) and error.field == "query"
    assert error.details["position"] == 13
    assert "a number" in error.details["expected"]
    lines = str(error).splitlines()
    assert lines[-2] == "  metrics.acc >> 0.5"
    assert lines[-1] == "  " + " " * 13 + "^"

    unknown = expect_error(cairn.QueryError, "unknown", client.count_runs, "metric.acc > 1")
    assert unknown.details["position"] == 0
    assert "metrics.KEY" in unknown.details["expected"] and "metrics.KEY" in str(unknown)
    value = expect_error(cairn.QueryError, "value", client.find_runs, "status = 'done'")
    assert value.details["position"] == 9 and "finished" in value.details["expected"]
    order = expect_error(cairn.QueryError, "order", client.find_runs, "", order_by=["-tags"])
    assert order.field == "query"
    deep = "name = 'a' or (" * 70 + "name = 'b'" + ")" * 70
    expect_error(cairn.QueryError, "depth", client.find_runs, deep)
    assert client.count_runs("(" * 100 + "name = 'r0'" + ")" * 100) == 1  # no nesting there


def test_a_query_too_long_is_a_query_error(client: cairn.Client) -> None:
    error = expect_error(
        cairn.QueryError, "length", client.count_runs, "name = '" + "x" * 17_000 + "'"
    )
    assert error.details["position"] == 16_384


def test_limits_and_cursors_are_checked(client: cairn.Client, store: Store) -> None:
    error = expect_error(cairn.InvalidArgument, "limit", client.find_runs, "", limit=10_001)
    assert error.field == "limit" and error.details["maximum"] == 10_000
    assert expect_error(cairn.InvalidArgument, "0", client.find_runs, "", limit=0).field == "limit"
    page = client.find_runs("metrics.acc > 0", order_by="-metrics.acc", limit=2)
    assert page.next_cursor is not None
    other = expect_error(
        cairn.InvalidArgument,
        "another order",
        client.find_runs,
        "metrics.acc > 0",
        order_by="metrics.acc",
        cursor=page.next_cursor,
    )
    assert other.field == "cursor"
    bad = expect_error(cairn.InvalidArgument, "junk", client.find_runs, "", cursor="junk!")
    assert bad.field == "cursor"


def test_pages_are_stable_under_inserts(client: cairn.Client, store: Store) -> None:
    first = client.find_runs("", order_by="name", limit=4)
    assert _names(first) == ["b0", "r0", "r1", "r2"]
    client.set_project("vision")
    client.set_experiment("resnet")
    with client.start_run("a-new"):  # sorts before the cursor: not seen
        pass
    with client.start_run("r2b"):  # sorts after it: seen once
        pass
    rest = list(first.items)
    cursor = first.next_cursor
    while cursor is not None:
        page = client.find_runs("", order_by="name", limit=4, cursor=cursor)
        rest += page.items
        cursor = page.next_cursor
    assert _names(rest) == ["b0", "r0", "r1", "r2", "r2b", "r3", "r4", "r5", "v0", "v1"]


@pytest.mark.embedded_only
def test_the_maximum_is_a_setting(open_client: MakeClient, make_settings: MakeSettings) -> None:
    client = open_client(settings=make_settings(max_search_limit=3))
    _fill(client)
    error = expect_error(cairn.InvalidArgument, "limit", client.find_runs, "", limit=4)
    assert error.details["maximum"] == 3
    assert len(client.find_runs("", limit=3)) == 3
    assert len(list(client.iter_runs("", page_size=3))) == 9


def test_a_like_pattern_keeps_its_escapes(client: cairn.Client) -> None:
    """In a like pattern, a backslash makes the next %, _ or backslash literal."""
    client.set_experiment("escapes")
    for name in ("run_1", "runx2", "100%", "1000", "back\\slash"):
        client.start_run(name).end()

    def names(query: str) -> set[str]:
        return set(_names(client.find_runs(query, limit=100)))

    assert names(r"name like 'run\_%'") == {"run_1"}
    assert names("name like 'run_%'") == {"run_1", "runx2"}
    assert names(r"name like '100\%'") == {"100%"}
    assert names(r"name like 'back\\%'") == {"back\\slash"}
    assert names(r"name = 'back\\slash'") == {"back\\slash"}
