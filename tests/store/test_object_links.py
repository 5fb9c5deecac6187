"""``link_to``: a read-only hard link to a stored object, where the store can make one (a
local folder, a whole copy, the same file system); False elsewhere, for the caller to copy."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from cairn.core.errors import NotFound
from cairn.store.objects.chunked import ChunkedStore
from cairn.store.objects.local import LocalObjectStore
from cairn.store.objects.memory import MemoryObjectStore


def test_a_local_folder_links_its_read_only_objects(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "store")
    info = store.put_bytes(b"bytes to read")
    assert store.link_to(info.digest, tmp_path / "a") is True
    assert (tmp_path / "a").read_bytes() == b"bytes to read"
    linked = os.stat(tmp_path / "a")
    assert stat.S_IMODE(linked.st_mode) == 0o444 and linked.st_nlink == 2

    # An object left writable (by some older write) is sealed before it is linked.
    os.chmod(tmp_path / "a", 0o644)
    assert store.link_to(info.digest, tmp_path / "b") is True
    assert stat.S_IMODE(os.stat(tmp_path / "b").st_mode) == 0o444

    with pytest.raises(FileExistsError):
        store.link_to(info.digest, tmp_path / "a")  # never over a file: the caller renames
    with pytest.raises(NotFound):
        store.link_to(MemoryObjectStore().put_bytes(b"elsewhere").digest, tmp_path / "c")


def test_no_link_where_the_file_system_refuses_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path / "store")
    digest = store.put_bytes(b"x").digest
    for code in (errno.EXDEV, errno.EMLINK, errno.EPERM):

        def refuse(*_: object, code: int = code, **__: object) -> None:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "link", refuse)
        assert store.link_to(digest, tmp_path / "a") is False
    assert not (tmp_path / "a").exists()


def test_other_stores_and_chunked_objects_do_not_link(tmp_path: Path) -> None:
    memory = MemoryObjectStore()
    assert memory.link_to(memory.put_bytes(b"x").digest, tmp_path / "m") is False
    chunked = ChunkedStore(
        LocalObjectStore(tmp_path / "store"), chunk_size=64 << 10, min_file=1 << 20
    )
    whole = chunked.put_bytes(b"small, kept whole")
    assert chunked.link_to(whole.digest, tmp_path / "w") is True
    big = chunked.put_bytes(os.urandom(3 << 20))
    assert chunked.link_to(big.digest, tmp_path / "big") is False  # kept as chunks
    assert not (tmp_path / "big").exists()
