"""Bytes out of local files and streams: opening a source safely, and reading that
verifies what it returns against a digest."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from cairn.core.digest import Digest, new_hasher
from cairn.core.errors import CorruptObject, InvalidArgument, NotFound
from cairn.core.objects import Progress

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["RawSource", "ReadInto", "VerifyingReader", "counting", "open_source"]

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


def open_source(path: str | os.PathLike[str]) -> io.FileIO:
    """A file to store, opened unbuffered for reading; ``NotFound`` if it is missing,
    ``InvalidArgument`` (field ``path``) if it is a folder."""
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise NotFound(f"no file at {os.fspath(path)!r}", path=os.fspath(path)) from None
    except IsADirectoryError:
        raise InvalidArgument("path", f"{os.fspath(path)!r} is a folder, not a file") from None


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

    ``on_corrupt`` is called once, when a check first fails (a store moves the object
    aside there); what it returns, if anything, is added to the error's message.
    """

    def __init__(
        self,
        raw: RawSource,
        digest: Digest,
        size: int | None = None,
        on_corrupt: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._size = size
        self._hasher = new_hasher()
        self._pos = 0
        self._verified_at = -1
        self._failed = False
        self._on_corrupt = on_corrupt
        self._note: str | None = None

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
            if self._on_corrupt is not None:
                self._note = self._on_corrupt()
            raise self._corrupt()

    def _corrupt(self) -> CorruptObject:
        note = f"; {self._note}" if self._note else ""
        return CorruptObject(
            f"object {self._digest} is corrupt: its stored bytes do not match its digest{note}",
            digest=self._digest,
            actual=self._hasher.hexdigest(),
            bytes_read=self._pos,
        )
