"""The object-store port: content-addressed bytes, keyed by their digest.

Adapters (local folder, memory, S3 in ``s3.py``) implement :class:`ObjectStore` and pass the
shared contract tests in ``tests/store/test_objects.py``; every adapter hands out streams
that check what they return (:class:`cairn.files.reading.VerifyingReader`).

Damage heals (docs/architecture.md, *Corrupt objects heal*): a read that finds an
object's bytes wrong moves the object aside (:meth:`ObjectStore.quarantined` lists it)
and the store then reports it missing, and a put of bytes already stored leaves an
intact copy under their digest whatever the stored copy had become.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple, Protocol, Self

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound
from cairn.core.objects import ObjectInfo, ObjectWriter, Progress
from cairn.files.reading import ReadInto

__all__ = [
    "AbortingWriter",
    "ClosingStore",
    "ObjectStore",
    "ObjectWriter",
    "Quarantined",
    "RecipeStore",
    "StoredObject",
    "check_expected_digest",
    "fill_by_writes",
    "missing_object",
    "verify_each",
]


def missing_object(digest: Digest, aside: str | None, where: str = "", *, read: bool) -> Exception:
    """What an adapter raises for an object it does not hold, given where a read that found
    it corrupt moved it (``aside``; None: never stored, or gone). A lookup (``read=False``)
    says so in its ``NotFound``; a read raises ``CorruptObject``: what the caller wants is
    damaged, not absent. ``where`` names the store (e.g. `` in s3://bucket/prefix``)."""
    if aside is None:
        return NotFound(f"no object {digest}{where}", digest=digest)
    if not read:
        return NotFound(
            f"no object {digest}: a corrupt copy was moved aside to {aside}", digest=digest
        )
    return CorruptObject(
        f"object {digest} is corrupt: a read found its stored bytes do not match its "
        f"digest and moved them aside to {aside}; storing the same bytes again restores it",
        digest=digest,
        quarantined=aside,
    )


class Quarantined(NamedTuple):
    """An object a read found corrupt, moved aside: its digest, the bytes it held, when
    it was moved (seconds since the epoch) and where it lies (None in memory)."""

    digest: Digest
    size: int
    since: float
    path: str | None


class StoredObject(NamedTuple):
    """One stored object as a listing sees it: its digest, size and when it was last
    written (seconds since the epoch; a put of bytes already stored may renew it)."""

    digest: Digest
    size: int
    mtime: float


class ObjectStore(Protocol):
    """Content-addressed bytes. The store computes every digest itself; reads verify."""

    def put_stream(self, src: BinaryIO, progress: Progress | None = None) -> ObjectInfo:
        """Store ``src`` read to EOF; identical bytes are stored once. ``progress`` is
        told of the bytes as they are read."""
        ...

    def put_bytes(self, data: bytes) -> ObjectInfo: ...

    def put_file(
        self, path: str | os.PathLike[str], progress: Progress | None = None
    ) -> ObjectInfo: ...

    def open_writer(self) -> ObjectWriter:
        """A writer for one new object whose bytes arrive piece by piece."""
        ...

    def open(self, digest: Digest) -> BinaryIO:
        """A read-only stream that raises ``CorruptObject`` once it has read bytes that do
        not hash to ``digest``; ``NotFound`` if there is no such object."""
        ...

    def exists(self, digest: Digest) -> bool: ...

    def size(self, digest: Digest) -> int:
        """Size in bytes; ``NotFound`` if there is no such object."""
        ...

    def copy_to_file(
        self, digest: Digest, dest: str | os.PathLike[str], progress: Progress | None = None
    ) -> int:
        """Write the object to ``dest`` atomically, verified; returns its size. On a digest
        mismatch ``dest`` is left untouched and ``CorruptObject`` is raised. ``progress``
        is told of the bytes as they are copied."""
        ...

    def delete(self, digest: Digest) -> None:
        """Remove the object; no error if it is absent."""
        ...

    def verify(self, digests: Iterable[Digest] | None = None) -> list[Digest]:
        """Read ``digests`` (every stored object by default) whole; returns those found
        corrupt, which are quarantined like any read that finds them so."""
        ...

    def quarantined(self) -> list[Quarantined]:
        """The objects reads have found corrupt and moved aside, oldest first."""
        ...

    def sweep(self, grace: float) -> list[str]:
        """Remove what unfinished writes left behind (temp files not written to for
        ``grace`` seconds, and not in use by this process); returns what went."""
        ...

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every stored object (not the quarantined ones), in no particular order; one
        deleted or stored while the listing runs may or may not appear. For gc and fsck."""
        ...

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        """Those of ``digests`` the store lacks, each once, in the order given: one
        question for many objects (a client asks it before sending)."""
        ...

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        """Store many small objects at once, as ``put_bytes`` of each would (identical
        bytes stored once, a damaged copy healed), made durable together: all of them
        survive a crash once this returns. The infos are in the order of ``items``."""
        ...

    def link_to(self, digest: Digest, dest: str | os.PathLike[str]) -> bool:
        """Make ``dest`` (which must not exist) a hard link to the stored object, itself
        read-only; False where the store cannot (not a local folder, another file system,
        an object not kept as one whole file): the caller copies instead."""
        ...

    def close(self) -> None: ...


class RecipeStore(ObjectStore, Protocol):
    """An adapter that also keeps chunk recipes (:mod:`cairn.core.chunks`) beside its
    objects, in a namespace of their own keyed by the digest of the whole object they
    rebuild (which the store cannot compute from the recipe's bytes, so they cannot be
    objects). :class:`~cairn.store.objects.chunked.ChunkedStore` is built on it."""

    def put_recipe(self, digest: Digest, data: bytes) -> None:
        """Record ``data`` as the recipe of ``digest``, durably, over any earlier one."""
        ...

    def get_recipe(self, digest: Digest) -> bytes | None:
        """The recipe of ``digest``; None if there is none."""
        ...

    def get_recipes(self, digests: Sequence[Digest]) -> dict[Digest, bytes]:
        """The recipes of those of ``digests`` that have one (``missing`` asks this of
        every object it does not hold whole: cheap locally, a few requests at once on S3)."""
        ...

    def delete_recipe(self, digest: Digest) -> None:
        """Remove the recipe of ``digest``; no error if there is none."""
        ...

    def iter_recipes(self) -> Iterator[StoredObject]:
        """Every recipe: the digest of its object, the recipe's own size and when it was
        last written."""
        ...

    def renew_recipes(self, digests: Iterable[Digest]) -> None:
        """:meth:`renew` for the recipes of ``digests``: a chunked object said present
        keeps its recipe through gc's grace as its chunks keep theirs."""
        ...

    def renew(self, digests: Iterable[Digest]) -> None:
        """Mark stored objects as just written, as a put that found them stored does
        (gc's grace period then keeps them); absent ones are skipped. A no-op where the
        store cannot (S3 keeps an object's time as it was written)."""
        ...


def check_expected_digest(expected: Digest | None, actual: Digest) -> None:
    """What every writer's ``commit(expected)`` raises when the bytes hash otherwise."""
    if expected is not None and actual != parse_digest(expected):
        raise InvalidArgument(
            "digest",
            f"the bytes received hash to {actual}, not to {expected}: nothing was stored",
            expected=expected,
            actual=actual,
        )


class ClosingStore:
    """What every adapter shares: ``close()``, use as a context manager, and the batch
    calls done one object at a time (correct for any adapter; one that can do better,
    as the local folder does, overrides them)."""

    def missing(self, digests: Iterable[Digest]) -> list[Digest]:
        store: Any = self
        seen: set[Digest] = set()
        lacking = []
        for digest in map(parse_digest, digests):
            if digest not in seen:
                seen.add(digest)
                if not store.exists(digest):
                    lacking.append(digest)
        return lacking

    def put_many(self, items: Sequence[bytes]) -> list[ObjectInfo]:
        store: Any = self
        return [store.put_bytes(item) for item in items]

    def link_to(self, digest: Digest, dest: str | os.PathLike[str]) -> bool:
        return False  # only a local folder of whole files can

    def close(self) -> None:
        """Nothing to release by default: each call opens and closes its own files."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AbortingWriter(ABC):
    """What both adapters' writers share: a ``with`` block left without a commit aborts."""

    @abstractmethod
    def abort(self) -> None:
        """Discard the bytes; no error if already committed or aborted."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


_VERIFY_CHUNK = 4 << 20  # whole-object reads: big, for few calls


def fill_by_writes(write: Callable[[memoryview], None], readinto: ReadInto, size: int) -> None:
    """A writer's ``fill`` for one that takes its bytes through ``write``: everything
    ``readinto`` gives until EOF, read into one buffer of ``size`` bytes and written."""
    buffer = memoryview(bytearray(size))
    while True:
        n = readinto(buffer)
        if n is None:
            raise OSError("the source returned no data before EOF")
        if not n:
            return
        write(buffer[:n])


def verify_each(store: ObjectStore, digests: Iterable[Digest]) -> list[Digest]:
    """Read each object whole through ``store.open`` (whose reader quarantines a corrupt
    one); the corrupt ones. An object gone meanwhile is skipped."""
    corrupt = []
    for digest in digests:
        try:
            with store.open(digest) as stream:
                while stream.read(_VERIFY_CHUNK):
                    pass
        except CorruptObject:
            corrupt.append(digest)
        except NotFound:
            continue
    return corrupt
