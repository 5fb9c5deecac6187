"""A batch of small objects onto a full disk (issue 16): ``StorageFull``, no temp file
and no object of the batch left behind, and the same batch stored once space is freed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.core.digest import digest_bytes
from cairn.core.errors import StorageFull
from cairn.store.objects import LocalObjectStore
from tests.faults.conftest import tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small", "4m") as mount:
        yield mount


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_batch_that_does_not_fit_stores_nothing_of_it(small_disk: Path) -> None:
    store = LocalObjectStore(small_disk / "store")
    items = [os.urandom(64 * 1024) for _ in range(100)]  # 6.4 MiB onto 4 MiB
    with pytest.raises(StorageFull):
        store.put_many(items)
    assert files_under(small_disk / "store" / "tmp") == []
    assert files_under(small_disk / "store" / "objects") == []  # all or nothing of it
    fitting = items[:20]
    infos = store.put_many(fitting)
    assert [i.digest for i in infos] == [digest_bytes(i) for i in fitting]
    assert store.missing([i.digest for i in infos]) == []
    assert files_under(small_disk / "store" / "tmp") == []
