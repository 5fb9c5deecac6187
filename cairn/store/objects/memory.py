"""Objects in a dict: for tests, with the same semantics as the real stores."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

from cairn.core.digest import Digest, digest_bytes, parse_digest
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound
from cairn.core.objects import ObjectInfo, Progress
from cairn.files.reading import VerifyingReader, counting, open_source
from cairn.files.writing import write_file_atomically
from cairn.store.objects.port import (
    AbortingWriter,
    ClosingStore,
    Quarantined,
    StoredObject,
    check_expected_digest,
    verify_each,
)

__all__ = ["MemoryObjectStore", "MemoryObjectWriter"]

_CHUNK = 1 << 20


class MemoryObjectStore(ClosingStore):
    """Objects kept in memory. ``copy_to_file`` still writes a real file, atomically."""

    def __init__(self) -> None:
        # Tests may poke this dict to simulate corruption.
        self._objects: dict[Digest, bytes] = {}
        self._quarantine: list[Quarantined] = []
        self._written: dict[Digest, float] = {}  # when each object was last put
        self._recipes: dict[Digest, tuple[bytes, float]] = {}  # digest -> (recipe, written)
        self._lock = threading.Lock()

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo:
        with self.open_writer() as writer:
            while chunk := src.read(_CHUNK):
                if not isinstance(chunk, bytes):
                    raise InvalidArgument(
                        "src", "must be a binary stream (read() returned no bytes)"
                    )
                writer.write(chunk)
                if progress is not None:
                    progress(len(chunk))
            return writer.commit()

    def put_bytes(self, data: bytes) -> ObjectInfo:
        return self._add(bytes(data))  # a private, immutable copy (a no-op for bytes)

    def open_writer(self) -> MemoryObjectWriter:
        return MemoryObjectWriter(self)

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo:
        with open_source(path) as src:
            return self.put_stream(src, progress)

    def open(self, digest: Digest) -> BinaryIO:
        return io.BufferedReader(self._reader(digest))

    def exists(self, digest: Digest) -> bool:
        return parse_digest(digest) in self._objects

    def size(self, digest: Digest) -> int:
        return len(self._get(digest))

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        with self._reader(digest) as reader:
            return write_file_atomically(counting(reader.readinto, progress), dest)

    def delete(self, digest: Digest) -> None:
        digest = parse_digest(digest)
        with self._lock:
            self._objects.pop(digest, None)

    def verify(self, digests: Iterable[Digest] | None = None) -> list[Digest]:
        return verify_each(self, list(self._objects) if digests is None else digests)

    def quarantined(self) -> list[Quarantined]:
        with self._lock:
            return list(self._quarantine)

    def iter_objects(self) -> Iterator[StoredObject]:
        with self._lock:
            listed = [(d, len(b), self._written.get(d, 0.0)) for d, b in self._objects.items()]
        return iter([StoredObject(*item) for item in listed])

    def sweep(self, grace: float) -> list[str]:
        return []  # an unfinished write holds nothing but its own memory

    # -- recipes (RecipeStore) ---------------------------------------------------

    def put_recipe(self, digest: Digest, data: bytes) -> None:
        with self._lock:
            self._recipes[parse_digest(digest)] = (bytes(data), time.time())

    def get_recipe(self, digest: Digest) -> bytes | None:
        found = self._recipes.get(parse_digest(digest))
        return None if found is None else found[0]

    def get_recipes(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        return {d: data for d in digests if (data := self.get_recipe(d)) is not None}

    def delete_recipe(self, digest: Digest) -> None:
        with self._lock:
            self._recipes.pop(parse_digest(digest), None)

    def iter_recipes(self) -> Iterator[StoredObject]:
        with self._lock:
            listed = [StoredObject(d, len(b), t) for d, (b, t) in self._recipes.items()]
        return iter(listed)

    def renew_recipes(self, digests: Iterable[Digest]) -> None:
        now = time.time()
        with self._lock:
            for digest in digests:
                if (found := self._recipes.get(digest)) is not None:
                    self._recipes[digest] = (found[0], now)

    def renew(self, digests: Iterable[Digest]) -> None:
        now = time.time()
        with self._lock:
            for digest in digests:
                if digest in self._objects:
                    self._written[digest] = now

    def _add(self, data: bytes, expected: Digest | None = None) -> ObjectInfo:
        digest = digest_bytes(data)
        check_expected_digest(expected, digest)
        with self._lock:
            if self._objects.get(digest) != data:  # absent, or damaged: the put heals it
                self._objects[digest] = data
            self._written[digest] = time.time()  # a put renews the object, as on disk
        return ObjectInfo(digest, len(data))

    def _move_aside(self, digest: Digest, data: bytes) -> str:
        """Quarantine the corrupt bytes a reader had, unless a put replaced them since."""
        with self._lock:
            if self._objects.get(digest) is not data:
                return "a new copy has been stored since it was opened"
            del self._objects[digest]
            self._quarantine.append(Quarantined(digest, len(data), time.time(), None))
        return "moved aside; storing the same bytes again restores it"

    def _get(self, digest: Digest) -> bytes:
        digest = parse_digest(digest)
        try:
            return self._objects[digest]
        except KeyError:
            raise NotFound(f"no object {digest}", digest=digest) from None

    def _reader(self, digest: Digest) -> VerifyingReader:
        try:
            data = self._get(digest)
        except NotFound:
            if any(q.digest == digest for q in self.quarantined()):
                raise CorruptObject(
                    f"object {digest} is corrupt: a read found its stored bytes do not match "
                    "its digest and moved them aside; storing the same bytes again restores it",
                    digest=digest,
                ) from None
            raise
        digest = parse_digest(digest)
        return VerifyingReader(
            io.BytesIO(data), digest, len(data), on_corrupt=lambda: self._move_aside(digest, data)
        )


class MemoryObjectWriter(AbortingWriter):
    """One new object of a :class:`MemoryObjectStore`, collected piece by piece."""

    def __init__(self, store: MemoryObjectStore) -> None:
        self._store = store
        self._chunks: list[bytes] | None = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._live().append(bytes(data))  # a private copy: the caller may reuse its buffer

    def commit(self, expected: Digest | None = None) -> ObjectInfo:
        data = b"".join(self._live())
        self._chunks = None
        return self._store._add(data, expected)

    def abort(self) -> None:
        self._chunks = None

    def _live(self) -> list[bytes]:
        if self._chunks is None:
            raise ValueError("the object writer is already committed or aborted")
        return self._chunks
