"""Folders logged as artifacts are taken as documented (docs/python-api.md, *Folders*):
a symbolic link inside is stored as what it points to only while that stays inside the
folder (``CAIRN_SYMLINKS=inside``, the default), refused if it leaves it or is broken, or
refused whatever it is (``refuse``), or followed anywhere (``follow``); a link back into a
folder being walked, and special files (FIFOs, sockets), are refused by name. Embedded and
over HTTP alike: the folder is walked by the client (cairn/files/artifacts.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.core.settings import Settings
from tests.servers import serve_in_thread

MakeRun = Callable[..., cairn.Run]


@pytest.fixture(params=["embedded", "http"])
def make_run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeRun]:
    """A running run on a client with the given settings (embedded or through a real
    server on loopback); every client is closed at the end."""
    home = tmp_path / "home"
    clients: list[cairn.Client] = []

    def open_run(url: str | None, **settings: Any) -> cairn.Run:
        base = Settings(url=url, retry_timeout=5.0) if url else Settings(home=str(home))
        client = cairn.Client(settings=base.replace(**settings))
        clients.append(client)
        client.set_project("folders")
        client.set_experiment("links")
        return client.start_run("r")

    try:
        if request.param == "http":
            with serve_in_thread(Settings(home=str(home))) as url:
                yield lambda **s: open_run(url, **s)
                for client in clients:  # while the server still answers
                    client.close()
                clients.clear()
        else:
            yield lambda **s: open_run(None, **s)
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with a file, a subfolder, and links that stay inside it."""
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(b"weights")
    (root / "sub" / "config.json").write_text('{"a": 1}')
    (root / "latest.bin").symlink_to("weights.bin")  # a link to a file inside
    (root / "configs").symlink_to("sub")  # a link to a folder inside
    (root / "sub" / "up.bin").symlink_to("../weights.bin")  # inside, by way of '..'
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "secret.txt").write_bytes(b"not part of the model")
    return secret


def files_of(run: cairn.Run, key: str) -> dict[str, int]:
    return {entry.path: entry.size for entry in run.list_artifact_files(key)}


def refused(run: cairn.Run, folder: Path, *words: str) -> cairn.InvalidArgument:
    with pytest.raises(cairn.InvalidArgument) as caught:
        run.log_artifact("model", folder)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    assert run.list_artifacts() == []  # nothing recorded
    return caught.value


def test_links_inside_the_folder_are_stored_as_what_they_point_to(
    make_run: MakeRun, folder: Path, tmp_path: Path
) -> None:
    run = make_run()
    run.log_artifact("model", folder)
    assert files_of(run, "model") == {
        "configs/config.json": 8,
        "configs/up.bin": 7,
        "latest.bin": 7,
        "sub/config.json": 8,
        "sub/up.bin": 7,
        "weights.bin": 7,
    }
    out = run.download_artifact("model", tmp_path / "out")
    assert (out / "latest.bin").read_bytes() == b"weights"
    assert not (out / "latest.bin").is_symlink()  # downloads hold files, not links
    assert (out / "configs" / "config.json").read_text() == '{"a": 1}'


@pytest.mark.parametrize("absolute", [False, True])
def test_a_link_to_a_file_outside_is_refused_and_its_bytes_never_stored(
    make_run: MakeRun, folder: Path, outside: Path, absolute: bool
) -> None:
    target = outside / "secret.txt"
    (folder / "sub" / "leak.txt").symlink_to(
        target if absolute else Path("..", "..", "elsewhere", "secret.txt")
    )
    run = make_run()
    error = refused(run, folder, "sub/leak.txt", "outside the folder", "CAIRN_SYMLINKS")
    assert error.details["path"] == os.path.join(folder, "sub", "leak.txt")
    # The outside bytes never reached the store: logging them as bytes is a new object.
    info = run.log_artifact("probe", target.read_bytes())
    assert info.size == len(b"not part of the model")


def test_a_link_to_a_folder_outside_is_refused(
    make_run: MakeRun, folder: Path, outside: Path
) -> None:
    (folder / "data").symlink_to(outside)
    refused(make_run(), folder, "data", "outside the folder")


def test_a_broken_link_is_refused(make_run: MakeRun, folder: Path) -> None:
    (folder / "gone.bin").symlink_to("nowhere.bin")
    refused(make_run(), folder, "gone.bin", "broken symbolic link", "nowhere.bin")


def test_a_link_back_to_a_folder_being_walked_is_refused(make_run: MakeRun, folder: Path) -> None:
    (folder / "sub" / "again").symlink_to("..")
    refused(make_run(), folder, "again", "loop")


def test_refuse_refuses_every_link(make_run: MakeRun, folder: Path) -> None:
    run = make_run(symlinks="refuse")
    refused(run, folder, "symbolic link", "CAIRN_SYMLINKS=refuse")
    for link in ("latest.bin", "configs", "sub/up.bin"):
        os.unlink(folder / link)
    run.log_artifact("model", folder)  # no link left: logged
    assert set(files_of(run, "model")) == {"sub/config.json", "weights.bin"}


def test_follow_follows_links_out_of_the_folder(
    make_run: MakeRun, folder: Path, outside: Path
) -> None:
    (folder / "data").symlink_to(outside)
    run = make_run(symlinks="follow")
    run.log_artifact("model", folder)
    assert files_of(run, "model")["data/secret.txt"] == len(b"not part of the model")


def test_the_setting_is_read_from_the_environment() -> None:
    from cairn.core.settings import settings_from

    assert Settings().symlinks == "inside"
    assert settings_from({"CAIRN_SYMLINKS": "Refuse"}).symlinks == "refuse"
    with pytest.raises(cairn.InvalidArgument, match="CAIRN_SYMLINKS"):
        settings_from({"CAIRN_SYMLINKS": "maybe"})


def test_a_fifo_is_refused_by_name(make_run: MakeRun, folder: Path) -> None:
    os.mkfifo(folder / "sub" / "pipe")
    refused(make_run(), folder, "sub/pipe", "FIFO")


def test_a_socket_is_refused_by_name(
    make_run: MakeRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "s"  # a socket's path must be short (108 bytes)
    root.mkdir()
    (root / "a.txt").write_text("a")
    monkeypatch.chdir(root)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind("sock")
        refused(make_run(), root, "sock", "socket")


def test_a_link_named_as_the_source_itself_is_followed(
    make_run: MakeRun, folder: Path, tmp_path: Path
) -> None:
    named = tmp_path / "named"
    named.symlink_to(folder)  # what the caller names is what they mean
    run = make_run()
    run.log_artifact("model", named)
    assert "weights.bin" in files_of(run, "model")
