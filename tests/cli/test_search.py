"""``cairn runs find|count``, ``runs ls --where/--columns`` and ``projects|experiments ls
--where``: tables, pages, JSON and CSV, and query errors as usage errors (exit 2, the
caret, no traceback); on an embedded store and through a real server."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import Result

import cairn
from cairn.core.ids import short_id
from cairn.core.settings import Settings
from tests.cli.conftest import Invoke, json_of
from tests.servers import serve_in_thread


@dataclass(frozen=True)
class Store:
    home: Path
    ids: dict[str, str]  # run name -> id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """churn/baseline: a0..a4 (acc 0.5..0.9, lr, model), a5 (no acc, running);
    churn/tuned: t0 (acc 0.99, tagged best); vision/cnn: c0 (acc 0.95)."""
    home = tmp_path / "store"
    clock = itertools.count(1_700_000_000_000, 1000).__next__  # a second a call
    ids: dict[str, str] = {}
    with cairn.Client(home=home, clock=clock) as client:
        client.set_project("churn", tags=["prod"])
        client.set_experiment("baseline")
        for i in range(5):
            hp = {"lr": [0.1, 0.01, 0.001, 0.05, 0.2][i], "model": ["gbm", "rf"][i % 2]}
            with client.start_run(f"a{i}", hyperparameters=hp) as run:
                run.log_metrics({"acc": 0.5 + i / 10}, step=0)
            ids[run.name] = run.id
        running = client.start_run("a5", hyperparameters={"lr": 0.3})
        ids["a5"] = running.id
        client.set_experiment("tuned")
        with client.start_run("t0", hyperparameters={"lr": 0.02}, tags=["best"]) as run:
            run.log_metrics({"acc": 0.99, "loss": 0.1}, step=0)
            run.log_attribute("team name", "core")
        ids["t0"] = run.id
        client.set_project("vision")
        client.set_experiment("cnn")
        with client.start_run("c0") as run:
            run.log_metric("acc", 0.95)
        ids["c0"] = run.id
        running.end()
    yield Store(home, ids)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def test_find_prints_a_table_with_the_fields_asked_about(invoke: Invoke, store: Store) -> None:
    out = ok(
        invoke(
            "runs",
            "find",
            "metrics.acc > 0.75 and hyperparameters.lr < 0.1",
            "--order",
            "-metrics.acc",
            "--home",
            store.home,
        )
    )
    rows = table(out)
    assert rows[0] == ["ID", "NAME", "STATUS", "DURATION", "metrics.acc", "hyperparameters.lr"]
    # The duration (two words, "2.0 s") depends on the test clock: left out.
    assert [row[:3] + row[5:] for row in rows[1:]] == [
        [short_id(store.ids["t0"]), "t0", "finished", "0.99", "0.02"],
        [short_id(store.ids["a3"]), "a3", "finished", "0.8", "0.05"],
    ]
    assert all(row[4] == "s" for row in rows[1:])
    assert "next page" not in out


def test_find_pages_with_the_cursor(invoke: Invoke, store: Store) -> None:
    args = ("runs", "find", "metrics.acc > 0", "--order", "metrics.acc", "--home", store.home)
    seen: list[str] = []
    cursor: list[str] = []
    for _ in range(5):
        out = ok(invoke(*args, "--limit", "3", *cursor))
        lines = out.splitlines()
        if lines[-1].startswith("next page: --cursor "):
            cursor = ["--cursor", lines[-1].removeprefix("next page: --cursor ")]
            lines = lines[:-1]
        else:
            cursor = []
        seen += [row[1] for row in table("\n".join(lines[1:]))]
        if not cursor:
            break
    assert seen == ["a0", "a1", "a2", "a3", "a4", "c0", "t0"]
    # Without an order: newest first; empty QUERY: every run.
    newest = table(ok(invoke("runs", "find", "--limit", "2", "--home", store.home)))
    assert [row[1] for row in newest[1:3]] == ["c0", "t0"]


def test_find_in_an_experiment_or_a_project(invoke: Invoke, store: Store) -> None:
    def names(*scope: str) -> list[str]:
        found = json_of(invoke("runs", "find", "", *scope, "--home", store.home, "--json"))
        return sorted(r["name"] for r in found["runs"])

    assert names("--experiment", "churn/tuned") == ["t0"]
    assert names("--project", "churn") == ["a0", "a1", "a2", "a3", "a4", "a5", "t0"]
    assert names("--project", "vision") == ["c0"]
    both = invoke(
        "runs",
        "find",
        "",
        "--project",
        "churn",
        "--experiment",
        "churn/tuned",
        "--home",
        store.home,
    )
    assert both.exit_code == 2 and "not both" in both.stderr
    missing = invoke("runs", "find", "", "--experiment", "churn/nope", "--home", store.home)
    assert missing.exit_code == 1 and "nope" in missing.stderr


def test_find_as_json_has_every_value(invoke: Invoke, store: Store) -> None:
    page = json_of(
        invoke(
            "runs",
            "find",
            "tags contains 'best'",
            "--json",
            "--home",
            store.home,
        )
    )
    assert page["next_cursor"] is None
    [run] = page["runs"]
    assert run["id"] == store.ids["t0"] and run["status"] == "finished"
    assert run["hyperparameters"] == {"lr": 0.02}
    assert run["metrics"] == {"acc": 0.99, "loss": 0.1}
    assert run["tags"] == ["best"] and run["attributes"] == {"team name": "core"}
    limited = json_of(
        invoke(
            "runs",
            "find",
            "",
            "--limit",
            "1",
            "--columns",
            "metrics.acc",
            "--json",
            "--home",
            store.home,
        )
    )
    assert (
        limited["runs"][0]["metrics"] == {"acc": 0.95}
        and limited["runs"][0]["hyperparameters"] == {}
    )
    assert limited["next_cursor"]
    after = json_of(
        invoke(
            "runs",
            "find",
            "",
            "--limit",
            "1",
            "--columns",
            "metrics.acc",
            "--cursor",
            limited["next_cursor"],
            "--json",
            "--home",
            store.home,
        )
    )
    assert after["runs"][0]["name"] == "t0"


def test_find_as_csv(invoke: Invoke, store: Store) -> None:
    result = invoke(
        "runs",
        "find",
        "experiment.name = 'baseline'",
        "--order",
        "name",
        "--limit",
        "4",
        "--columns",
        "hyperparameters.model,metrics,tags,experiment.name,owner",
        "--csv",
        "--home",
        store.home,
    )
    rows = list(csv.reader(io.StringIO(ok(result))))
    assert rows[0] == [
        "id",
        "name",
        "status",
        "duration",
        "hyperparameters.model",
        "metrics.acc",
        "tags",
        "experiment.name",
        "owner",
    ]
    assert rows[1][:3] + rows[1][4:7] == [store.ids["a0"], "a0", "finished", "gbm", "0.5", ""]
    assert float(rows[1][3]) > 0  # seconds
    assert rows[1][7] == "baseline"
    assert [r[1] for r in rows[1:]] == ["a0", "a1", "a2", "a3"]
    assert result.stderr.startswith("next page: --cursor ")
    both = invoke("runs", "find", "", "--csv", "--json", "--home", store.home)
    assert both.exit_code == 2


def test_columns_of_plain_fields_and_whole_families(invoke: Invoke, store: Store) -> None:
    out = ok(
        invoke(
            "runs",
            "find",
            "name = 't0'",
            "--columns",
            "metrics",
            "--columns",
            "attributes.team name,experiment.name,project.name,tags",
            "--home",
            store.home,
        )
    )
    head, row = out.splitlines()
    assert head.split() == [
        "ID",
        "NAME",
        "STATUS",
        "DURATION",
        "metrics.acc",
        "metrics.loss",
        "attributes.team",
        "name",
        "EXPERIMENT.NAME",
        "PROJECT.NAME",
        "tags",
    ]
    assert row.split()[-6:] == ["0.99", "0.1", "core", "tuned", "churn", "best"]
    bad = invoke("runs", "find", "", "--columns", "metrics.acc,colour", "--home", store.home)
    assert bad.exit_code == 2 and "unknown column 'colour'" in bad.stderr


def test_a_bad_query_is_a_usage_error_with_a_caret(invoke: Invoke, store: Store) -> None:
    result = invoke("runs", "find", "metrics.acc >> 0.5", "--home", store.home)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: query: expected one of")
    assert lines[0].endswith("at position 13:")
    assert lines[1:] == ["  metrics.acc >> 0.5", "  " + " " * 13 + "^"]
    assert "Traceback" not in result.stderr
    for args in (
        ("runs", "find", "", "--order", "-tags"),
        ("runs", "find", "status = 'done'"),
        ("runs", "count", "metric.acc > 1"),
        ("runs", "ls", "churn/baseline", "--where", "name =="),
        ("projects", "ls", "--where", "status = 'finished'"),  # not a project field
        ("experiments", "ls", "churn", "--where", "tags contains"),
        ("runs", "find", "", "--limit", "20000"),  # over max_search_limit
    ):
        bad = invoke(*args, "--home", store.home)
        assert bad.exit_code == 2, (args, bad.stdout, bad.stderr)
        assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    limit = invoke("runs", "find", "", "--limit", "20000", "--home", store.home)
    assert "limit: at most 10000" in limit.stderr


def test_count(invoke: Invoke, store: Store) -> None:
    assert ok(invoke("runs", "count", "--home", store.home)) == "8\n"
    assert ok(invoke("runs", "count", "metrics.acc > 0.85", "--home", store.home)) == "3\n"
    scoped = ("runs", "count", "metrics.acc > 0.85", "--experiment", "churn/baseline")
    assert json_of(invoke(*scoped, "--json", "--home", store.home)) == {"count": 1}
    assert ok(invoke("runs", "count", "", "--project", "vision", "--home", store.home)) == "1\n"


def test_runs_ls_where_and_columns(invoke: Invoke, store: Store) -> None:
    out = ok(
        invoke(
            "runs",
            "ls",
            "churn/baseline",
            "--where",
            "hyperparameters.model = 'rf' or metrics.acc is null",
            "--columns",
            "metrics.acc",
            "--home",
            store.home,
        )
    )
    rows = table(out)
    assert rows[0][-2:] == ["metrics.acc", "hyperparameters.model"]
    assert [row[0] for row in rows[1:]] == ["a1", "a3", "a5"]  # oldest first
    assert rows[1][-2:] == ["0.6", "rf"]
    assert rows[3][-1] == rows[1][-3]  # a5 has no acc nor model: its row ends at OWNER
    listed = json_of(
        invoke(
            "runs",
            "ls",
            "churn/baseline",
            "--where",
            "metrics.acc > 0.75",
            "--columns",
            "hyperparameters,experiment.name",
            "--json",
            "--home",
            store.home,
        )
    )
    assert [r["name"] for r in listed] == ["a3", "a4"]
    assert listed[0]["hyperparameters"] == {"lr": 0.05, "model": "rf"}
    assert listed[0]["experiment.name"] == "baseline"
    assert listed[0]["metrics"] == {"acc": 0.8}  # the query names it
    none = ok(invoke("runs", "ls", "churn/baseline", "--where", "name = 'x'", "--home", store.home))
    assert none == "no runs in 'churn/baseline' match\n"
    # Without --where/--columns the listing is as it was: no value columns.
    plain = table(ok(invoke("runs", "ls", "churn/baseline", "--home", store.home)))
    assert plain[0] == ["NAME", "ID", "STATUS", "STARTED", "DURATION", "OWNER"]
    assert len(plain) == 7


def test_projects_and_experiments_ls_where(invoke: Invoke, store: Store) -> None:
    projects = json_of(
        invoke("projects", "ls", "--where", "tags contains 'prod'", "--json", "--home", store.home)
    )
    assert [p["name"] for p in projects] == ["churn"]
    out = ok(
        invoke("experiments", "ls", "churn", "--where", "name like 't%'", "--home", store.home)
    )
    assert [row[0] for row in table(out)[1:]] == ["tuned"]
    empty = ok(invoke("projects", "ls", "--where", "name = 'nope'", "--home", store.home))
    assert empty == "no projects\n"


def test_through_a_server(invoke: Invoke, store: Store) -> None:
    with serve_in_thread(Settings(home=str(store.home))) as url:
        page = json_of(
            invoke(
                "runs",
                "find",
                "metrics.acc > 0.9",
                "--order",
                "-metrics.acc",
                "--json",
                "--url",
                url,
            )
        )
        assert [r["name"] for r in page["runs"]] == ["t0", "c0"]
        assert page["runs"][0]["attributes"] == {"team name": "core"}
        assert ok(invoke("runs", "count", "metrics.acc > 0.9", "--url", url)) == "2\n"
        bad = invoke("runs", "find", "metrics.acc >> 1", "--url", url)
        assert bad.exit_code == 2 and bad.stderr.splitlines()[-1] == "  " + " " * 13 + "^"
        lines = ok(
            invoke("runs", "ls", "churn/baseline", "--where", "metrics.acc > 0.8", "--url", url)
        )
        assert [row[0] for row in table(lines)[1:]] == ["a4"]


def test_json_values_keep_nan(invoke: Invoke, tmp_path: Path) -> None:
    home = tmp_path / "nan"
    with cairn.Client(home=home) as client, client.start_run("n") as run:
        run.log_metric("acc", float("nan"))
    out = ok(invoke("runs", "find", "", "--json", "--home", home))
    assert (
        json.loads(out)["runs"][0]["metrics"]["acc"] != json.loads(out)["runs"][0]["metrics"]["acc"]
    )
    assert ok(invoke("runs", "find", "metrics.acc >= 0", "--home", home)) == "no runs match\n"


def test_listings_page_within_a_small_max_search_limit(invoke: Invoke, store: Store) -> None:
    env = {"CAIRN_MAX_SEARCH_LIMIT": "2"}  # the store's maximum, below the listing's pages
    listed = json_of(
        invoke(
            "runs", "ls", "churn/baseline", "--where", "", "--json", "--home", store.home, env=env
        )
    )
    assert [r["name"] for r in listed] == [f"a{i}" for i in range(6)]
    named = json_of(
        invoke("projects", "ls", "--where", "", "--json", "--home", store.home, env=env)
    )
    assert [p["name"] for p in named] == ["churn", "vision"]
    over = invoke("runs", "find", "", "--limit", "3", "--home", store.home, env=env)
    assert over.exit_code == 2 and "at most 2" in over.stderr
