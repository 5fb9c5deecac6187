"""``cairn datasets checkout --link``: hard links on an embedded store, copies (and a line
saying why) through a server."""

from __future__ import annotations

import os
import stat
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


def test_checkout_link(invoke: Invoke, where: list[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1\n")
    (data / "b.csv").write_text("2\n")
    added = json_of(invoke("datasets", "add", "churn/d", str(data), "--capture", *where, "--json"))
    out = tmp_path / "out"
    done = invoke("datasets", "checkout", "churn/d", added["id"][:10], str(out), "--link", *where)
    assert done.exit_code == 0, done.stderr
    assert (out / "a.csv").read_text() == "1\n" and (out / "b.csv").read_text() == "2\n"
    mode = stat.S_IMODE(os.stat(out / "a.csv").st_mode)
    if where[0] == "--home":
        assert "2 hard links to the store" in done.stdout and done.stderr == ""
        assert mode == 0o444 and os.stat(out / "a.csv").st_nlink == 2
    else:
        assert "copied, not linked: the store is not a local folder" in done.stderr
        assert "0 files written" not in done.stdout and os.stat(out / "a.csv").st_nlink == 1
    again = json_of(
        invoke(
            "datasets",
            "checkout",
            "churn/d",
            added["id"][:10],
            str(tmp_path / "o2"),
            "--link",
            *where,
            "--json",
        )
    )
    assert len(again["linked"] if where[0] == "--home" else again["written"]) == 2
    assert (again["copied_because"] is None) == (where[0] == "--home")
