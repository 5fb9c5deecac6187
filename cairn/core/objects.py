"""Values about stored objects that every layer passes around."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple, Protocol, Self

from cairn.core.digest import Digest

__all__ = ["ObjectInfo", "ObjectWriter", "Progress"]

# Told how many more bytes have moved, as they move (for progress bars).
Progress = Callable[[int], None]


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
