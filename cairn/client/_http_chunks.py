"""Big files up as the chunks the server lacks.

A server whose store chunks big files (``GET /objects/chunked/settings``: its average
chunk size and the size from which it chunks) is sent a big file this way: the file is
cut here the way the server cuts (content-defined chunking, so an edit moves only the
chunks it touches), one ``POST /objects/missing`` asks which of its chunks (and whether
the whole file) the server lacks, ``POST /objects/batch`` sends only those, framed, and
``POST /objects/chunked`` records the file as its list of chunks, which the server
checks against the file's digest. A 100 MiB file logged again with 1 MiB changed sends
about that megabyte.

A first upload gains nothing from chunks and would pay for cutting the file before a
byte is sent (hashing and sending overlap on the whole-file path), so the file's first
few chunks are cut and asked about first: if the server has none of them, the file is
taken for new and goes up whole (:func:`upload_chunked` answers None), and the server
chunks it as it stores it.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from pyfastcdc import FastCDC

from cairn.client._transport import Transport
from cairn.core import frames
from cairn.core.digest import Digest, digest_bytes, new_hasher, parse_digest
from cairn.core.errors import Conflict, InvalidArgument, NotFound
from cairn.core.objects import ObjectInfo, Progress
from cairn.files.chunking import Chunker

__all__ = ["Chunking", "server_chunking", "upload_chunked"]

MiB: Final = 1 << 20
# The first chunks asked about before the whole file is cut: if the server has none, the
# file is new and goes up whole. 16 chunks: 4 MiB at the default 256 KiB average.
PROBE_CHUNKS = 16
# Within the server's bounds (routes/objects_batch.py, service/chunks.py).
_ASK_AT_ONCE: Final = 50_000
_FRAMED_OBJECTS: Final = 4096
_FRAMED_BYTES: Final = 16 * MiB
_MAX_CHUNKS: Final = 100_000
# Bytes of the file cut at a time (one buffer). Read at call time: tests make it small.
_READ = 16 * MiB
_SLOWEST_DISK: Final = 20 * MiB  # bytes/s a server reads chunks back at, at worst
_OCTETS: Final = {"content-type": "application/octet-stream"}


class Source(Protocol):
    """Bytes of the file by offset (an open file, or a seekable stream)."""

    def readinto_at(self, offset: int, buffer: memoryview) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Chunking:
    """How the server's store cuts big files: the average chunk size, and the size from
    which it cuts a file (a smaller object, a chunk among them, it keeps whole)."""

    chunk_size: int
    threshold: int

    @property
    def usable(self) -> bool:
        """A chunk size this client cuts by, and every chunk below the threshold, so the
        server keeps each whole (else it would cut a big chunk sent to it again, and
        could not record the file)."""
        try:
            return Chunker(self.chunk_size).max_size < self.threshold
        except InvalidArgument:  # not a size this client knows: files go up whole
            return False


# What each server said, by transport (a server's chunking is a setting of its start-up).
_said: weakref.WeakKeyDictionary[Transport, Chunking | None] = weakref.WeakKeyDictionary()


def server_chunking(transport: Transport) -> Chunking | None:
    """The server's chunking; None if it keeps files whole (or predates chunking)."""
    if transport in _said:
        return _said[transport]
    try:
        said: dict[str, Any] = transport.get("/objects/chunked/settings")
    except NotFound:  # a server from before chunked uploads
        found = None
    else:
        size, threshold = int(said["chunk_size"]), int(said["threshold"])
        found = Chunking(size, threshold) if size > 0 else None
        if found is not None and not found.usable:
            found = None
    _said[transport] = found
    return found


@dataclass(frozen=True, slots=True)
class _Cut:
    """A file cut into chunks: its digest, and each chunk's (offset, size, digest)."""

    digest: Digest
    chunks: tuple[tuple[int, int, Digest], ...]


def upload_chunked(
    transport: Transport,
    params: dict[str, str] | None,
    source: Source,
    size: int,
    progress: Progress | None = None,
) -> ObjectInfo | None:
    """Store ``size`` bytes of ``source`` on the server as the chunks it lacks; None if
    this file should go up whole instead (the server keeps files whole, the file is
    below its threshold, or the server has none of its first chunks: a new file)."""
    chunking = server_chunking(transport)
    if chunking is None or size < chunking.threshold:
        return None
    if size > _MAX_CHUNKS * chunking.chunk_size // 2:
        return None  # more chunks than a recipe may list, likely: whole
    if _looks_new(transport, chunking, source, size):
        return None
    cut = _cut(chunking, source, size)
    if len(cut.chunks) > _MAX_CHUNKS:
        return None  # more chunks than a recipe may list: whole
    distinct = list(dict.fromkeys(digest for _, _, digest in cut.chunks))
    lacking = set(_missing(transport, [cut.digest, *distinct]))
    if cut.digest not in lacking:
        _tell(progress, size)
        return ObjectInfo(cut.digest, size)
    _send(transport, params, source, cut, lacking, progress)
    body = {
        "digest": cut.digest,
        "size": size,
        "chunks": [[digest, length] for _, length, digest in cut.chunks],
    }
    # The server reads every chunk back to check the whole digest: allow for a slow disk.
    timeout = max(transport.timeout, size / _SLOWEST_DISK)
    try:
        transport.request("POST", "/objects/chunked", params=params, json=body, timeout=timeout)
    except Conflict:  # the server was restarted without chunking since it said it had it
        _said.pop(transport, None)
        return None
    return ObjectInfo(cut.digest, size)


def _looks_new(transport: Transport, chunking: Chunking, source: Source, size: int) -> bool:
    """The server has none of the file's first :data:`PROBE_CHUNKS` chunks."""
    span = min(size, 2 * PROBE_CHUNKS * chunking.chunk_size)  # ~32 chunks, 8 at least
    head = _cut(chunking, source, span).chunks
    if span < size:
        head = head[:-1]  # cut by the end of what was read, not by the file's bytes
    found = [digest for _, _, digest in head[:PROBE_CHUNKS]]
    return bool(found) and len(_missing(transport, found)) == len(set(found))


def _cut(chunking: Chunking, source: Source, size: int) -> _Cut:
    """The chunks of the first ``size`` bytes of ``source``, cut as the server's
    :class:`~cairn.files.chunking.Chunker` cuts (a test holds the two to the same
    chunks), and their digest. Read a window at a time into one buffer, each chunk
    hashed where it lies: no copy per chunk."""
    average = chunking.chunk_size
    cdc = FastCDC(average, min_size=average // 4, max_size=average * 4)
    longest = int(cdc.max_size)
    window = max(_READ, 4 * longest)
    view = memoryview(bytearray(min(window, max(size, 1))))
    whole = new_hasher()
    chunks: list[tuple[int, int, Digest]] = []
    base = held = at = 0  # file offset of view[0]; bytes in view; bytes read
    while True:
        while held < len(view) and at < size:
            n = source.readinto_at(at, view[held : held + min(len(view) - held, size - at)])
            if n <= 0:
                raise InvalidArgument("source", "shrank while it was being read")
            whole.update(view[held : held + n])
            held, at = held + n, at + n
        final = at >= size
        taken = 0
        for cut in cdc.cut_buf(view[:held]):
            # A cut is final once a longest chunk's worth follows its start (FastCDC
            # looks no further), or at the end.
            if not final and held - cut.offset < longest:
                break
            start, length = int(cut.offset), int(cut.length)
            piece = view[start : start + length]
            chunks.append((base + start, length, digest_bytes(piece)))
            taken = start + length
        if final:
            return _Cut(Digest(whole.hexdigest()), tuple(chunks))
        view[: held - taken] = view[taken:held]  # the tail not cut yet, to the front
        base, held = base + taken, held - taken


def _missing(transport: Transport, digests: Sequence[Digest]) -> list[Digest]:
    asked = list(dict.fromkeys(digests))
    lacking: list[Digest] = []
    for start in range(0, len(asked), _ASK_AT_ONCE):
        body = {"digests": asked[start : start + _ASK_AT_ONCE]}
        answer = transport.request("POST", "/objects/missing", json=body).json()
        lacking.extend(parse_digest(d) for d in answer["missing"])
    return lacking


def _send(
    transport: Transport,
    params: dict[str, str] | None,
    source: Source,
    cut: _Cut,
    lacking: set[Digest],
    progress: Progress | None,
) -> None:
    """Send the chunks the server lacks, framed, each once; tell ``progress`` of every
    chunk (sent, or found there)."""
    batch: list[tuple[Digest, bytes]] = []
    held = 0
    for offset, length, digest in cut.chunks:
        if digest not in lacking:
            _tell(progress, length)
            continue
        lacking.discard(digest)
        if batch and (len(batch) == _FRAMED_OBJECTS or held + length > _FRAMED_BYTES):
            _send_batch(transport, params, batch, progress)
            batch, held = [], 0
        batch.append((digest, source.read_at(offset, length)))
        held += length
    if batch:
        _send_batch(transport, params, batch, progress)


def _send_batch(
    transport: Transport,
    params: dict[str, str] | None,
    batch: list[tuple[Digest, bytes]],
    progress: Progress | None,
) -> None:
    transport.request(
        "POST", "/objects/batch", params=params, content=frames.encode(batch), headers=_OCTETS
    )
    _tell(progress, sum(len(data) for _, data in batch))


def _tell(progress: Progress | None, size: int) -> None:
    if progress is not None and size:
        progress(size)
