"""The commands that change what is tracked (create, delete, end, tag) and read runs side by
side (compare) or over time (metrics), and ``runs ls``'s nesting and metric columns: against
an embedded store in the test's folder, and a few against a real server."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

import cairn
from cairn.core.ids import short_id
from cairn.core.settings import Settings
from tests.cli.conftest import Invoke, json_of
from tests.servers import serve_in_thread


@dataclass(frozen=True)
class Runs:
    home: Path
    first: str  # lr 0.1, loss and acc over 3 steps; parent of child
    child: str  # parent of grandchild
    grandchild: str
    second: str  # lr 0.01, loss over 100 steps, a NaN acc
    running: str  # never ended


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    """project churn / experiment baseline: first > child > grandchild, second, running."""
    home = tmp_path / "store"
    clock = itertools.count(1_700_000_000_000, 1000).__next__  # a second a call: no ties
    with cairn.Client(home=home, clock=clock) as client:
        client.set_project("churn")
        client.set_experiment("baseline")
        hp = {"lr": 0.1, "epochs": 3, "model": "logreg"}
        with client.start_run("first", hyperparameters=hp) as first:
            for step, loss in enumerate((0.9, 0.5, 0.25)):
                first.log_metrics({"loss": loss, "acc": 1 - loss}, step=step)
            with client.start_run("child", parent=first) as child:
                child.log_metric("loss", 0.3)
                with client.start_run("grandchild", parent=child) as grandchild:
                    pass
        hp2 = {"lr": 0.01, "epochs": 3, "model": "logreg", "shuffle": True}
        with client.start_run("second", hyperparameters=hp2) as second:
            for step in range(100):
                second.log_metric("loss", 1 / (step + 1), step=step)
            second.log_metric("acc", math.nan, step=0)
        running = client.start_run("running")
        running.flush()
        yield Runs(home, first.id, child.id, grandchild.id, second.id, running.id)


def ok(result: Result) -> str:
    """The stdout of a command that must have succeeded."""
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


# -- projects and experiments ---------------------------------------------------------------
def test_projects_create(invoke: Invoke, tmp_path: Path) -> None:
    home = tmp_path / "new"  # no store yet: create makes one
    out = ok(invoke("projects", "create", "vision", "--home", home))
    with cairn.Client(home=home) as client:
        project = client.get_project("vision")
    assert out == f"created project vision ({project.id})\n"
    made = json_of(
        invoke(
            "projects",
            "create",
            "nlp",
            "--description",
            "words",
            "--tag",
            "a",
            "--tag",
            "b",
            "--home",
            home,
            "--json",
        )
    )
    assert (made["name"], made["description"]) == ("nlp", "words")
    with cairn.Client(home=home) as client:
        assert client.get_project("nlp").get_tags() == ["a", "b"]


def test_projects_create_refuses_an_existing_name_and_changes_nothing(
    invoke: Invoke, runs: Runs
) -> None:
    again = invoke("projects", "create", "churn", "--tag", "x", "--home", runs.home)
    assert (again.exit_code, again.stderr) == (1, "error: project 'churn' exists already\n")
    with cairn.Client(home=runs.home) as client:
        assert client.get_project("churn").get_tags() == []


def test_experiments_create(invoke: Invoke, runs: Runs) -> None:
    out = ok(invoke("experiments", "create", "churn/tuned", "--home", runs.home))
    assert out.startswith("created experiment churn/tuned (")
    made = json_of(
        invoke(
            "experiments",
            "create",
            "churn/deep",
            "--description",
            "more layers",
            "--tag",
            "nn",
            "--home",
            runs.home,
            "--json",
        )
    )
    assert (made["name"], made["description"]) == ("deep", "more layers")
    listed = json_of(invoke("experiments", "ls", "churn", "--home", runs.home, "--json"))
    assert [e["name"] for e in listed] == ["baseline", "tuned", "deep"]


def test_experiments_create_errors(invoke: Invoke, runs: Runs) -> None:
    exists = invoke("experiments", "create", "churn/baseline", "--home", runs.home)
    assert (exists.exit_code, exists.stderr) == (
        1,
        "error: experiment 'baseline' exists already in project 'churn'\n",
    )
    no_project = invoke("experiments", "create", "nope/x", "--home", runs.home)
    assert (no_project.exit_code, no_project.stderr) == (1, "error: no project named 'nope'\n")
    usage = invoke("experiments", "create", "churn", "--home", runs.home)
    assert usage.exit_code == 2 and "PROJECT/NAME" in usage.stderr


def test_projects_delete(invoke: Invoke, runs: Runs) -> None:
    with cairn.Client(home=runs.home) as client:
        project_id = client.get_project("churn").id
    out = ok(invoke("projects", "delete", "churn", "--home", runs.home))
    assert out == f"deleted project churn ({project_id})\n"
    assert ok(invoke("projects", "ls", "--home", runs.home)) == "no projects\n"
    again = json_of(invoke("projects", "delete", "churn", "--home", runs.home, "--json"))
    assert again["id"] == project_id and again["deleted_at"] is not None
    # kept, and found by name: its name is not free
    create = invoke("projects", "create", "churn", "--home", runs.home)
    assert (create.exit_code, create.stderr) == (
        1,
        "error: project 'churn' exists already (deleted: cairn projects undelete churn)\n",
    )
    back = ok(invoke("projects", "undelete", "churn", "--home", runs.home))
    assert back == f"restored project churn ({project_id})\n"
    assert "churn" in ok(invoke("projects", "ls", "--home", runs.home))
    missing = invoke("projects", "delete", "nope", "--home", runs.home)
    assert (missing.exit_code, missing.stderr) == (1, "error: no project named 'nope'\n")


def test_experiments_delete(invoke: Invoke, runs: Runs) -> None:
    ok(invoke("experiments", "create", "churn/tuned", "--home", runs.home))
    deleted = json_of(invoke("experiments", "delete", "churn/tuned", "--home", runs.home, "--json"))
    assert deleted["name"] == "tuned" and deleted["deleted_at"] is not None
    listed = json_of(invoke("experiments", "ls", "churn", "--home", runs.home, "--json"))
    assert [e["name"] for e in listed] == ["baseline"]
    out = ok(invoke("experiments", "delete", "churn/baseline", "--home", runs.home))
    assert out.startswith("deleted experiment churn/baseline (")
    gone = invoke("runs", "ls", "churn/baseline", "--home", runs.home)
    assert (gone.exit_code, gone.stderr) == (
        1,
        "error: no experiment named 'baseline' in project 'churn'\n",
    )
    again = invoke("experiments", "create", "churn/baseline", "--home", runs.home)
    assert again.exit_code == 1
    assert "(deleted: cairn experiments undelete churn/baseline)" in again.stderr
    back = ok(invoke("experiments", "undelete", "churn/baseline", "--home", runs.home))
    assert back.startswith("restored experiment churn/baseline (")
    assert ok(invoke("runs", "ls", "churn/baseline", "--home", runs.home))
    usage = invoke("experiments", "delete", "churn", "--home", runs.home)
    assert usage.exit_code == 2


# -- runs ls --------------------------------------------------------------------------------
def test_runs_ls_nests_children_under_their_parent(invoke: Invoke, runs: Runs) -> None:
    lines = ok(invoke("runs", "ls", "churn/baseline", "--home", runs.home)).splitlines()
    assert lines[0].split() == ["NAME", "ID", "STATUS", "STARTED", "DURATION", "OWNER"]
    names = [
        line[: line.index(short_id(r))].rstrip()
        for line, r in zip(lines[1:], order(runs), strict=True)
    ]
    assert names == ["first", "  child", "    grandchild", "second", "running"]
    # the full ids stay in --json, oldest first
    listed = json_of(invoke("runs", "ls", "churn/baseline", "--home", runs.home, "--json"))
    assert [r["id"] for r in listed] == [
        runs.first,
        runs.child,
        runs.grandchild,
        runs.second,
        runs.running,
    ]
    assert listed[1]["parent_id"] == runs.first


def order(runs: Runs) -> list[str]:
    return [runs.first, runs.child, runs.grandchild, runs.second, runs.running]


def test_runs_ls_shows_a_child_of_an_unlisted_parent_at_the_top(invoke: Invoke, runs: Runs) -> None:
    ok(invoke("runs", "delete", runs.first, "--home", runs.home))
    lines = ok(invoke("runs", "ls", "churn/baseline", "--home", runs.home)).splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["child", "grandchild", "second", "running"]
    assert lines[1].startswith("child ") and lines[2].startswith("  grandchild ")
    everything = invoke("runs", "ls", "churn/baseline", "--include-deleted", "--home", runs.home)
    assert ok(everything).splitlines()[2].startswith("  child ")


def test_runs_ls_metric_columns(invoke: Invoke, runs: Runs) -> None:
    result = invoke("runs", "ls", "churn/baseline", "--metrics", "loss,acc", "--home", runs.home)
    lines = ok(result).splitlines()
    assert lines[0].split()[-2:] == ["loss", "acc"]
    assert lines[1].split()[-2:] == ["0.25", "0.75"]  # first
    assert lines[2].split()[-1] == "0.3"  # child: loss only, an empty acc cell
    owner = json_of(invoke("runs", "ls", "churn/baseline", "--home", runs.home, "--json"))[2]
    assert lines[3].endswith(f" {owner['owner']}")  # grandchild: two empty cells
    assert lines[4].split()[-2:] == ["0.01", "nan"]  # second
    # repeated options add up; --json gets each run's values (null when missing)
    listed = json_of(
        invoke(
            "runs",
            "ls",
            "churn/baseline",
            "--metrics",
            "acc",
            "--metrics",
            "loss",
            "--home",
            runs.home,
            "--json",
        )
    )
    assert listed[0]["metrics"] == {"acc": 0.75, "loss": 0.25}
    assert listed[1]["metrics"] == {"acc": None, "loss": 0.3}
    assert listed[0]["id"] == runs.first


# -- lifecycle and tags ---------------------------------------------------------------------
def test_runs_end(invoke: Invoke, runs: Runs) -> None:
    out = ok(invoke("runs", "end", runs.running, "--status", "killed", "--home", runs.home))
    assert out == f"run running ({short_id(runs.running)}): killed\n"
    with cairn.Client(home=runs.home) as client:
        info = client.get_run(runs.running).info
    assert info.status == "killed" and info.end_time is not None


def test_runs_end_finishes_by_default_and_checks_the_status(invoke: Invoke, runs: Runs) -> None:
    ended = json_of(invoke("runs", "end", runs.running, "--home", runs.home, "--json"))
    assert (ended["id"], ended["status"]) == (runs.running, "finished")
    bad = invoke("runs", "end", runs.running, "--status", "running", "--home", runs.home)
    assert bad.exit_code == 2 and "--status" in bad.stderr


def test_runs_end_of_an_ended_run(invoke: Invoke, runs: Runs) -> None:
    same = invoke("runs", "end", runs.first, "--home", runs.home)  # finished already
    assert same.stdout == f"run first ({short_id(runs.first)}): finished\n"
    other = invoke("runs", "end", runs.first, "--status", "failed", "--home", runs.home)
    assert other.exit_code == 1
    assert other.stderr.startswith(f"error: run {runs.first} already ended as finished")
    assert "Traceback" not in other.output


def test_runs_delete_and_undelete(invoke: Invoke, runs: Runs) -> None:
    out = ok(invoke("runs", "delete", runs.second, "--home", runs.home))
    assert out == (
        f"deleted run second ({short_id(runs.second)}); "
        f"undo with: cairn runs undelete {runs.second}\n"
    )
    listed = json_of(invoke("runs", "ls", "churn/baseline", "--home", runs.home, "--json"))
    assert runs.second not in [r["id"] for r in listed]
    back = json_of(invoke("runs", "undelete", runs.second, "--home", runs.home, "--json"))
    assert (back["id"], back["deleted_at"]) == (runs.second, None)
    listed = json_of(invoke("runs", "ls", "churn/baseline", "--home", runs.home, "--json"))
    assert runs.second in [r["id"] for r in listed]
    again = ok(invoke("runs", "undelete", runs.second, "--home", runs.home))
    assert again == f"undeleted run second ({short_id(runs.second)})\n"


def test_runs_restore_still_restores_ingredients_beside_undelete(
    invoke: Invoke, runs: Runs, tmp_path: Path
) -> None:
    help_text = ok(invoke("runs", "--help"))
    assert "restore" in help_text and "undelete" in help_text
    (tmp_path / "back").mkdir()
    ok(invoke("runs", "restore", runs.first, tmp_path / "back", "--home", runs.home))
    assert (tmp_path / "back" / "hyperparameters.json").is_file()


def test_runs_tag_and_untag(invoke: Invoke, runs: Runs) -> None:
    out = ok(invoke("runs", "tag", runs.first, "best", "keep", "--home", runs.home))
    assert out == f"run first ({short_id(runs.first)}) tags: best, keep\n"
    tagged = json_of(
        invoke("runs", "untag", runs.first, "keep", "nope", "--home", runs.home, "--json")
    )
    assert tagged == {"run": runs.first, "tags": ["best"]}
    out = ok(invoke("runs", "untag", runs.first, "best", "--home", runs.home))
    assert out.endswith(" tags: -\n")
    assert invoke("runs", "tag", runs.first, "--home", runs.home).exit_code == 2


def test_a_missing_run_is_an_error(invoke: Invoke, runs: Runs) -> None:
    missing = "01900000-0000-7000-8000-000000000000"
    for command in ("end", "delete", "undelete", "metrics", "show"):
        result = invoke("runs", command, missing, "--home", runs.home)
        assert result.exit_code == 1, command
        assert result.stderr.startswith("error: ") and missing in result.stderr, command
        assert "Traceback" not in result.output
    tagged = invoke("runs", "tag", missing, "x", "--home", runs.home)
    assert tagged.exit_code == 1 and tagged.stderr.startswith("error: ")


# -- compare --------------------------------------------------------------------------------
def test_runs_compare_table(invoke: Invoke, runs: Runs) -> None:
    out = ok(invoke("runs", "compare", runs.first, runs.second, "--home", runs.home))
    lines = out.splitlines()
    assert lines[0].split() == [
        "first",
        f"({short_id(runs.first)})",
        "second",
        f"({short_id(runs.second)})",
    ]
    rows = {tuple(line.split()[:-2]): line.split()[-2:] for line in lines[1:]}
    assert rows[("status",)] == ["finished", "finished"]
    assert rows[("*", "lr")] == ["0.1", "0.01"]
    assert rows[("epochs",)] == ["3", "3"]
    assert rows[("model",)] == ["logreg", "logreg"]
    assert rows[("*", "shuffle")] == ["-", "True"]
    assert rows[("*", "loss")] == ["0.25", "0.01"]
    assert rows[("*", "acc")] == ["0.75", "nan"]
    assert "hyperparameters" in out and "metrics (latest)" in out
    assert "\x1b[" not in out  # piped: plain text


def test_runs_compare_json(invoke: Invoke, runs: Runs) -> None:
    compared = json_of(
        invoke(
            "runs", "compare", runs.first, runs.second, runs.child, "--home", runs.home, "--json"
        )
    )
    assert [r["id"] for r in compared["runs"]] == [runs.first, runs.second, runs.child]
    assert compared["hyperparameters"] == {
        "epochs": [3, 3, None],
        "lr": [0.1, 0.01, None],
        "model": ["logreg", "logreg", None],
        "shuffle": [None, True, None],
    }
    assert compared["metrics"]["loss"] == [0.25, 0.01, 0.3]
    assert compared["metrics"]["acc"][0] == 0.75 and compared["metrics"]["acc"][2] is None
    assert {"hyperparameters.lr", "metrics.loss", "metrics.acc"} <= set(compared["differs"])
    assert "status" not in compared["differs"]


def test_runs_compare_tells_types_apart_and_nan_from_nothing(
    invoke: Invoke, tmp_path: Path
) -> None:
    home = tmp_path / "types"
    with cairn.Client(home=home) as client:
        a = client.start_run("a", hyperparameters={"n": 1, "same": "x"})
        b = client.start_run("b", hyperparameters={"n": 1.0, "same": "x"})
        c = client.start_run("c", hyperparameters={"n": True, "same": "x"})
        for run in (a, b, c):
            run.log_metric("nan", math.nan)
            run.end()
    compared = json_of(invoke("runs", "compare", a.id, b.id, c.id, "--home", home, "--json"))
    assert "hyperparameters.n" in compared["differs"]
    assert "hyperparameters.same" not in compared["differs"]
    assert "metrics.nan" not in compared["differs"]  # NaN everywhere is the same value


def test_runs_compare_bolds_differences_on_a_terminal(invoke: Invoke, runs: Runs) -> None:
    # FORCE_COLOR makes rich style as on a terminal; color=True keeps click from stripping it.
    result = invoke(
        "runs", "compare", runs.first, runs.second, "--home", runs.home,
        env={"FORCE_COLOR": "1"}, color=True,
    )  # fmt: skip
    lines = ok(result).splitlines()
    lr = next(line for line in lines if " lr " in line)
    epochs = next(line for line in lines if " epochs " in line)
    assert "\x1b[1m" in lr
    assert "\x1b[1m" not in epochs


def test_runs_compare_needs_two_runs(invoke: Invoke, runs: Runs) -> None:
    one = invoke("runs", "compare", runs.first, "--home", runs.home)
    assert one.exit_code == 2 and "two runs" in one.stderr
    assert invoke("runs", "compare", "--home", runs.home).exit_code == 2


# -- metrics --------------------------------------------------------------------------------
def test_runs_metrics_history_table(invoke: Invoke, runs: Runs) -> None:
    out = ok(invoke("runs", "metrics", runs.first, "loss", "--home", runs.home))
    lines = out.splitlines()
    assert lines[0] == f"loss of run first ({short_id(runs.first)}): 3 points"
    assert lines[1] == "█▄▁  min 0.25  max 0.9"
    assert lines[2] == ""
    assert lines[3].split() == ["STEP", "TIME", "VALUE"]
    assert [(line.split()[0], line.split()[-1]) for line in lines[4:]] == [
        ("0", "0.9"),
        ("1", "0.5"),
        ("2", "0.25"),
    ]


def test_runs_metrics_sparkline_of_a_long_history_fits_sixty_characters(
    invoke: Invoke, runs: Runs
) -> None:
    lines = ok(invoke("runs", "metrics", runs.second, "loss", "--home", runs.home)).splitlines()
    spark, _, rest = lines[1].partition("  ")
    assert len(spark) == 60 and spark[0] == "█" and spark[-1] == "▁"
    assert rest == "min 0.01  max 1"
    assert len(lines) == 4 + 100


def test_runs_metrics_csv_and_json(invoke: Invoke, runs: Runs) -> None:
    csv_out = ok(invoke("runs", "metrics", runs.first, "acc", "--csv", "--home", runs.home))
    header, *rows = csv_out.splitlines()
    assert header == "step,timestamp,value"
    assert [(r.split(",")[0], r.split(",")[2]) for r in rows] == [
        ("0", "0.09999999999999998"),
        ("1", "0.5"),
        ("2", "0.75"),
    ]
    history = json_of(invoke("runs", "metrics", runs.first, "acc", "--home", runs.home, "--json"))
    assert history["run"] == runs.first and history["key"] == "acc"
    assert [(p["step"], p["value"]) for p in history["points"]] == [
        (0, 0.09999999999999998),
        (1, 0.5),
        (2, 0.75),
    ]
    assert all(isinstance(p["timestamp"], int) for p in history["points"])
    nan_csv = ok(invoke("runs", "metrics", runs.second, "acc", "--csv", "--home", runs.home))
    assert nan_csv.splitlines()[1].endswith(",nan")
    both = invoke("runs", "metrics", runs.first, "acc", "--csv", "--json", "--home", runs.home)
    assert both.exit_code == 2


def test_runs_metrics_of_a_missing_key_names_the_keys_there_are(invoke: Invoke, runs: Runs) -> None:
    result = invoke("runs", "metrics", runs.first, "nope", "--home", runs.home)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no metric 'nope' on run first ({short_id(runs.first)}) (its metrics: acc, loss)\n"
    )


def test_runs_metrics_lists_every_key(invoke: Invoke, runs: Runs) -> None:
    lines = ok(invoke("runs", "metrics", runs.first, "--home", runs.home)).splitlines()
    assert lines[0] == f"run first ({short_id(runs.first)})"
    assert lines[1].split() == ["KEY", "LATEST", "STEP", "POINTS", "MIN", "HISTORY", "MAX"]
    assert lines[2].split() == ["acc", "0.75", "2", "3", "0.1", "▁▅█", "0.75"]
    assert lines[3].split() == ["loss", "0.25", "2", "3", "0.25", "█▄▁", "0.9"]
    long = ok(invoke("runs", "metrics", runs.second, "--home", runs.home)).splitlines()
    [loss] = [line for line in long if line.startswith("loss")]
    assert len(loss.split()[5]) == 30  # the listing's sparklines are half as wide
    [acc] = [line for line in long if line.startswith("acc")]
    assert acc.split()[:5] == ["acc", "nan", "0", "1", "-"]  # nothing finite to draw
    listed = json_of(invoke("runs", "metrics", runs.first, "--home", runs.home, "--json"))
    assert listed["run"] == runs.first
    assert {k: (p["step"], p["value"]) for k, p in listed["metrics"].items()} == {
        "acc": (2, 0.75),
        "loss": (2, 0.25),
    }
    csv_out = ok(invoke("runs", "metrics", runs.first, "--csv", "--home", runs.home))
    assert csv_out.splitlines()[0] == "key,step,timestamp,value"
    assert [line.split(",")[::3] for line in csv_out.splitlines()[1:]] == [
        ["acc", "0.75"],
        ["loss", "0.25"],
    ]
    empty = ok(invoke("runs", "metrics", runs.running, "--home", runs.home))
    assert empty == f"no metrics on run running ({short_id(runs.running)})\n"


# -- through a server -----------------------------------------------------------------------
def test_the_commands_through_a_server(invoke: Invoke, runs: Runs) -> None:
    with serve_in_thread(Settings(home=str(runs.home))) as url:
        ok(invoke("projects", "create", "served", "--url", url))
        ok(invoke("experiments", "create", "served/exp", "--url", url))
        ok(invoke("experiments", "create", "served/gone", "--url", url))
        ok(invoke("experiments", "delete", "served/gone", "--url", url))
        listed = json_of(invoke("experiments", "ls", "served", "--url", url, "--json"))
        assert [e["name"] for e in listed] == ["exp"]
        again = invoke("projects", "create", "served", "--url", url)
        assert (again.exit_code, again.stderr) == (1, "error: project 'served' exists already\n")
        tags = json_of(invoke("runs", "tag", runs.first, "best", "--url", url, "--json"))
        assert tags["tags"] == ["best"]
        ended = json_of(invoke("runs", "end", runs.running, "--url", url, "--json"))
        assert ended["status"] == "finished"
        ok(invoke("runs", "delete", runs.second, "--url", url))
        ok(invoke("runs", "undelete", runs.second, "--url", url))
        compared = json_of(
            invoke("runs", "compare", runs.first, runs.second, "--url", url, "--json")
        )
        assert compared["metrics"]["loss"] == [0.25, 0.01]
        history = json_of(invoke("runs", "metrics", runs.first, "loss", "--url", url, "--json"))
        assert [p["value"] for p in history["points"]] == [0.9, 0.5, 0.25]
        lines = ok(invoke("runs", "ls", "churn/baseline", "--metrics", "loss", "--url", url))
        assert lines.splitlines()[2].startswith("  child ")
        short = json_of(invoke("runs", "show", short_id(runs.first), "--url", url, "--json"))
        assert short["run"]["id"] == runs.first
        ok(invoke("projects", "delete", "served", "--url", url))
        assert "served" not in ok(invoke("projects", "ls", "--url", url))


# -- the ways to name a run -----------------------------------------------------------------
def run_id_in(command: str, shown: dict[str, Any]) -> str:
    """Where each command's --json output has the run's full id."""
    found = {
        "show": lambda: shown["run"]["id"],
        "compare": lambda: shown["runs"][0]["id"],
        "tag": lambda: shown["run"],
        "untag": lambda: shown["run"],
        "metrics": lambda: shown["run"],
    }.get(command, lambda: shown["id"])()
    return str(found)


COMMANDS = {  # command -> the arguments after RUN
    "show": (),
    "end": ("--status", "failed"),
    "delete": (),
    "undelete": (),
    "tag": ("x",),
    "untag": ("x",),
    "compare": ("churn/baseline/second",),
    "metrics": (),
}


@pytest.mark.parametrize("form", ["short id", "PROJECT/EXPERIMENT/NAME", "upper case"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_run_command_takes_each_form_of_run(
    invoke: Invoke, runs: Runs, command: str, form: str
) -> None:
    run = runs.running if command == "end" else runs.first
    name = "running" if command == "end" else "first"
    ref = {
        "short id": short_id(run),
        "PROJECT/EXPERIMENT/NAME": f"churn/baseline/{name}",
        "upper case": run.upper(),
    }[form]
    shown = json_of(invoke("runs", command, ref, *COMMANDS[command], "--home", runs.home, "--json"))
    assert run_id_in(command, shown) == run
