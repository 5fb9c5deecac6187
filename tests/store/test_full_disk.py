"""A full disk or quota (ENOSPC, EDQUOT) while writing objects or downloads: the caller
gets ``StorageFull`` and nothing half-written stays behind.

A full file system cannot be made here without root (a small mounted one), so each test
has the kernel's error raised where the disk would raise it.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.core.digest import digest_bytes
from cairn.core.errors import StorageFull
from cairn.files import artifacts, writing
from cairn.store.objects import LocalObjectStore
from cairn.store.objects import local as local_objects
from tests.store.test_direct_io import BIG, MiB, store

__all__ = ["store"]  # the direct-I/O store fixture, shared


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(BIG)


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[LocalObjectStore]:
    with LocalObjectStore(tmp_path / "plain") as s:
        yield s


def _full(*_: object, **__: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _temp_files(store: LocalObjectStore) -> list[Path]:
    tmp = Path(store.root) / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cairn-object-writer"]


@pytest.mark.parametrize("way", ["direct", "buffered"])
def test_a_full_disk_on_the_writer_thread_reaches_the_caller_and_stores_nothing(
    way: str, store: LocalObjectStore, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    name = "pwrite_direct" if way == "direct" else "_pwrite_all"
    real = getattr(writing, name)

    def fills_up(fd: int, view: memoryview, offset: int) -> int:
        if offset >= 12 * MiB:  # the writer's own thread writes this far in
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(offset)
        return int(real(fd, view, offset) or 0)

    monkeypatch.setattr(writing, name, fills_up)
    if way == "buffered":
        monkeypatch.setattr(writing, "pwrite_direct", lambda fd, view, offset: 0)
    with (
        pytest.raises(StorageFull, match="no room left for a new object") as caught,
        store.open_writer() as writer,
    ):
        for start in range(0, len(data), MiB):  # as the server hands pieces over
            writer.write(data[start : start + MiB])
        writer.commit()
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert written, f"the {way} path was never taken"
    assert not store.exists(digest_bytes(data))
    assert _temp_files(store) == []
    assert _writer_threads() == []
    monkeypatch.undo()  # the disk has room again: the same store takes the same bytes
    assert store.put_bytes(data).digest == digest_bytes(data)


def test_a_download_onto_a_full_disk_leaves_nothing(
    store: LocalObjectStore, data: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = store.put_bytes(data).digest
    dest = tmp_path / "out" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous download")

    def full(fd: int, view: memoryview, offset: int) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(writing, "_pwrite_all", full)
    with pytest.raises(StorageFull) as caught:
        store.copy_to_file(digest, dest)
    assert caught.value.details["path"] == str(dest)
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]  # no temp file left
    assert dest.read_bytes() == b"the previous download"


def test_a_small_object_onto_a_full_disk(
    plain: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_objects, "write_all", _full)
    with pytest.raises(StorageFull, match="no room left for a new object"):
        plain.put_bytes(b"a small manifest")
    assert _temp_files(plain) == []
    assert not plain.exists(digest_bytes(b"a small manifest"))


def test_no_room_for_a_new_temp_file(
    plain: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = plain.put_bytes(b"weights").digest
    monkeypatch.setattr(local_objects, "create_exclusive", _full)  # no inode left
    monkeypatch.setattr(writing, "create_exclusive", _full)
    with pytest.raises(StorageFull):
        plain.put_bytes(b"other weights")
    with pytest.raises(StorageFull) as caught:
        plain.copy_to_file(digest, tmp_path / "out.bin")
    assert caught.value.details["path"] == str(tmp_path / "out.bin")


def test_a_folder_download_onto_a_full_disk_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"a" * 1000)
    (folder / "sub" / "b.bin").write_bytes(b"b" * 1000)
    with cairn.Client(home=tmp_path / "home") as client:
        run = client.start_run()
        run.log_artifact("model", folder)
        out = tmp_path / "out"
        out.mkdir()
        monkeypatch.setattr(writing, "_pwrite_all", _full)  # big files: copied
        monkeypatch.setattr(artifacts, "write_all", _full)  # small ones: written in batches
        with pytest.raises(StorageFull) as caught:
            run.download_artifact("model", out)
        assert str(out / "model") in str(caught.value.details["path"])
        assert list(out.iterdir()) == []  # no staging folder, no partial tree
