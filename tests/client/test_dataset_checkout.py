"""Dataset checkout on every backend: into an empty folder (small files in batches, big
ones streamed), over a half-written one (what a crash leaves), and with ``link=True``:
read-only hard links to the embedded local store's objects, copies through a server;
and capture reading many files at once still catches a file changed under it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import cairn
from cairn.client._datasets import Dataset
from cairn.core.settings import Settings
from cairn.versioning import Path as DataPath
from cairn.versioning import _capture

from .conftest import MakeClient


@pytest.fixture
def client(
    open_client: MakeClient, server_url: str | None, home: Path, store_url: str, tmp_path: Path
) -> cairn.Client:
    cache = str(tmp_path / "cache" / "stat-cache.sqlite")
    if server_url is None:
        return open_client(settings=Settings(home=str(home), store_uri=store_url, stat_cache=cache))
    return open_client(url=server_url, settings=Settings(retry_timeout=5.0, stat_cache=cache))


@pytest.fixture
def dataset(client: cairn.Client) -> Dataset:
    client.set_project("p")
    return client.set_dataset("images")


def make_files(root: Path, count: int = 40) -> dict[str, bytes]:
    """``count`` small files in a few folders, one big one, one empty, two the same."""
    files: dict[str, bytes] = {}
    for i in range(count):
        files[f"d{i % 3}/f{i:03d}.bin"] = os.urandom(100 + i)
    files["big/model.bin"] = os.urandom(_capture.SMALL_FILE + 4096)
    files["empty.txt"] = b""
    files["same-1.txt"] = files["same-2.txt"] = b"twice"
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() or p.is_symlink()
    }


def test_checkout_into_an_empty_folder_then_over_a_half_written_one(
    dataset: Dataset, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data")
    version = dataset.create_version(DataPath(tmp_path / "data", capture=True))
    seen: list[int] = []
    out = tmp_path / "out"
    report = version.checkout(out, progress=seen.append)
    assert read_tree(out) == files
    assert len(report.written) == len(files) and report.skipped == [] and report.linked == []
    assert report.copied_because is None
    assert sum(seen) == sum(len(d) for d in files.values())

    # What a crash mid-checkout may leave: a file cut short, one missing, a stray temp
    # file. Checking out again writes only what is wrong.
    (out / "d1/f001.bin").write_bytes(files["d1/f001.bin"][:10])
    (out / "d2/f002.bin").unlink()
    again = version.checkout(out)
    assert sorted(p.relative_to(out).as_posix() for p in again.written) == [
        "d1/f001.bin",
        "d2/f002.bin",
    ]
    assert read_tree(out) == files


@pytest.mark.embedded_only
def test_link_checkout_makes_read_only_hard_links_to_the_store(
    dataset: Dataset, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data", count=6)
    v1 = dataset.create_version(DataPath(tmp_path / "data", capture=True))
    out = tmp_path / "linked"
    report = v1.checkout(out, link=True)
    assert report.written == [] and report.copied_because is None
    assert len(report.linked) == len(files)
    assert read_tree(out) == files
    for path in files:
        info = os.stat(out / path)
        assert stat.S_IMODE(info.st_mode) == 0o444, path  # the store's own read-only file
        assert info.st_nlink >= 2, path  # one name in the store, one here
    store_file = os.stat(out / "d0/f000.bin")
    again = v1.checkout(out, link=True)  # all present and right: nothing done
    assert again.linked == [] and len(again.skipped) == len(files)

    # A copy checkout of another version over the links replaces them (a rename, never a
    # write through them): the store keeps v1's bytes.
    (tmp_path / "data/d0/f000.bin").write_bytes(b"version two")
    v2 = dataset.create_version(DataPath(tmp_path / "data", capture=True))
    v2.checkout(out)
    assert (out / "d0/f000.bin").read_bytes() == b"version two"
    assert os.stat(out / "d0/f000.bin").st_ino != store_file.st_ino
    fresh = tmp_path / "fresh"
    v1.checkout(fresh)
    assert (fresh / "d0/f000.bin").read_bytes() == files["d0/f000.bin"]

    # Link mode over a wrong file: linked beside it, renamed over it.
    v1.checkout(out, link=True)
    assert os.stat(out / "d0/f000.bin").st_ino == store_file.st_ino
    assert read_tree(out) == files


@pytest.mark.embedded_only
def test_link_checkout_copies_across_file_systems(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = make_files(tmp_path / "data", count=3)
    version = dataset.create_version(DataPath(tmp_path / "data", capture=True))

    def other_file_system(src: str, dst: str, **_: object) -> None:
        import errno

        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", other_file_system)  # a second file system is not at hand
    report = version.checkout(tmp_path / "out", link=True)
    assert report.linked == [] and len(report.written) == len(files)
    assert report.copied_because is not None and "link" in report.copied_because
    assert read_tree(tmp_path / "out") == files


def test_link_checkout_through_a_server_copies_and_says_so(
    dataset: Dataset, tmp_path: Path, server_url: str | None
) -> None:
    if server_url is None:
        pytest.skip("through a server only")
    files = make_files(tmp_path / "data", count=3)
    version = dataset.create_version(DataPath(tmp_path / "data", capture=True))
    report = version.checkout(tmp_path / "out", link=True)
    assert report.linked == [] and len(report.written) == len(files)
    assert report.copied_because == "the store is not a local folder on this machine"
    assert read_tree(tmp_path / "out") == files
    assert os.stat(tmp_path / "out/d0/f000.bin").st_nlink == 1


def test_a_file_changed_while_read_in_parallel_is_still_caught(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    make_files(data, count=300)
    real_walk = _capture._walk

    def walk_then_write(root: str | os.PathLike[str]) -> list[_capture._Found]:
        found = real_walk(root)
        (data / "d2/f299.bin").write_bytes(b"changed since the walk")
        return found

    monkeypatch.setattr(_capture, "_walk", walk_then_write)
    with pytest.raises(cairn.InvalidArgument, match=r"'d2/f299\.bin' changed while being"):
        dataset.create_version(DataPath(data, capture=True))
    assert dataset.list_versions() == []


@pytest.mark.parametrize(
    "name", ["back\\slash.txt", "bell\x07.txt", "/".join(["d" * 200] * 6) + "/long.txt"]
)
def test_a_name_that_cannot_be_versioned_is_refused_at_any_depth(
    dataset: Dataset, tmp_path: Path, name: str
) -> None:
    deep = tmp_path / "data" / "a" / "b"
    (deep / name).parent.mkdir(parents=True)
    (tmp_path / "data" / "a" / "fine.txt").write_text("ok")
    (deep / name).write_text("bad")
    with pytest.raises(cairn.InvalidArgument, match="cannot be versioned"):
        dataset.create_version(DataPath(tmp_path / "data", capture=True))
