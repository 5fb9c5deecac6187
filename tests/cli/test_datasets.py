"""``cairn datasets add|ls|diff|checkout`` on an embedded store and through a server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.core.settings import Settings
from tests.servers import serve_in_thread

from .conftest import Invoke, json_of


@pytest.fixture(params=["embedded", "http"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    home = tmp_path / "store"
    with cairn.Client(home=home, settings=Settings(home=str(home), capture="none")) as client:
        client.set_project("churn")
    if request.param == "embedded":
        yield ["--home", str(home)]
        return
    with serve_in_thread(Settings(home=str(home))) as url:
        yield ["--url", url]


def test_add_ls_diff_checkout(invoke: Invoke, where: list[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("1\n")
    (data / "sub" / "b.csv").write_text("2\n")
    first = invoke("datasets", "add", "churn/churn-data", str(data), "--capture", *where)
    assert first.exit_code == 0, first.stderr
    assert "2 files" in first.stdout
    (data / "a.csv").write_text("1\n3\n")
    (data / "c.csv").write_text("new\n")
    second = json_of(
        invoke(
            "datasets",
            "add",
            "churn/churn-data",
            str(data),
            "--capture",
            "-m",
            "more",
            *where,
            "--json",
        )
    )
    assert second["message"] == "more" and second["kind"] == "dataset.path"

    listed = json_of(invoke("datasets", "ls", "churn/churn-data", *where, "--json"))
    assert [v["message"] for v in listed] == ["more", "2 files, 4 bytes"]
    table = invoke("datasets", "ls", "churn/churn-data", *where)
    assert table.exit_code == 0 and "dataset.path" in table.stdout

    old, new = listed[1]["id"][:10], listed[0]["id"][:10]
    diff = invoke("datasets", "diff", "churn/churn-data", old, new, *where)
    assert diff.exit_code == 0, diff.stderr
    assert diff.stdout.splitlines() == ["~ a.csv", "+ c.csv"]

    out = tmp_path / "out"
    done = invoke("datasets", "checkout", "churn/churn-data", old, str(out), *where)
    assert done.exit_code == 0, done.stderr
    assert "2 files written" in done.stdout
    assert (out / "a.csv").read_text() == "1\n" and (out / "sub" / "b.csv").read_text() == "2\n"
    again = json_of(
        invoke("datasets", "checkout", "churn/churn-data", old, str(out), *where, "--json")
    )
    assert again["written"] == [] and len(again["skipped"]) == 2


def test_errors_name_what_is_wrong(invoke: Invoke, where: list[str], tmp_path: Path) -> None:
    missing = invoke("datasets", "ls", "churn/nope", *where)
    assert missing.exit_code != 0 and "no dataset 'nope'" in missing.stderr
    described = tmp_path / "d"
    described.mkdir()
    (described / "x").write_text("x")
    assert invoke("datasets", "add", "churn/d", str(described), *where).exit_code == 0
    version = json_of(invoke("datasets", "ls", "churn/d", *where, "--json"))[0]["id"]
    refused = invoke("datasets", "checkout", "churn/d", version, str(tmp_path / "o"), *where)
    assert refused.exit_code != 0 and "without its bytes" in refused.stderr
