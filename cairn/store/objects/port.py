"""The object-store port: content-addressed bytes, keyed by their digest.

Adapters (local folder, memory, later S3) implement :class:`ObjectStore` and pass the
shared contract tests in ``tests/store/test_objects.py``. :class:`VerifyingReader` is
here so that every adapter hands out streams that check what they return.
"""

from __future__ import annotations

import io
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol, Self

from cairn.core.digest import Digest, new_hasher, parse_digest
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "AbortingWriter",
    "ClosingStore",
    "ObjectInfo",
    "ObjectStore",
    "ObjectWriter",
    "Progress",
    "RawSource",
    "ReadInto",
    "VerifyingReader",
    "check_expected_digest",
    "counting",
    "open_source",
]

# Told how many more bytes have moved, as they move (for progress bars).
Progress = Callable[[int], None]
# Fills a buffer and returns how many bytes it put there (0 at EOF, None if it would block).
ReadInto = Callable[[memoryview], int | None]


def counting(readinto: ReadInto, progress: Progress | None) -> ReadInto:
    """``readinto``, telling ``progress`` of every byte it returns."""
    if progress is None:
        return readinto

    def counted(buffer: memoryview) -> int | None:
        n = readinto(buffer)
        if n:
            progress(n)
        return n

    return counted


class ObjectInfo(NamedTuple):
    """What a put returns: the digest the store computed and the size in bytes."""

    digest: Digest
    size: int


class ObjectWriter(Protocol):
    """An object written piece by piece: ``write`` as often as needed, then ``commit``.

    Nothing is visible until ``commit``, which seals the bytes durably and stores them
    under the digest the writer computed from the very bytes it was given (stored once,
    as with the ``put_*`` calls). ``abort`` drops everything; leaving a ``with`` block
    without a commit aborts. One thread at a time may use a writer.
    """

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``, which is not referenced once this returns (the caller may
        reuse its buffer)."""
        ...

    def commit(self, expected: Digest | None = None) -> ObjectInfo:
        """Store the bytes written so far. With ``expected``, a different digest stores
        nothing and raises ``InvalidArgument`` (field ``digest``)."""
        ...

    def abort(self) -> None:
        """Discard the bytes; no error if the writer is already committed or aborted."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


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

    def close(self) -> None: ...


def open_source(path: str | os.PathLike[str]) -> io.FileIO:
    """A file to store, opened unbuffered for reading; ``NotFound`` if it is missing,
    ``InvalidArgument`` (field ``path``) if it is a folder."""
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise NotFound(f"no file at {os.fspath(path)!r}", path=os.fspath(path)) from None
    except IsADirectoryError:
        raise InvalidArgument("path", f"{os.fspath(path)!r} is a folder, not a file") from None


def check_expected_digest(expected: Digest | None, actual: Digest) -> None:
    """What every writer's ``commit(expected)`` raises when the bytes hash otherwise."""
    if expected is not None and actual != parse_digest(expected):
        raise InvalidArgument(
            "digest",
            f"the bytes received hash to {actual}, not to {expected}: nothing was stored",
            expected=expected,
            actual=actual,
        )


class RawSource(Protocol):
    """The little a :class:`VerifyingReader` needs from what it wraps."""

    def readinto(self, buffer: WriteableBuffer, /) -> int | None: ...

    def close(self) -> None: ...


_READALL_CHUNK = 1 << 20


class VerifyingReader(io.RawIOBase):
    """Hashes bytes as they are read and raises ``CorruptObject`` when they do not match.

    The check runs as soon as ``size`` bytes have been read (so ``read(size)`` is verified
    without a further read) and again at EOF (so extra or missing bytes are caught). A
    failed check is sticky: later reads raise again. Wrap it in ``io.BufferedReader`` to
    get a ``BinaryIO``.
    """

    def __init__(self, raw: RawSource, digest: Digest, size: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._size = size
        self._hasher = new_hasher()
        self._pos = 0
        self._verified_at = -1
        self._failed = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self._failed:
            raise self._corrupt()
        view = memoryview(buffer).cast("B")
        n = self._raw.readinto(view)
        if n is None:
            # Our sources are files or memory; a would-block here means a broken source.
            raise OSError("object source returned no data before EOF")
        if n:
            self._hasher.update(view[:n])
            self._pos += n
            if self._pos == self._size:
                self._verify()
        else:
            self._verify()
        return n

    def readall(self) -> bytes:
        # io.RawIOBase.readall reads 8 KiB at a time; big chunks are much faster.
        out = bytearray()
        chunk = memoryview(bytearray(_READALL_CHUNK))
        while n := self.readinto(chunk):
            out += chunk[:n]
        return bytes(out)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()

    def _verify(self) -> None:
        if self._verified_at == self._pos:
            return  # checked at this length already (a full read, then the EOF read)
        self._verified_at = self._pos
        if self._hasher.hexdigest() != self._digest:
            self._failed = True
            raise self._corrupt()

    def _corrupt(self) -> CorruptObject:
        return CorruptObject(
            f"object {self._digest} is corrupt: its stored bytes do not match its digest",
            digest=self._digest,
            actual=self._hasher.hexdigest(),
            bytes_read=self._pos,
        )


class ClosingStore:
    """The lifecycle both adapters share: ``close()`` and use as a context manager."""

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
