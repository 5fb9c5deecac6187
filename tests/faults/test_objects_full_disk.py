"""A full disk under the object store or a download is ``StorageFull`` (HTTP 507
``storage_full``, not retried) on every write path, nothing half-written stays, and writes
work again once space is freed (issue 12).

On a real small file system: a tmpfs mounted for the test (we run as root here; where
mounting is not allowed these tests skip, and ``tests/store/test_full_disk.py`` raises the
kernel's ENOSPC at each syscall instead). tmpfs also shows what direct I/O does on a file
system that may refuse ``O_DIRECT``: the writes fall back, the bytes are the same.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import cairn
from cairn.core.api import API_PREFIX
from cairn.core.digest import digest_bytes
from cairn.core.errors import StorageFull
from cairn.core.settings import Settings
from cairn.store.objects import LocalObjectStore
from tests.faults.conftest import tmpfs
from tests.servers import serve_in_thread

OCTETS = {"Content-Type": "application/octet-stream"}  # a write of bytes says so

MiB = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """8 MiB of disk, unmounted at the end."""
    with tmpfs(tmp_path / "small", "8m") as mount:
        yield mount


def used(folder: Path) -> int:
    stat = os.statvfs(folder)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def fill(folder: Path) -> Path:
    """A file that takes every byte left on ``folder``'s file system."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 16, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    assert os.statvfs(folder).f_bavail == 0
    return filler


def leftovers(objects: Path) -> list[Path]:
    """Temp files, and objects (there should be none the tests did not ask for)."""
    return [p for p in (objects / "tmp").glob("*")] if (objects / "tmp").exists() else []


PUTS: dict[str, Callable[[LocalObjectStore, bytes, Path], object]] = {
    "put_bytes": lambda store, data, _: store.put_bytes(data),
    "put_stream": lambda store, data, _: store.put_stream(io.BytesIO(data)),
    "put_file": lambda store, data, source: store.put_file(source),
    "writer": lambda store, data, _: _write_in_pieces(store, data),
}


def _write_in_pieces(store: LocalObjectStore, data: bytes) -> object:
    with store.open_writer() as writer:
        for start in range(0, len(data), MiB):
            writer.write(data[start : start + MiB])
        return writer.commit()


@pytest.mark.parametrize("direct_io", [False, True], ids=["buffered", "direct"])
@pytest.mark.parametrize("way", list(PUTS))
def test_every_put_onto_a_full_disk_is_storage_full_and_leaves_nothing(
    small_disk: Path, tmp_path: Path, way: str, direct_io: bool
) -> None:
    store = LocalObjectStore(small_disk / "objects", direct_io=direct_io)
    store.put_bytes(b"the store exists")  # its folders: what an empty disk holds after
    before = used(small_disk)
    data = os.urandom(12 * MiB)  # more than the disk holds
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with pytest.raises(StorageFull, match="no room left for a new object"):
        PUTS[way](store, data, source)
    assert leftovers(small_disk / "objects") == []
    assert not store.exists(digest_bytes(data))
    assert used(small_disk) == before  # nothing half-written, anywhere
    # Room again (a smaller object fits): the same store takes it, whatever the way.
    fits = data[: 5 * MiB]
    source.write_bytes(fits)
    PUTS[way](store, fits, source)
    with store.open(digest_bytes(fits)) as f:
        assert f.read() == fits


def test_a_full_disk_refuses_even_a_small_object_until_space_is_freed(
    small_disk: Path,
) -> None:
    store = LocalObjectStore(small_disk / "objects")
    store.put_bytes(b"the store exists")
    filler = fill(small_disk)
    for put in (lambda: store.put_bytes(b"a manifest"), lambda: store.put_file(filler)):
        with pytest.raises(StorageFull):
            put()
    assert leftovers(small_disk / "objects") == []
    filler.unlink()
    assert store.put_bytes(b"a manifest").size == 10


def test_direct_io_on_tmpfs_falls_back_and_keeps_the_bytes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "48m") as disk:
        store = LocalObjectStore(disk / "objects", direct_io=True)
        data = os.urandom(20 * MiB + 123)  # past the cached head, not in whole blocks
        digest = store.put_bytes(data).digest
        with store.open(digest) as f:
            assert f.read() == data
        assert store.copy_to_file(digest, disk / "out.bin") == len(data)
        assert (disk / "out.bin").read_bytes() == data


def test_a_download_onto_a_full_disk_leaves_nothing_and_works_once_freed(
    small_disk: Path, tmp_path: Path
) -> None:
    data = os.urandom(6 * MiB)
    with cairn.Client(home=tmp_path / "home") as client:
        run = client.start_run()
        run.log_artifact("model.bin", data)
        run.log_artifact("folder", _folder(tmp_path / "folder", data))
        out = small_disk / "out"
        out.mkdir()
        filler = fill(small_disk)
        filler.unlink()
        filler = small_disk / "filler"
        filler.write_bytes(b"\0" * (4 * MiB))  # 4 MiB free: not enough
        for key, dest in (("model.bin", out / "model.bin"), ("folder", f"{out}/")):
            with pytest.raises(StorageFull) as caught:
                run.download_artifact(key, dest)
            assert str(out) in str(caught.value.details["path"])
            assert list(out.iterdir()) == []  # no temp file, no partial tree
        filler.unlink()
        run.download_artifact("model.bin", out / "model.bin")
        assert (out / "model.bin").read_bytes() == data


def _folder(root: Path, data: bytes) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(data[: 3 * MiB])
    (root / "sub" / "b.bin").write_bytes(data[3 * MiB :])
    return root


# -- through a server ---------------------------------------------------------------------
@pytest.fixture
def served(small_disk: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    # Objects kept whole: a chunked upload cut off by the full disk leaves the chunks it
    # stored to gc (docs/status.md), which these byte counts would see.
    settings = Settings(
        home=str(tmp_path / "home"), objects_uri=str(small_disk / "objects"), chunk_size=0
    )
    with serve_in_thread(settings) as url:
        httpx.post(
            f"{url}{API_PREFIX}/objects", headers=OCTETS, content=b"the store exists"
        ).raise_for_status()
        yield url, small_disk


def _storage_full(answer: httpx.Response) -> None:
    assert answer.status_code == 507, answer.text
    assert answer.json()["error"]["code"] == "storage_full"


def test_every_upload_route_onto_a_full_disk_is_507(served: tuple[str, Path]) -> None:
    url, disk = served
    api = f"{url}{API_PREFIX}"
    before = used(disk)
    big = os.urandom(12 * MiB)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(big), MiB):
            yield big[start : start + MiB]

    _storage_full(httpx.put(f"{api}/objects/{digest_bytes(big)}", headers=OCTETS, content=big))
    _storage_full(httpx.post(f"{api}/objects", headers=OCTETS, content=pieces()))
    # Multipart: the parts fit, their join does not.
    parts = [big[i * 2 * MiB : (i + 1) * 2 * MiB] for i in range(3)]
    for part in parts:
        assert httpx.put(
            f"{api}/objects/{digest_bytes(part)}", headers=OCTETS, content=part
        ).is_success
    body = {"parts": [digest_bytes(p) for p in parts], "digest": digest_bytes(b"".join(parts))}
    _storage_full(httpx.post(f"{api}/objects/compose", json=body))
    assert leftovers(disk / "objects") == []
    # A full disk refuses even the smallest object (the temp file has no block to grow).
    filler = fill(disk)
    small = b"a small manifest"
    _storage_full(httpx.put(f"{api}/objects/{digest_bytes(small)}", headers=OCTETS, content=small))
    filler.unlink()
    assert leftovers(disk / "objects") == []
    assert used(disk) == before + 6 * MiB  # the parts, nothing else
    # Space again: the same routes work.
    assert (
        httpx.put(f"{api}/objects/{digest_bytes(small)}", headers=OCTETS, content=small).status_code
        == 201
    )
    assert (
        httpx.post(f"{api}/objects", headers=OCTETS, content=pieces()).status_code == 507
    )  # still 12 MiB
    assert httpx.post(f"{api}/objects", headers=OCTETS, content=big[:MiB]).is_success


def test_the_http_client_is_told_at_once_not_after_retries(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, disk = served
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(12 * MiB))
    with cairn.Client(settings=Settings(url=url, retry_timeout=60.0)) as client:
        run = client.start_run()
        started = time.monotonic()
        with pytest.raises(StorageFull, match="no room left"):
            run.log_artifact("weights.bin", source)
        assert time.monotonic() - started < 10  # 507 is not retried
        assert leftovers(disk / "objects") == []
        source.write_bytes(os.urandom(3 * MiB))
        run.log_artifact("weights.bin", source)  # fits: works at once


# -- where a real disk may say it late: fsync, close, rename (raised at the syscall) -------
def _late(store_root: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``os.<name>`` fail with ENOSPC for files under ``store_root`` (after doing
    its work, for close: the descriptor is released, as the kernel does)."""
    real = getattr(os, name)

    def ours(path: str) -> bool:
        return str(store_root) in path

    def fails(*args: object, **kwargs: object) -> object:
        first = args[0]
        where = os.readlink(f"/proc/self/fd/{first}") if isinstance(first, int) else str(first)
        if name == "close" and ours(where):
            real(first)
        if ours(where) and (name != "fsync" or "/tmp/" in where):
            raise OSError(28, os.strerror(28))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, fails)


@pytest.mark.parametrize("syscall", ["fsync", "close", "replace"])
@pytest.mark.parametrize("size", [1000, 3 * MiB], ids=["inline", "streamed"])
def test_a_late_enospc_is_storage_full_and_leaves_nothing(
    tmp_path: Path, syscall: str, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    store.put_bytes(b"the store exists")
    data = os.urandom(size)
    _late(root, syscall, monkeypatch)
    with pytest.raises(StorageFull, match="no room left for a new object"):
        if size > MiB:
            store.put_stream(io.BytesIO(data))
        else:
            store.put_bytes(data)
    monkeypatch.undo()
    assert leftovers(root) == []
    assert not store.exists(digest_bytes(data))
    assert store.put_bytes(data).size == size
