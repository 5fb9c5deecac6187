"""Content-defined chunking: a stream cut where its content says (FastCDC, by pyfastcdc),
so an edit moves only the cuts near it and a changed big file shares all but a few chunks
with its previous version (docs/architecture.md, *Chunked objects*).

A cut depends only on the bytes from the chunk's start up to ``max_size`` past it, so
cutting a stream that arrives in pieces gives the very chunks of cutting it whole: a
:class:`Chunker` keeps back the tail it cannot cut yet and cuts it when more arrives.
Every chunk comes with its BLAKE3 digest, and the chunker hashes the whole stream too (an
object's digest is that of its whole bytes, however it is stored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Final, NamedTuple

from pyfastcdc import FastCDC

from cairn.core.digest import Digest, digest_bytes, new_hasher
from cairn.core.errors import InvalidArgument
from cairn.core.objects import Progress
from cairn.files.reading import ReadInto, counting
from cairn.files.writing import readinto_of

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MIN_FILE",
    "MAX_AVG_SIZE",
    "MIN_AVG_SIZE",
    "Chunk",
    "ChunkStream",
    "Chunker",
    "check_chunk_size",
    "chunk_stream",
]

DEFAULT_CHUNK_SIZE: Final = 256 * 1024  # measured by benchmarks/chunk_storage.py
DEFAULT_MIN_FILE: Final = 4 * 1024 * 1024  # smaller objects are stored whole
MIN_AVG_SIZE: Final = 1024  # pyfastcdc takes 256, but chunks that small cost more than they save
MAX_AVG_SIZE: Final = 4 * 1024 * 1024  # pyfastcdc's bound (max chunk 4x: 16 MiB)
_NO_DIGEST: Final = Digest("")
_BATCH: Final = 16 * 1024 * 1024  # bytes cut at a time (and kept in memory) by a stream


class Chunk(NamedTuple):
    """One chunk: the digest of its bytes, and the bytes."""

    digest: Digest
    data: bytes


def check_chunk_size(avg_size: int, field: str = "chunk_size") -> int:
    """``avg_size`` if it is a power of two FastCDC takes; ``InvalidArgument`` otherwise."""
    if not (
        isinstance(avg_size, int)
        and MIN_AVG_SIZE <= avg_size <= MAX_AVG_SIZE
        and avg_size & (avg_size - 1) == 0
    ):
        raise InvalidArgument(
            field,
            f"must be a power of two from {MIN_AVG_SIZE} to {MAX_AVG_SIZE} bytes, not {avg_size!r}",
        )
    return avg_size


class Chunker:
    """Cuts bytes fed piece by piece into chunks of ``avg_size`` on average (a quarter of
    it at least, four times at most), and hashes them all as one stream.

    ``feed`` returns the chunks that are final now; ``finish`` the rest. Then ``digest``
    and ``size`` are the whole stream's. One thread at a time.
    """

    def __init__(self, avg_size: int = DEFAULT_CHUNK_SIZE, *, digests: bool = True) -> None:
        """``digests=False``: chunks come with an empty digest, for a caller whose store
        hashes each chunk itself anyway (the whole stream is hashed either way)."""
        check_chunk_size(avg_size)
        self._digests = digests
        self._cdc = FastCDC(avg_size, min_size=avg_size // 4, max_size=avg_size * 4)
        self._pending = bytearray()  # fed, not yet cut: less than max_size once cut
        self._hasher = new_hasher()
        self._size = 0
        self._digest: Digest | None = None

    @property
    def avg_size(self) -> int:
        return int(self._cdc.avg_size)

    @property
    def max_size(self) -> int:
        return int(self._cdc.max_size)

    @property
    def pending(self) -> int:
        """Bytes fed and not yet returned in a chunk."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Chunk]:
        """Take ``data`` (copied: the caller may reuse its buffer); the chunks now final.
        Cuts only once a few chunks' worth is pending, so small feeds cost little."""
        if self._digest is not None:
            raise ValueError("the chunker is already finished")
        self._hasher.update(data)
        self._size += len(data)
        self._pending += data
        if len(self._pending) < 4 * self.max_size:
            return []
        return self._cut(final=False)

    def finish(self) -> list[Chunk]:
        """The last chunks; the whole stream's ``digest`` and ``size`` are known after."""
        if self._digest is not None:
            raise ValueError("the chunker is already finished")
        chunks = self._cut(final=True)
        self._digest = Digest(self._hasher.hexdigest())
        return chunks

    @property
    def digest(self) -> Digest:
        """The BLAKE3 of every byte fed (after ``finish``)."""
        if self._digest is None:
            raise ValueError("the chunker is not finished")
        return self._digest

    @property
    def size(self) -> int:
        return self._size

    def _cut(self, *, final: bool) -> list[Chunk]:
        buf = self._pending
        total = len(buf)
        if not total:
            return []
        chunks: list[Chunk] = []
        taken = 0
        cuts = self._cdc.cut_buf(memoryview(buf))
        for cut in cuts:
            # A cut is final once max_size bytes follow the chunk's start (FastCDC never
            # looks further), or at the end of the stream.
            if not final and total - cut.offset < self.max_size:
                break
            data = bytes(cut.data)
            chunks.append(Chunk(digest_bytes(data) if self._digests else _NO_DIGEST, data))
            taken = cut.offset + cut.length
        del cuts, cut  # they hold views of the buffer, which cannot shrink while they live
        del buf[:taken]
        return chunks


class ChunkStream:
    """The chunks of a stream read to EOF, a batch at a time (``iter`` yields each chunk;
    ``batches`` lists of chunks of about 16 MiB, for one batched put each); ``digest``
    and ``size`` of the whole stream once it is exhausted."""

    def __init__(
        self, readinto: ReadInto, avg_size: int = DEFAULT_CHUNK_SIZE, batch: int = _BATCH
    ) -> None:
        self._readinto = readinto
        self._chunker = Chunker(avg_size)
        self._batch = max(batch, 4 * self._chunker.max_size)

    def batches(self) -> Iterator[list[Chunk]]:
        buffer = bytearray(self._batch)
        view = memoryview(buffer)
        try:
            while True:
                filled = 0
                while filled < len(view):
                    n = self._readinto(view[filled:])
                    if n is None:
                        raise OSError("the source returned no data before EOF")
                    if not n:
                        break
                    filled += n
                if filled:
                    chunks = self._chunker.feed(view[:filled])
                    if chunks:
                        yield chunks
                if filled < len(view):
                    break
            last = self._chunker.finish()
            if last:
                yield last
        finally:
            view.release()

    def __iter__(self) -> Iterator[Chunk]:
        for batch in self.batches():
            yield from batch

    @property
    def digest(self) -> Digest:
        return self._chunker.digest

    @property
    def size(self) -> int:
        return self._chunker.size


def chunk_stream(
    src: BinaryIO,
    avg_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> ChunkStream:
    """The chunks of ``src`` read to EOF (``readinto`` if it has one, else ``read``)."""
    return ChunkStream(counting(readinto_of(src), progress), avg_size)
