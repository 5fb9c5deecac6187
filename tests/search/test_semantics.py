"""The edge cases the search semantics name, one test each, on SQLite and PostgreSQL;
and the bugs they found, each with the smallest case that showed it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

import cairn
from cairn.core.model import ExperimentInfo, MetricRecord
from cairn.core.settings import Settings
from cairn.service import TrackingService, open_service

from ._runs import Clock


@pytest.fixture
def experiment(service: TrackingService) -> ExperimentInfo:
    return service.entities.set_experiment(service.entities.set_project("p").id, "e")


def _run(
    service: TrackingService,
    experiment: ExperimentInfo,
    name: str,
    *,
    hyperparameters: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    attributes: dict[str, Any] | None = None,
    tags: Sequence[str] = (),
) -> str:
    run = service.entities.create_run(experiment.id, name, tags=list(tags))
    if hyperparameters:
        service.labels.log_hyperparameters(run.id, hyperparameters)
    if metrics:
        service.metrics.log_metric_records(
            [MetricRecord(run.id, k, 0, 1, v) for k, v in metrics.items()]
        )
    if attributes:
        service.labels.set_attributes(run.id, attributes)
    return run.id


def _names(service: TrackingService, query: str, **kwargs: Any) -> list[str]:
    return sorted(r.name for r in service.search.find_runs(query, **kwargs))


def test_integers_above_2_53_compare_exactly(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    _run(service, experiment, "odd", hyperparameters={"seed": 2**53 + 1})
    _run(service, experiment, "even", hyperparameters={"seed": 2**53})
    _run(service, experiment, "float", hyperparameters={"seed": 2.0**53})
    # Exact against ints; against a float hyperparameter the int literal is a float
    # (2**53 + 1 rounds to 2**53), as it is for every float.
    assert _names(service, "hyperparameters.seed = 9007199254740993") == ["float", "odd"]
    assert _names(service, "hyperparameters.seed = 9007199254740992") == ["even", "float"]
    assert _names(service, "hyperparameters.seed > 9007199254740992") == ["odd"]
    assert _names(service, "params.seed in (9007199254740993, 1)") == ["float", "odd"]
    assert _names(service, "hyperparameters.seed != 9007199254740993") == ["even"]
    # A float literal compares numerically: 2**53 + 1 is 2**53 as a float.
    assert _names(service, "hyperparameters.seed = 9007199254740992.0") == ["even", "float", "odd"]
    big = 2**63 - 1
    _run(service, experiment, "max", hyperparameters={"seed": big})
    assert _names(service, f"hyperparameters.seed = {big}") == ["max"]
    assert _names(service, f"hyperparameters.seed >= {big - 1}") == ["max"]


def test_a_nan_metric_matches_no_comparison_and_is_not_null(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    _run(service, experiment, "nan", metrics={"acc": math.nan})
    _run(service, experiment, "one", metrics={"acc": 1.0})
    _run(service, experiment, "none")
    assert _names(service, "metrics.acc != 2") == ["one"]
    assert _names(service, "metrics.acc >= -1e999") == ["one"]
    assert _names(service, "metrics.acc is null") == ["none"]
    assert _names(service, "metrics.acc is not null") == ["nan", "one"]
    assert _names(service, "not metrics.acc > 0") == ["nan", "none"]
    # Missing and NaN sort last in both directions.
    for order in (["metrics.acc"], ["-metrics.acc"]):
        found = [r.name for r in service.search.find_runs(order_by=order)]
        assert found[0] == "one"
    page = service.search.find_runs(order_by=["metrics.acc"], limit=1)
    rest = service.search.find_runs(order_by=["metrics.acc"], limit=5, cursor=page.next_cursor)
    assert sorted(r.name for r in rest) == ["nan", "none"]
    record = service.search.find_runs("name = 'nan'")[0]
    assert math.isnan(record.metrics["acc"])


def test_a_missing_key_matches_only_is_null_and_not(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    _run(service, experiment, "has", hyperparameters={"lr": 1}, attributes={"team": "x"})
    _run(service, experiment, "lacks")
    _run(service, experiment, "null", attributes={"team": None})
    assert _names(service, "hyperparameters.lr != 2") == ["has"]
    assert _names(service, "not hyperparameters.lr = 2") == ["has", "lacks", "null"]
    assert _names(service, "not hyperparameters.lr = 1") == ["lacks", "null"]
    assert _names(service, "hyperparameters.lr not in (1, 2)") == ["lacks", "null"]
    assert _names(service, "not (hyperparameters.lr >= 1 or hyperparameters.lr < 1)") == [
        "lacks",
        "null",
    ]
    assert _names(service, "hyperparameters.lr is null") == ["lacks", "null"]
    # An attribute of JSON null is null; a comparison never matches it.
    assert _names(service, "attributes.team is null") == ["lacks", "null"]
    assert _names(service, "attributes.team != 'y'") == ["has"]
    assert _names(service, "attributes.team not like '%'") == ["lacks", "null"]


def test_a_type_mismatch_does_not_match(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    _run(service, experiment, "float", hyperparameters={"lr": 0.01, "flag": 1})
    _run(service, experiment, "string", hyperparameters={"lr": "0.01", "flag": True})
    _run(service, experiment, "list", attributes={"lr": [0.01], "n": {"a": 1}})
    assert _names(service, "hyperparameters.lr = 0.01") == ["float"]
    assert _names(service, "hyperparameters.lr = '0.01'") == ["string"]
    assert _names(service, "hyperparameters.lr < 1") == ["float"]
    assert _names(service, "hyperparameters.lr < 'z'") == ["string"]
    assert _names(service, "hyperparameters.flag = 1") == ["float"]
    assert _names(service, "hyperparameters.flag = true") == ["string"]
    assert _names(service, "hyperparameters.flag != false") == ["string"]
    assert _names(service, "attributes.lr = 0.01 or attributes.lr like '%'") == []
    assert _names(service, "attributes.n is not null and attributes.lr is not null") == ["list"]


def test_like_is_case_sensitive_and_ilike_folds_ascii_only(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    for name in ("Bert-1", "bert-2", "É", "é", "\u212a", "k", "run_1", "runx1", "100%"):
        _run(service, experiment, name, hyperparameters={"model": name})
    assert _names(service, "name like 'bert%'") == ["bert-2"]
    assert _names(service, "name ilike 'BERT%'") == ["Bert-1", "bert-2"]
    assert _names(service, "name like 'é'") == ["é"]
    assert _names(service, "name ilike 'é'") == ["é"]  # no Unicode folding
    assert _names(service, "name ilike 'K'") == ["k"]  # not the Kelvin sign
    assert _names(service, "name like 'run_1'") == ["run_1", "runx1"]
    assert _names(service, r"name like 'run\_1'") == ["run_1"]
    assert _names(service, r"name like '%\%'") == ["100%"]
    assert _names(service, "hyperparameters.model ilike 'BERT-_'") == ["Bert-1", "bert-2"]
    assert _names(service, "hyperparameters.model not like '%e%'") == [
        "100%",
        "k",
        "run_1",
        "runx1",
        "É",
        "é",
        "\u212a",
    ]


def test_strings_compare_by_code_point(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    for name in ("B", "a", "é", "Z"):
        _run(service, experiment, name)
    assert [r.name for r in service.search.find_runs(order_by="name")] == ["B", "Z", "a", "é"]
    assert _names(service, "name < 'a'") == ["B", "Z"]
    assert _names(service, "name > 'z'") == ["é"]


def test_status_crashed_is_a_running_run_with_a_stale_heartbeat(
    service: TrackingService, experiment: ExperimentInfo, clock: Clock
) -> None:
    quiet = _run(service, experiment, "quiet")
    alive = _run(service, experiment, "alive")
    done = _run(service, experiment, "done")
    service.entities.end_run(done)
    clock.tick(int(service.settings.heartbeat_timeout * 1000) + 1)
    service.entities.heartbeat([alive])
    assert _names(service, "status = 'crashed'") == ["quiet"]
    assert _names(service, "status = 'running'") == ["alive"]
    assert _names(service, "status != 'crashed'") == ["alive", "done"]
    assert _names(service, "status in ('crashed', 'finished')") == ["done", "quiet"]
    assert service.search.find_runs("status = 'crashed'")[0].info.status == "crashed"
    service.entities.heartbeat([quiet])  # it was only cut off
    assert _names(service, "status = 'crashed'") == []


def test_duration_counts_to_the_end_or_to_now(
    service: TrackingService, experiment: ExperimentInfo, clock: Clock
) -> None:
    ended = _run(service, experiment, "ended")
    _run(service, experiment, "running")
    clock.tick(5000)
    service.entities.end_run(ended)
    clock.tick(5000)
    assert _names(service, "duration = 5") == ["ended"]
    assert _names(service, "duration = 10") == ["running"]
    assert _names(service, "duration > 5.5 and end_time is null") == ["running"]
    assert [r.name for r in service.search.find_runs(order_by="-duration")] == ["running", "ended"]


def test_deleted_runs_are_left_out_unless_asked_for(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    kept = _run(service, experiment, "kept")
    gone = _run(service, experiment, "gone")
    service.entities.delete_run(gone)
    assert _names(service, "") == ["kept"]
    assert service.search.count_runs("") == 1
    assert _names(service, "", include_deleted=True) == ["gone", "kept"]
    assert service.search.count_runs("name = 'gone'", include_deleted=True) == 1
    # A deleted experiment hides its runs.
    other = service.entities.set_experiment(experiment.project_id, "other")
    _run(service, other, "inside")
    service.entities.delete_experiment(other.id)
    assert _names(service, "") == ["kept"]
    assert "inside" in _names(service, "", include_deleted=True)
    assert kept


def test_a_limit_above_max_search_limit_is_an_error_naming_limit(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    maximum = service.settings.max_search_limit
    with pytest.raises(cairn.InvalidArgument) as caught:
        service.search.find_runs("", limit=maximum + 1)
    assert caught.value.field == "limit"
    assert caught.value.details.get("maximum") == maximum
    for bad in (0, -1, True, 1.5):
        with pytest.raises(cairn.InvalidArgument) as caught:
            service.search.find_runs("", limit=bad)  # type: ignore[arg-type]
        assert caught.value.field == "limit"
    assert len(service.search.find_runs("", limit=maximum)) == 0


def test_a_small_max_search_limit_is_kept(tmp_path: object, clock: Clock, store_url: str) -> None:
    settings = Settings(home=str(tmp_path), store_uri=store_url, max_search_limit=3)
    service = open_service(settings, clock=clock)
    try:
        with pytest.raises(cairn.InvalidArgument, match="limit"):
            service.search.find_runs("", limit=4)
        assert service.search.find_runs("", limit=3).items == []
    finally:
        service.close()


def test_a_cursor_of_another_query_is_an_error_naming_cursor(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    for i in range(3):
        _run(service, experiment, f"r{i}", metrics={"acc": i / 10})
    page = service.search.find_runs("metrics.acc >= 0", order_by=["-metrics.acc"], limit=1)
    assert page.next_cursor is not None
    others: list[dict[str, Any]] = [
        {"query": "metrics.acc > 0", "order_by": ["-metrics.acc"]},
        {"query": "metrics.acc >= 0", "order_by": ["metrics.acc"]},
        {"query": "metrics.acc >= 0", "order_by": ["-metrics.acc"], "include_deleted": True},
        {
            "query": "metrics.acc >= 0",
            "order_by": ["-metrics.acc"],
            "experiment_ids": [experiment.id],
        },
    ]
    for other in others:
        query = other.pop("query")
        with pytest.raises(cairn.InvalidArgument) as caught:
            service.search.find_runs(query, limit=1, cursor=page.next_cursor, **other)
        assert caught.value.field == "cursor"
    for damaged in ("", "x", page.next_cursor[:-3], page.next_cursor + "AAAA", "W10", "bnVsbA"):
        with pytest.raises(cairn.InvalidArgument) as caught:
            service.search.find_runs(
                "metrics.acc >= 0", order_by=["-metrics.acc"], limit=1, cursor=damaged
            )
        assert caught.value.field == "cursor"
    # The same query, order and scope go on.
    rest = service.search.find_runs(
        "metrics.acc >= 0", order_by=["-metrics.acc"], limit=5, cursor=page.next_cursor
    )
    assert [r.name for r in rest] == ["r1", "r0"]


@pytest.mark.parametrize("order", [["created_at"], ["-metrics.acc", "name"], []])
def test_pages_stay_stable_when_runs_are_added_between_reads(
    service: TrackingService, experiment: ExperimentInfo, clock: Clock, order: list[str]
) -> None:
    for i in range(6):
        clock.tick(10)
        _run(service, experiment, f"old{i}", metrics={"acc": i / 10})
    seen: list[str] = []
    page = service.search.find_runs("", order_by=order, limit=2)
    seen.extend(r.name for r in page)
    for i in range(3):  # runs that sort before the cursor, after it and at its value
        clock.tick(10)
        _run(service, experiment, f"new{i}", metrics={"acc": (i * 2.5) / 10})
    while page.next_cursor is not None:
        page = service.search.find_runs("", order_by=order, limit=2, cursor=page.next_cursor)
        seen.extend(r.name for r in page)
    old = [n for n in seen if n.startswith("old")]
    assert sorted(old) == [f"old{i}" for i in range(6)], "no old run is skipped"
    assert len(seen) == len(set(seen)), "no run comes twice"
    # After the first page come, in order, exactly the runs that sort after its last one
    # now, new ones included.
    final = [r.name for r in service.search.find_runs("", order_by=order, limit=100)]
    assert seen[2:] == final[final.index(seen[1]) + 1 :]


# -- known bugs -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "metrics.acc < 100000000000000000000000",
        "hyperparameters.n < 100000000000000000000000",
        "created_at < 100000000000000000000000",
        "duration < 100000000000000000000000",
        "attributes.n < 1" + "0" * 400,
    ],
)
def test_an_int_literal_beyond_64_bits_is_no_error(
    service: TrackingService, experiment: ExperimentInfo, query: str
) -> None:
    _run(
        service,
        experiment,
        "r",
        hyperparameters={"n": 1},
        metrics={"acc": 1.0},
        attributes={"n": 1},
    )
    assert _names(service, query) == ["r"]


def test_paging_past_an_infinite_metric(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    for name, value in (("top", math.inf), ("mid", 1.0), ("low", -math.inf)):
        _run(service, experiment, name, metrics={"acc": value})
    found: list[str] = []
    cursor = None
    while True:
        page = service.search.find_runs(order_by=["-metrics.acc"], limit=1, cursor=cursor)
        found.extend(r.name for r in page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert found == ["top", "mid", "low"]


@pytest.mark.postgres
def test_a_metric_compares_with_a_big_int_the_same_on_both(
    sqlite_url: str, pg_url: str, tmp_path: object, clock: Clock
) -> None:
    found: list[list[str]] = []
    for i, url in enumerate((sqlite_url, pg_url)):
        service = open_service(Settings(home=f"{tmp_path}/{i}", store_uri=url), clock=clock)
        try:
            p = service.entities.set_project("p")
            experiment = service.entities.set_experiment(p.id, "e")
            _run(service, experiment, "r", metrics={"acc": 2.0**53})
            found.append(_names(service, "metrics.acc = 9007199254740993"))
        finally:
            service.close()
    assert found[0] == found[1]


def test_an_attribute_string_with_nul_is_stored_and_not_searched(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    """PostgreSQL text cannot hold NUL: such a string is kept (as JSON) and read back, and
    a query cannot name it (a string with NUL in a query is a QueryError)."""
    run_id = _run(service, experiment, "r", attributes={"s": "a\x00b"})
    assert service.labels.get_attributes(run_id) == {"s": "a\x00b"}
    assert _names(service, "attributes.s is not null") == ["r"]
    with pytest.raises(cairn.QueryError):
        service.search.find_runs(r"attributes.s = 'a\0b'")


@pytest.mark.parametrize(
    "query",
    ["name = 'a\\0'", "name like '%\\0%'", "hyperparameters.x = 'a\\0'", "attributes.s != 'a\\0'"],
)
def test_a_string_with_nul_finds_nothing(
    service: TrackingService,
    experiment: ExperimentInfo,
    request: pytest.FixtureRequest,
    query: str,
) -> None:
    _run(service, experiment, "r", hyperparameters={"x": "a"}, attributes={"s": "a"})
    try:
        assert _names(service, query) == ([] if "!=" not in query else ["r"])
    except cairn.InvalidArgument as error:  # refusing it is fine too
        assert error.field == "query"


def test_a_lone_surrogate_in_a_query_is_a_query_error(
    service: TrackingService, experiment: ExperimentInfo
) -> None:
    with pytest.raises(cairn.InvalidArgument) as caught:
        service.search.find_runs("name = '\ud800'")
    assert caught.value.field == "query"
