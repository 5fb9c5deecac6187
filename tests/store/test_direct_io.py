"""Big objects in the local store: written and read around the page cache (O_DIRECT)
where the file system allows it, through it where it does not."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.core.digest import digest_bytes
from cairn.core.errors import CorruptObject
from cairn.files import direct, writing
from cairn.files.direct import open_direct
from cairn.store.objects import LocalObjectStore

MiB = 1 << 20
BIG = 24 * MiB + 12_345  # past the 8 MiB kept in the page cache, and not in whole blocks


@pytest.fixture(scope="module")
def data() -> bytes:
    return os.urandom(BIG)


def _direct_io_works(folder: Path) -> bool:
    probe = folder / "probe"
    probe.write_bytes(b"")
    fd = open_direct(str(probe), os.O_RDONLY)
    if fd is None:
        return False
    os.close(fd)
    return True


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalObjectStore]:
    if not _direct_io_works(tmp_path):
        pytest.skip(f"the file system of {tmp_path} has no O_DIRECT")
    with LocalObjectStore(tmp_path / "store", direct_io=True) as s:
        yield s


def _path(store: LocalObjectStore, digest: str) -> Path:
    return Path(store.root) / "objects" / digest[:2] / digest[2:]


def _cached(path: Path, offset: int) -> bool:
    """Whether the page at ``offset`` is in the page cache (the first probe only: a
    probe starts read-ahead of what it misses)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(4096)], offset, os.RWF_NOWAIT)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _read_ahead_threads(*, settle: bool = True) -> list[threading.Thread]:
    """The read-ahead threads running; with ``settle``, given a moment to finish first:
    a closed reader does not wait for its worker, which stops on its own."""
    deadline = time.monotonic() + (10 if settle else 0)
    while (running := [t for t in threading.enumerate() if t.name == "cairn-read-ahead"]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.01)
    return running


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="needs Linux's RWF_NOWAIT to look")
def test_big_object_is_written_around_the_page_cache(store: LocalObjectStore, data: bytes) -> None:
    with store.open_writer() as writer:
        for start in range(0, len(data), 300_001):  # pieces that straddle the chunks
            writer.write(data[start : start + 300_001])
        info = writer.commit()
    assert info.digest == digest_bytes(data) and info.size == BIG
    path = _path(store, info.digest)
    assert _cached(path, 0)  # the start of every object goes through the cache
    assert not _cached(path, 16 * MiB)


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="needs Linux's RWF_NOWAIT to look")
def test_without_direct_io_big_objects_stay_in_the_page_cache(tmp_path: Path, data: bytes) -> None:
    with LocalObjectStore(tmp_path / "store") as store:  # the embedded client's default
        with store.open_writer() as writer:
            writer.write(data)
            info = writer.commit()
        assert _cached(_path(store, info.digest), 16 * MiB)
        with store.open(info.digest) as f:
            assert f.read() == data
        assert _read_ahead_threads() == []


def test_big_object_round_trips(store: LocalObjectStore, data: bytes, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    info = store.put_file(source)
    assert info.digest == digest_bytes(data)
    with store.open(info.digest) as f:
        assert f.read(5) == data[:5]
        assert f.read() == data[5:]
    out = tmp_path / "out.bin"
    assert store.copy_to_file(info.digest, out) == BIG
    assert out.read_bytes() == data
    assert _read_ahead_threads() == []


def test_stopping_a_read_early_stops_its_read_ahead(store: LocalObjectStore, data: bytes) -> None:
    digest = store.put_bytes(data).digest
    for _ in range(3):
        with store.open(digest) as f:
            assert f.read(MiB) == data[:MiB]
        assert _read_ahead_threads() == []


def test_truncated_big_object_is_corrupt(
    store: LocalObjectStore, data: bytes, tmp_path: Path
) -> None:
    digest = store.put_bytes(data).digest
    path = _path(store, digest)
    path.chmod(0o644)
    os.truncate(path, BIG - 10 * MiB)
    with store.open(digest) as f, pytest.raises(CorruptObject):
        f.read()
    assert not path.exists()  # quarantined by the read
    store.put_bytes(data)
    path.chmod(0o644)
    os.truncate(path, BIG - 10 * MiB)
    with pytest.raises(CorruptObject):
        store.copy_to_file(digest, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_changed_byte_past_the_cached_start_is_corrupt(
    store: LocalObjectStore, data: bytes
) -> None:
    digest = store.put_bytes(data).digest
    path = _path(store, digest)
    path.chmod(0o644)
    with path.open("r+b") as f:
        f.seek(20 * MiB)
        f.write(bytes([data[20 * MiB] ^ 0xFF]))
    with store.open(digest) as f, pytest.raises(CorruptObject):
        f.read()  # the reader sees the change, cached or not


def test_refused_direct_write_falls_back_to_the_page_cache(
    store: LocalObjectStore, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A device that refuses the alignment cannot be made here; what the writer does
    # when told so can be checked.
    calls: list[int] = []

    def refuse(fd: int, view: memoryview, offset: int) -> int:
        calls.append(offset)
        return 0

    monkeypatch.setattr(writing, "pwrite_direct", refuse)
    with store.open_writer() as writer:
        writer.write(data)
        info = writer.commit()
    assert calls == [8 * MiB]  # asked once, then never again
    assert _path(store, info.digest).read_bytes() == data


def test_file_system_without_direct_io(
    tmp_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every file system here takes O_DIRECT (tmpfs too, since Linux 6.6); one that
    # refuses it is modelled by the refusal itself.
    def refuse(path: str, flags: int) -> None:
        return None

    monkeypatch.setattr(writing, "open_direct", refuse)
    monkeypatch.setattr(direct, "open_direct", refuse)
    with LocalObjectStore(tmp_path / "store", direct_io=True) as store:
        with store.open_writer() as writer:
            writer.write(data)
            info = writer.commit()
        assert info.digest == digest_bytes(data)
        with store.open(info.digest) as f:
            assert f.read() == data


def test_big_put_bytes_goes_around_the_page_cache_too(store: LocalObjectStore, data: bytes) -> None:
    info = store.put_bytes(data)
    assert info.digest == digest_bytes(data)
    if hasattr(os, "RWF_NOWAIT"):
        assert not _cached(_path(store, info.digest), 16 * MiB)
    with store.open(info.digest) as f:
        assert f.read() == data


def test_readers_beyond_the_cap_read_through_the_page_cache(
    store: LocalObjectStore, data: bytes
) -> None:
    digest = store.put_bytes(data).digest
    streams = [store.open(digest) for _ in range(12)]  # the cap is 8
    try:
        for f in streams:
            assert f.read(MiB) == data[:MiB]
        assert len(_read_ahead_threads(settle=False)) == 8
        for f in streams:
            assert f.read() == data[MiB:]
    finally:
        for f in streams:
            f.close()
    assert _read_ahead_threads() == []
    with store.open(digest) as f:  # the slots came back
        assert f.read() == data


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pools_and_reader_slots_are_not_shared_with_a_forked_child() -> None:
    buffer = direct.chunks.take()
    buffer[:6] = b"PARENT"
    direct.chunks.give_back(buffer)
    slots = direct._readers.free
    held = 0
    while slots.acquire(blocking=False):  # as if eight downloads were under way
        held += 1
    try:
        pid = os.fork()
        if pid == 0:  # the child: empty pools, free slots, and its writes stay its own
            fresh = direct.chunks.take()[:6] == bytes(6)
            free = direct._readers.free.acquire(blocking=False)
            buffer[:6] = b"CHILD!"
            os._exit(0 if fresh and free else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        for _ in range(held):
            slots.release()
    assert held == 8
    assert os.waitstatus_to_exitcode(status) == 0
    assert buffer[:6] == b"PARENT"


# -- disk errors --------------------------------------------------------------------------
# A failing disk cannot be made here; the operating system's error is injected where the
# disk would raise it (a full disk: tests/store/test_full_disk.py).


def test_a_failed_read_past_the_cached_start_fails_every_later_read(
    store: LocalObjectStore, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = store.put_bytes(data).digest
    real = os.preadv

    def breaks_at_16_mib(fd: int, buffers: list[memoryview], offset: int, *flags: int) -> int:
        if offset >= 16 * MiB:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, buffers, offset, *flags)

    monkeypatch.setattr(os, "preadv", breaks_at_16_mib)
    with store.open(digest) as f:
        assert f.read(8 * MiB) == data[: 8 * MiB]  # before the failure: good bytes
        for _ in range(2):
            with pytest.raises(OSError) as caught:
                f.read()
            assert caught.value.errno == errno.EIO
    monkeypatch.undo()
    assert _read_ahead_threads() == []  # the worker stopped and gave back its slot
    with store.open(digest) as f:
        assert f.read() == data
