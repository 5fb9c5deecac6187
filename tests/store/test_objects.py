"""Object stores: one contract, run against every adapter."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cairn.core.digest import Digest, digest_bytes
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound
from cairn.core.objects import ObjectInfo
from cairn.store.objects import LocalObjectStore, MemoryObjectStore, ObjectStore

MISSING = Digest("0" * 64)
MALFORMED = [
    "",
    "abc",
    "a" * 63,
    "a" * 65,
    "A" * 64,  # digests are lowercase
    "g" * 64,
    "../x",
    "../" + "a" * 61,
    "aa/" + "a" * 61,
    "/" + "a" * 63,
    "a" * 62 + "\n",
    "..",
]


class ChunkedStream:
    """A file-like object with only ``read``, giving at most ``step`` bytes a call (a pipe)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        chunk, self._data = self._data[:n], self._data[n:]
        return bytes(chunk)


class FailingStream(io.RawIOBase):
    """Gives ``good`` bytes, then fails as a broken network stream would."""

    def __init__(self, good: bytes) -> None:
        self._good: bytes | None = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._good is None:
            raise ConnectionResetError("source went away")
        n = len(self._good)
        buffer[:n] = self._good
        self._good = None
        return n


class ObjectStoreContract:
    """What every ``ObjectStore`` promises. Subclasses provide the fixture and two hooks."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        raise NotImplementedError

    def corrupt(self, store: ObjectStore, digest: Digest) -> None:
        """Change the stored bytes of ``digest`` without changing its name."""
        raise NotImplementedError

    def stored_count(self, store: ObjectStore) -> int:
        """How many objects the backend really holds."""
        raise NotImplementedError

    def truncate(self, store: ObjectStore, digest: Digest) -> None:
        """Cut the last byte off the stored bytes of ``digest``."""
        raise NotImplementedError

    # -- writes and reads ----------------------------------------------------

    def test_put_bytes_round_trip(self, store: ObjectStore) -> None:
        info = store.put_bytes(b"hello cairn")
        assert info == ObjectInfo(digest_bytes(b"hello cairn"), 11)
        assert store.exists(info.digest)
        assert store.size(info.digest) == 11
        with store.open(info.digest) as f:
            assert f.read() == b"hello cairn"

    def test_put_stream_round_trip(self, store: ObjectStore) -> None:
        data = os.urandom(300_000)
        info = store.put_stream(io.BytesIO(data))
        assert info == ObjectInfo(digest_bytes(data), len(data))
        with store.open(info.digest) as f:
            assert f.read() == data

    def test_put_stream_without_readinto(self, store: ObjectStore) -> None:
        data = os.urandom(100_000)
        info = store.put_stream(ChunkedStream(data, step=7_001))  # type: ignore[arg-type]
        assert info == ObjectInfo(digest_bytes(data), len(data))

    def test_put_file_round_trip(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(70_000)
        src = tmp_path / "in.bin"
        src.write_bytes(data)
        info = store.put_file(src)
        assert info == ObjectInfo(digest_bytes(data), len(data))
        assert store.put_file(str(src)) == info
        dest = tmp_path / "out.bin"
        assert store.copy_to_file(info.digest, dest) == len(data)
        assert dest.read_bytes() == data

    def test_progress_is_told_of_every_byte(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
        src = tmp_path / "in.bin"
        src.write_bytes(data)
        for put in (
            lambda told: store.put_file(src, told),
            lambda told: store.put_stream(io.BytesIO(data), told),
            lambda told: store.put_stream(ChunkedStream(data, step=70_001), told),  # type: ignore[arg-type]
        ):
            told: list[int] = []
            info = put(told.append)
            assert sum(told) == len(data) and all(n > 0 for n in told)
        told = []
        assert store.copy_to_file(info.digest, tmp_path / "out.bin", told.append) == len(data)
        assert sum(told) == len(data)

    def test_put_file_missing_is_not_found(self, store: ObjectStore, tmp_path: Path) -> None:
        with pytest.raises(NotFound):
            store.put_file(tmp_path / "nope")

    def test_empty_object(self, store: ObjectStore, tmp_path: Path) -> None:
        info = store.put_bytes(b"")
        assert info == ObjectInfo(digest_bytes(b""), 0)
        assert store.put_stream(io.BytesIO()) == info
        assert store.size(info.digest) == 0
        with store.open(info.digest) as f:
            assert f.read() == b""
        dest = tmp_path / "empty"
        assert store.copy_to_file(info.digest, dest) == 0
        assert dest.read_bytes() == b""

    def test_identical_bytes_are_stored_once(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(5_000)
        src = tmp_path / "same.bin"
        src.write_bytes(data)
        infos = {
            store.put_bytes(data),
            store.put_bytes(data),
            store.put_stream(io.BytesIO(data)),
            store.put_file(src),
        }
        assert infos == {ObjectInfo(digest_bytes(data), len(data))}
        assert self.stored_count(store) == 1

    def test_reader_supports_partial_reads(self, store: ObjectStore) -> None:
        data = bytes(range(256)) * 40
        digest = store.put_bytes(data).digest
        f = store.open(digest)
        assert isinstance(f, io.BufferedIOBase)  # so readinto is there (BinaryIO lacks it)
        assert f.readable()
        assert not f.writable()
        assert f.read(10) == data[:10]
        buf = bytearray(100)
        assert f.readinto(buf) == 100
        assert bytes(buf) == data[10:110]
        assert f.read() == data[110:]
        assert f.read(5) == b""
        f.close()
        assert f.closed
        with pytest.raises(ValueError):
            f.read(1)

    def test_large_stream_in_chunks(self, store: ObjectStore) -> None:
        data = os.urandom(20 * 1024 * 1024 + 123)
        info = store.put_stream(ChunkedStream(data, step=3 * 1024 * 1024 + 1))  # type: ignore[arg-type]
        assert info == ObjectInfo(digest_bytes(data), len(data))
        got = bytearray()
        buf = memoryview(bytearray(1024 * 1024))
        with store.open(info.digest) as f:
            assert isinstance(f, io.BufferedIOBase)
            while n := f.readinto(buf):
                got += buf[:n]
        assert got == data

    def test_delete(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"short-lived").digest
        store.delete(digest)
        assert not store.exists(digest)
        store.delete(digest)  # absent: no error
        with pytest.raises(NotFound):
            store.open(digest)

    # -- writers ---------------------------------------------------------------

    def test_writer_round_trip_in_pieces(self, store: ObjectStore) -> None:
        data = os.urandom(3 * 1024 * 1024 + 777)  # several chunks, odd boundaries
        with store.open_writer() as writer:
            writer.write(data[:10])
            writer.write(bytearray(data[10:1_500_000]))
            writer.write(memoryview(data)[1_500_000:])
            info = writer.commit()
        assert info == ObjectInfo(digest_bytes(data), len(data))
        with store.open(info.digest) as f:
            assert f.read() == data
        assert self.stored_count(store) == 1

    def test_writer_of_nothing_is_the_empty_object(self, store: ObjectStore) -> None:
        with store.open_writer() as writer:
            info = writer.commit()
        assert info == ObjectInfo(digest_bytes(b""), 0)
        assert store.exists(info.digest)

    def test_writer_keeps_its_own_copy(self, store: ObjectStore) -> None:
        buffer = bytearray(b"a" * 100_000)
        with store.open_writer() as writer:
            writer.write(buffer)
            buffer[:] = b"b" * 100_000  # the caller reuses its buffer
            info = writer.commit()
        assert info.digest == digest_bytes(b"a" * 100_000)
        with store.open(info.digest) as f:
            assert f.read() == b"a" * 100_000

    def test_writer_dedups_like_a_put(self, store: ObjectStore) -> None:
        data = os.urandom(2 * 1024 * 1024)
        first = store.put_bytes(data)
        with store.open_writer() as writer:
            writer.write(data)
            assert writer.commit(expected=first.digest) == first
        assert self.stored_count(store) == 1

    def test_writer_with_the_wrong_expected_digest_stores_nothing(self, store: ObjectStore) -> None:
        data = os.urandom(1_200_000)
        with store.open_writer() as writer:
            writer.write(data)
            with pytest.raises(InvalidArgument) as excinfo:
                writer.commit(expected=MISSING)
        assert excinfo.value.field == "digest"
        assert excinfo.value.details["actual"] == digest_bytes(data)
        assert not store.exists(digest_bytes(data))
        assert self.stored_count(store) == 0

    def test_writer_rejects_a_malformed_expected_digest(self, store: ObjectStore) -> None:
        with store.open_writer() as writer:
            writer.write(b"x")
            with pytest.raises(InvalidArgument):
                writer.commit(expected=Digest("../" + "a" * 61))
        assert self.stored_count(store) == 0

    def test_writer_abort_and_failed_block_store_nothing(self, store: ObjectStore) -> None:
        writer = store.open_writer()
        writer.write(b"never mind")
        writer.abort()
        writer.abort()  # twice is fine
        with pytest.raises(ValueError):
            writer.write(b"more")
        with pytest.raises(ValueError):
            writer.commit()
        with pytest.raises(RuntimeError), store.open_writer() as failing:
            failing.write(os.urandom(1_500_000))
            raise RuntimeError("the source broke")
        with store.open_writer() as unfinished:
            unfinished.write(b"left without a commit")
        assert self.stored_count(store) == 0

    def test_writer_is_closed_after_commit(self, store: ObjectStore) -> None:
        with store.open_writer() as writer:
            writer.write(b"once")
            writer.commit()
            writer.abort()  # no-op: the object stays
            with pytest.raises(ValueError):
                writer.write(b"again")
        assert store.exists(digest_bytes(b"once"))

    def test_concurrent_writers_of_same_content(self, store: ObjectStore) -> None:
        data = os.urandom(2 * 1024 * 1024 + 3)
        start = threading.Barrier(4)

        def write(_: int) -> ObjectInfo:
            start.wait()
            with store.open_writer() as writer:
                for i in range(0, len(data), 700_000):
                    writer.write(data[i : i + 700_000])
                return writer.commit()

        with ThreadPoolExecutor(max_workers=4) as pool:
            infos = set(pool.map(write, range(4)))
        assert infos == {ObjectInfo(digest_bytes(data), len(data))}
        assert self.stored_count(store) == 1

    # -- missing and malformed -------------------------------------------------

    def test_missing_object(self, store: ObjectStore, tmp_path: Path) -> None:
        assert not store.exists(MISSING)
        with pytest.raises(NotFound) as excinfo:
            store.open(MISSING)
        assert excinfo.value.details["digest"] == MISSING
        with pytest.raises(NotFound):
            store.size(MISSING)
        with pytest.raises(NotFound):
            store.copy_to_file(MISSING, tmp_path / "out")
        assert not (tmp_path / "out").exists()
        store.delete(MISSING)

    @pytest.mark.parametrize("bad", MALFORMED)
    def test_malformed_digest_is_rejected(
        self, store: ObjectStore, tmp_path: Path, bad: str
    ) -> None:
        digest = Digest(bad)
        for call in (
            lambda: store.open(digest),
            lambda: store.exists(digest),
            lambda: store.size(digest),
            lambda: store.delete(digest),
            lambda: store.copy_to_file(digest, tmp_path / "out"),
        ):
            with pytest.raises(InvalidArgument) as excinfo:
                call()
            assert excinfo.value.field == "digest"
        assert not (tmp_path / "out").exists()

    # -- corruption --------------------------------------------------------------

    def test_corrupt_object_fails_a_full_read(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"precious bytes" * 1000).digest
        self.corrupt(store, digest)
        with store.open(digest) as f, pytest.raises(CorruptObject) as excinfo:
            f.read()
        assert excinfo.value.details["digest"] == digest
        assert digest in str(excinfo.value)

    def test_corrupt_object_fails_a_chunked_read(self, store: ObjectStore) -> None:
        data = os.urandom(200_000)
        digest = store.put_bytes(data).digest
        self.corrupt(store, digest)
        with store.open(digest) as f, pytest.raises(CorruptObject):
            while f.read(4096):
                pass
        store.put_bytes(data)  # stored again (the read quarantined it), damaged again
        self.corrupt(store, digest)
        with store.open(digest) as f, pytest.raises(CorruptObject):
            f.read(len(data))  # exactly the size: caught without a further read

    def test_corrupt_object_is_never_copied(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(50_000)
        digest = store.put_bytes(data).digest
        self.corrupt(store, digest)
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(CorruptObject):
            store.copy_to_file(digest, out / "new.bin")
        assert list(out.iterdir()) == []
        (out / "old.bin").write_bytes(b"keep me")
        store.put_bytes(data)  # stored again (the copy quarantined it), damaged again
        self.corrupt(store, digest)
        with pytest.raises(CorruptObject):
            store.copy_to_file(digest, out / "old.bin")
        assert list(out.iterdir()) == [out / "old.bin"]
        assert (out / "old.bin").read_bytes() == b"keep me"

    # -- healing: quarantine on a bad read, replacement on a put ---------------------

    def test_a_read_that_finds_an_object_corrupt_quarantines_it(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        data = os.urandom(70_000)
        digest = store.put_bytes(data).digest
        self.corrupt(store, digest)
        with store.open(digest) as f, pytest.raises(CorruptObject, match="moved aside"):
            f.read()
        assert not store.exists(digest)  # reported missing: the next upload stores it
        with pytest.raises(NotFound):
            store.size(digest)
        # A read still says why it cannot give the bytes: damaged, not absent.
        with pytest.raises(CorruptObject, match="moved them aside"):
            store.copy_to_file(digest, tmp_path / "out.bin")
        with pytest.raises(CorruptObject):
            store.open(digest)
        assert not (tmp_path / "out.bin").exists()
        [aside] = store.quarantined()
        assert (aside.digest, aside.size) == (digest, len(data))
        assert store.put_bytes(data).digest == digest
        with store.open(digest) as f:
            assert f.read() == data
        assert store.quarantined() == [aside]  # kept for fsck, until someone removes it

    def test_a_corrupt_copy_to_file_quarantines_too(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        digest = store.put_bytes(b"weights" * 5000).digest
        self.corrupt(store, digest)
        with pytest.raises(CorruptObject):
            store.copy_to_file(digest, tmp_path / "out.bin")
        assert not store.exists(digest)
        assert [q.digest for q in store.quarantined()] == [digest]

    @pytest.mark.parametrize("way", ["put_bytes", "put_stream", "put_file", "writer"])
    def test_a_put_of_the_same_bytes_heals_a_corrupt_copy(
        self, store: ObjectStore, tmp_path: Path, way: str
    ) -> None:
        data = os.urandom(3 * 1024 * 1024 + 11)  # several chunks
        digest = store.put_bytes(data).digest
        self.corrupt(store, digest)  # unnoticed: nothing has read it
        source = tmp_path / "source.bin"
        source.write_bytes(data)
        if way == "put_bytes":
            info = store.put_bytes(data)
        elif way == "put_stream":
            info = store.put_stream(io.BytesIO(data))
        elif way == "put_file":
            info = store.put_file(source)
        else:
            with store.open_writer() as writer:
                writer.write(data)
                info = writer.commit(digest)
        assert info == ObjectInfo(digest, len(data))
        with store.open(digest) as f:
            assert f.read() == data
        assert self.stored_count(store) == 1
        assert store.quarantined() == []

    def test_a_put_heals_a_truncated_copy(self, store: ObjectStore) -> None:
        data = os.urandom(10_000)
        digest = store.put_bytes(data).digest
        self.truncate(store, digest)
        assert store.put_bytes(data).digest == digest
        assert store.size(digest) == len(data)
        with store.open(digest) as f:
            assert f.read() == data

    def test_verify_finds_and_quarantines_every_corrupt_object(self, store: ObjectStore) -> None:
        digests = [store.put_bytes(os.urandom(5000 + i)).digest for i in range(5)]
        self.corrupt(store, digests[1])
        self.corrupt(store, digests[3])
        assert sorted(store.verify()) == sorted([digests[1], digests[3]])
        assert sorted(q.digest for q in store.quarantined()) == sorted([digests[1], digests[3]])
        assert store.verify() == []
        assert [store.exists(d) for d in digests] == [True, False, True, False, True]
        assert store.verify([digests[0], digests[1]]) == [digests[1]]  # still corrupt
        assert store.verify([MISSING]) == []  # a missing one is skipped

    def test_a_sweep_never_touches_objects(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"kept").digest
        store.sweep(0.0)
        assert store.exists(digest)

    def test_iter_objects_lists_each_stored_object_with_its_size_and_time(
        self, store: ObjectStore
    ) -> None:
        assert list(store.iter_objects()) == []
        before = time.time()
        items = [b"", b"one", os.urandom(70_000), b"one"]
        infos = [store.put_bytes(item) for item in items]
        listed = {o.digest: o for o in store.iter_objects()}
        assert sorted(listed) == sorted({i.digest for i in infos})
        for info in infos:
            assert listed[info.digest].size == info.size
            # S3 keeps whole seconds; clocks of a server and this host differ a little.
            assert before - 5 <= listed[info.digest].mtime <= time.time() + 5
        self.corrupt(store, infos[2].digest)
        assert store.verify() == [infos[2].digest]
        assert infos[2].digest not in {o.digest for o in store.iter_objects()}  # quarantined

    # -- copy_to_file --------------------------------------------------------------

    # -- batches ------------------------------------------------------------

    def test_missing_names_what_is_not_stored_once_in_order(self, store: ObjectStore) -> None:
        a = store.put_bytes(b"a").digest
        b, c = digest_bytes(b"b"), digest_bytes(b"c")
        assert store.missing([c, a, b, c, a]) == [c, b]
        assert store.missing([]) == []
        with pytest.raises(InvalidArgument):
            store.missing(["../x"])  # type: ignore[list-item]

    def test_put_many_stores_each_like_put_bytes(self, store: ObjectStore) -> None:
        items = [os.urandom(n) for n in (0, 1, 4096, 70_000)] + [b"same", b"same"]
        infos = store.put_many(items)
        assert infos == [ObjectInfo(digest_bytes(i), len(i)) for i in items]
        assert store.missing([i.digest for i in infos]) == []
        for item, info in zip(items, infos, strict=True):
            with store.open(info.digest) as f:
                assert f.read() == item
        assert store.put_many([]) == []
        assert store.put_many(items[:2]) == infos[:2]  # stored again: the same, once

    def test_put_many_heals_a_corrupt_copy(self, store: ObjectStore) -> None:
        data = os.urandom(5000)
        digest = store.put_bytes(data).digest
        self.corrupt(store, digest)
        assert store.put_many([data, b"other"])[0] == ObjectInfo(digest, len(data))
        with store.open(digest) as f:
            assert f.read() == data

    def test_put_many_after_a_read_quarantined_the_object(self, store: ObjectStore) -> None:
        data = os.urandom(5000)
        digest = store.put_bytes(data).digest
        self.corrupt(store, digest)
        with pytest.raises(CorruptObject), store.open(digest) as f:
            f.read()
        assert store.missing([digest]) == [digest]
        store.put_many([data])
        assert store.missing([digest]) == []

    def test_copy_to_file_replaces_atomically(self, store: ObjectStore, tmp_path: Path) -> None:
        out = tmp_path / "out"
        out.mkdir()
        dest = out / "model.bin"
        dest.write_bytes(b"old version")
        data = os.urandom(3 * 1024 * 1024 + 5)  # several chunks
        digest = store.put_bytes(data).digest
        assert store.copy_to_file(digest, str(dest)) == len(data)
        assert dest.read_bytes() == data
        assert list(out.iterdir()) == [dest]  # no temp file left behind

    def test_copy_to_file_needs_an_existing_folder(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        digest = store.put_bytes(b"x").digest
        with pytest.raises(NotFound):
            store.copy_to_file(digest, tmp_path / "no" / "such" / "file")
        with pytest.raises(InvalidArgument):
            store.copy_to_file(digest, tmp_path)

    # -- concurrency and properties ------------------------------------------------

    def test_concurrent_puts_of_same_content(self, store: ObjectStore) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)
        start = threading.Barrier(8)

        def put(i: int) -> ObjectInfo:
            start.wait()
            return store.put_stream(io.BytesIO(data)) if i % 2 else store.put_bytes(data)

        with ThreadPoolExecutor(max_workers=8) as pool:
            infos = set(pool.map(put, range(8)))
        assert infos == {ObjectInfo(digest_bytes(data), len(data))}
        assert self.stored_count(store) == 1
        with store.open(digest_bytes(data)) as f:
            assert f.read() == data

    # The store fixture differs per subclass, which is the point of a contract test.
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.binary(max_size=5000))
    def test_round_trip_property(self, store: ObjectStore, data: bytes) -> None:
        # One store across examples is fine: content addressing makes puts independent.
        info = store.put_stream(io.BytesIO(data))
        assert info == ObjectInfo(digest_bytes(data), len(data))
        assert store.put_bytes(data) == info
        with store.open(info.digest) as f:
            assert f.read() == data


class TestMemoryObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        with MemoryObjectStore() as s:
            yield s

    def corrupt(self, store: ObjectStore, digest: Digest) -> None:
        assert isinstance(store, MemoryObjectStore)
        data = bytearray(store._objects[digest])
        data[len(data) // 2] ^= 0xFF
        store._objects[digest] = bytes(data)

    def stored_count(self, store: ObjectStore) -> int:
        assert isinstance(store, MemoryObjectStore)
        return len(store._objects)

    def truncate(self, store: ObjectStore, digest: Digest) -> None:
        assert isinstance(store, MemoryObjectStore)
        store._objects[digest] = store._objects[digest][:-1]


def _object_files(root: Path) -> list[Path]:
    return [p for p in (root / "objects").rglob("*") if p.is_file()]


class TestLocalObjectStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        with LocalObjectStore(tmp_path / "store") as s:
            yield s

    def corrupt(self, store: ObjectStore, digest: Digest) -> None:
        path = self.path_of(store, digest)
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    def stored_count(self, store: ObjectStore) -> int:
        assert isinstance(store, LocalObjectStore)
        root = Path(store.root)
        assert list((root / "tmp").iterdir()) == []  # no temp file outlives a put
        return len(_object_files(root))

    def truncate(self, store: ObjectStore, digest: Digest) -> None:
        path = self.path_of(store, digest)
        path.chmod(0o644)
        path.write_bytes(path.read_bytes()[:-1])

    @staticmethod
    def path_of(store: ObjectStore, digest: Digest) -> Path:
        assert isinstance(store, LocalObjectStore)
        return Path(store.root) / "objects" / digest[:2] / digest[2:]

    def test_constructor_touches_nothing(self, tmp_path: Path) -> None:
        LocalObjectStore(tmp_path / "lazy")
        assert not (tmp_path / "lazy").exists()

    def test_layout_and_read_only_objects(self, store: ObjectStore) -> None:
        digest = store.put_bytes(b"layout").digest
        path = self.path_of(store, digest)
        assert path.read_bytes() == b"layout"
        assert stat.S_IMODE(path.stat().st_mode) == 0o444

    def test_failing_source_leaves_nothing(self, store: ObjectStore) -> None:
        with pytest.raises(ConnectionResetError):
            store.put_stream(FailingStream(os.urandom(1024 * 1024)))  # type: ignore[arg-type]
        assert self.stored_count(store) == 0

    def test_truncated_object_is_corrupt(self, store: ObjectStore, tmp_path: Path) -> None:
        data = os.urandom(10_000)
        digest = store.put_bytes(data).digest
        path = self.path_of(store, digest)
        path.chmod(0o644)
        path.write_bytes(data[:-1])
        with store.open(digest) as f, pytest.raises(CorruptObject):
            f.read()
        store.put_bytes(data)  # stored again (the read quarantined it), cut short again
        self.truncate(store, digest)
        with pytest.raises(CorruptObject):
            store.copy_to_file(digest, tmp_path / "out")
        assert not (tmp_path / "out").exists()

    @pytest.mark.slow
    def test_two_gib_file_streams_in_little_memory(self, tmp_path: Path) -> None:
        big, back = tmp_path / "big.bin", tmp_path / "back.bin"
        with big.open("wb") as f:
            f.truncate(2 * 1024**3)  # sparse: no disk used, reads as zeros
        script = textwrap.dedent(
            """
            import sys
            from cairn.store.objects import LocalObjectStore
            root, big, back = sys.argv[1:]
            store = LocalObjectStore(root)
            info = store.put_file(big)
            assert store.copy_to_file(info.digest, back) == info.size == 2 * 1024**3
            # VmHWM, not ru_maxrss: the latter keeps the forking parent's size across exec.
            status = open("/proc/self/status").read()
            print(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM")))
            """
        )
        try:
            done = subprocess.run(
                [sys.executable, "-c", script, str(tmp_path / "store"), str(big), str(back)],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            assert back.stat().st_size == 2 * 1024**3
        finally:
            for path in (big, back, *_object_files(tmp_path / "store")):
                path.unlink(missing_ok=True)
        peak_kib = int(done.stdout.split()[-1])  # VmHWM is in KiB
        assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB"


class TestLocalObjectStoreWithDirectIO(TestLocalObjectStore):
    """The same contract with big objects written and read around the page cache (the
    server's default); tests/store/test_direct_io.py has the big-object cases."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        with LocalObjectStore(tmp_path / "store", direct_io=True) as s:
            yield s
