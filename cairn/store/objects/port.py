"""The object-store port: content-addressed bytes, keyed by their digest.

Adapters (local folder, memory, later S3) implement :class:`ObjectStore` and pass the
shared contract tests in ``tests/store/test_objects.py``. :class:`VerifyingReader` is
here so that every adapter hands out streams that check what they return.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

from cairn.core.digest import Digest, new_hasher
from cairn.core.errors import CorruptObject

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["ObjectInfo", "ObjectStore", "RawSource", "VerifyingReader"]


class ObjectInfo(NamedTuple):
    """What a put returns: the digest the store computed and the size in bytes."""

    digest: Digest
    size: int


class ObjectStore(Protocol):
    """Content-addressed bytes. The store computes every digest itself; reads verify."""

    def put_stream(self, src: BinaryIO) -> ObjectInfo:
        """Store ``src`` read to EOF; identical bytes are stored once."""
        ...

    def put_bytes(self, data: bytes) -> ObjectInfo: ...

    def put_file(self, path: str | os.PathLike[str]) -> ObjectInfo: ...

    def open(self, digest: Digest) -> BinaryIO:
        """A read-only stream that raises ``CorruptObject`` once it has read bytes that do
        not hash to ``digest``; ``NotFound`` if there is no such object."""
        ...

    def exists(self, digest: Digest) -> bool: ...

    def size(self, digest: Digest) -> int:
        """Size in bytes; ``NotFound`` if there is no such object."""
        ...

    def copy_to_file(self, digest: Digest, dest: str | os.PathLike[str]) -> int:
        """Write the object to ``dest`` atomically, verified; returns its size. On a digest
        mismatch ``dest`` is left untouched and ``CorruptObject`` is raised."""
        ...

    def delete(self, digest: Digest) -> None:
        """Remove the object; no error if it is absent."""
        ...

    def close(self) -> None: ...


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
