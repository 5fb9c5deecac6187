"""Downloads never write through a symbolic link in the target folder: a link where a
file goes is replaced by the file (as a file there is), never written through; a link
where a folder goes (a tree's own folder, or one inside it) is refused, naming it, before
a byte is downloaded. The file outside stays untouched. Artifacts (embedded and over
HTTP), a repository's checkout and a run's restore alike."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.core.settings import Settings
from cairn.versioning import Hyperparameters, Snapshot
from tests.servers import serve_in_thread

SECRET = b"outside, must stay as it is"


@pytest.fixture(params=["embedded", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[cairn.Client]:
    home = tmp_path / "home"
    if request.param == "embedded":
        with cairn.Client(settings=Settings(home=str(home), capture="none")) as made:
            yield made
        return
    with (
        serve_in_thread(Settings(home=str(home))) as url,
        cairn.Client(settings=Settings(url=url, retry_timeout=5.0, capture="none")) as made,
    ):
        yield made


@pytest.fixture
def run(client: cairn.Client, tmp_path: Path) -> cairn.Run:
    client.set_project("downloads")
    client.set_experiment("links")
    run = client.start_run("r")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"new weights")
    (model / "sub" / "config.json").write_bytes(b"{}")
    run.log_artifact("model", model)
    run.log_artifact("weights.bin", b"new weights")
    return run


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(SECRET)
    (folder / "config.json").write_bytes(SECRET)
    return folder


def untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["config.json", "weights.bin"]
    assert (outside / "weights.bin").read_bytes() == SECRET
    assert (outside / "config.json").read_bytes() == SECRET


def test_a_link_as_the_trees_folder_is_refused(
    run: cairn.Run, tmp_path: Path, outside: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "model").symlink_to(outside)
    with pytest.raises(cairn.InvalidArgument, match="symbolic link") as caught:
        run.download_artifact("model", dest)
    assert caught.value.details["path"] == str(dest / "model")
    untouched(outside)
    assert sorted(p.name for p in dest.iterdir()) == ["model"]  # no staging left behind


def test_a_link_as_a_folder_inside_the_tree_is_refused(
    run: cairn.Run, tmp_path: Path, outside: Path
) -> None:
    dest = tmp_path / "dest"
    (dest / "model").mkdir(parents=True)
    (dest / "model" / "sub").symlink_to(outside)
    with pytest.raises(cairn.InvalidArgument, match="symbolic link") as caught:
        run.download_artifact("model", dest)
    assert caught.value.details["path"] == str(dest / "model" / "sub")
    untouched(outside)
    assert not (dest / "model" / "weights.bin").exists()  # refused before a byte moved


def test_a_link_where_a_file_goes_is_replaced_never_written_through(
    run: cairn.Run, tmp_path: Path, outside: Path
) -> None:
    dest = tmp_path / "dest"
    (dest / "model").mkdir(parents=True)
    (dest / "model" / "weights.bin").symlink_to(outside / "weights.bin")
    (dest / "weights.bin").symlink_to(outside / "weights.bin")
    run.download_artifact("model", dest)
    run.download_artifact("weights.bin", dest)
    for placed in (dest / "model" / "weights.bin", dest / "weights.bin"):
        assert not placed.is_symlink() and placed.read_bytes() == b"new weights"
    untouched(outside)


def test_a_trees_folder_named_by_the_caller_may_be_a_link(
    run: cairn.Run, tmp_path: Path, outside: Path
) -> None:
    named = tmp_path / "named"
    named.symlink_to(outside)  # the caller chose it: followed
    placed = run.download_artifact("model", named)
    assert (outside / "model" / "weights.bin").read_bytes() == b"new weights"
    assert placed == named / "model"


def test_checkout_refuses_a_link_where_a_folder_goes(
    client: cairn.Client, tmp_path: Path, outside: Path
) -> None:
    client.set_project("downloads")
    repo = client.set_repository("ingredients")
    code = tmp_path / "src"
    code.mkdir()
    (code / "config.json").write_bytes(b"{}")
    commit = repo.get_commit(branch="main")
    commit.update("config/hp", Hyperparameters({"lr": 0.1}))
    commit.update("code/src", Snapshot(code))
    commit.save("first")
    for link in ("config", "code/src"):
        dest = tmp_path / f"out-{link.replace('/', '-')}"
        (dest / link).parent.mkdir(parents=True, exist_ok=True)
        (dest / link).symlink_to(outside)
        with pytest.raises(cairn.InvalidArgument, match="symbolic link") as caught:
            commit.checkout(dest)
        assert caught.value.details["path"] == str(dest / link)
        untouched(outside)
        written = [name for _, _, names in os.walk(dest) for name in names]
        assert written == []  # refused before anything was written (os.walk: no links)
    files = commit.checkout(tmp_path / "clean")  # without links: written
    assert tmp_path / "clean" / "config" / "hp" / "hyperparameters.json" in files


def test_restore_refuses_a_link_below_its_folder(
    run: cairn.Run, tmp_path: Path, outside: Path
) -> None:
    dest = tmp_path / "restored"
    dest.mkdir()
    (dest / "captured").symlink_to(outside)
    with pytest.raises(cairn.InvalidArgument, match="symbolic link"):
        run.restore(dest)
    untouched(outside)
