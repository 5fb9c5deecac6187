"""Chunked objects as the server's routes use them: a client that chunked a big file
itself sends only the chunks the server lacks (``missing`` and ``put_many`` of
:class:`~cairn.service.objects.ObjectService`), then records the file as the list of its
chunks here. The store checks that the chunks, joined, hash to the file's digest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import Conflict, InvalidArgument
from cairn.core.objects import ObjectInfo
from cairn.service.base import ServicePart
from cairn.store.objects.chunked import ChunkedStore

__all__ = ["MAX_CHUNKS", "ChunkService", "Chunking"]

# Chunks one recipe may list: 100,000 chunks of 1 MiB on average is a 100 GiB file, and
# its list ~7.5 MB of JSON. A file of more chunks goes up whole.
MAX_CHUNKS: Final = 100_000


@dataclass(frozen=True, slots=True)
class Chunking:
    """How the server's store splits big files: the average chunk size (0: it keeps
    every file whole) and the size from which a file is chunked."""

    chunk_size: int
    threshold: int


class ChunkService(ServicePart):
    """Record a big file from chunks already stored; read a file's recipe."""

    def chunking(self) -> Chunking:
        store = self._store()
        if store is None:
            return Chunking(0, 0)
        return Chunking(store.chunk_size, store.min_file)

    def record(self, digest: str, size: int, chunks: Sequence[tuple[str, int]]) -> ObjectInfo:
        """Store the object ``digest`` of ``size`` bytes as the concatenation of stored
        ``chunks`` (digest, size), in order. ``NotFound`` names the first chunk not
        stored; ``InvalidArgument`` if the sizes or the joined bytes do not match.
        With a principal: a writer of some project (as any upload)."""
        self.access.require_uploader()
        wanted = parse_digest(digest)
        parts = _check_chunks(chunks)
        total = sum(length for _, length in parts)
        if total != size:
            raise InvalidArgument(
                "size", f"is {size} but the chunks add up to {total} bytes", size=size
            )
        return self._chunked().put_chunked(wanted, parts)

    def recipe(self, digest: str) -> list[tuple[Digest, int]] | None:
        """The chunks of a stored object, in order; None if it is stored whole.
        ``NotFound`` if it is not stored."""
        wanted = parse_digest(digest)
        store = self._store()
        recipe = store.recipe(wanted) if store is not None else None
        if recipe is None:
            self.objects.size(wanted)  # NotFound if it is not stored at all
        return recipe

    def _store(self) -> ChunkedStore | None:
        store = self.objects
        return store if isinstance(store, ChunkedStore) else None

    def _chunked(self) -> ChunkedStore:
        store = self._store()
        if store is None:
            raise Conflict(
                "this server's object store keeps files whole (chunk_size 0): upload the "
                "file itself",
                chunk_size=0,
            )
        return store


def _check_chunks(chunks: Sequence[tuple[str, int]]) -> list[tuple[Digest, int]]:
    if not chunks:
        raise InvalidArgument("chunks", "must list at least one chunk")
    if len(chunks) > MAX_CHUNKS:
        raise InvalidArgument("chunks", f"must list at most {MAX_CHUNKS} chunks")
    parts: list[tuple[Digest, int]] = []
    for index, (chunk, length) in enumerate(chunks):
        if length <= 0:
            raise InvalidArgument(f"chunks[{index}]", f"size must be positive, got {length}")
        parts.append((parse_digest(chunk, f"chunks[{index}]"), length))
    return parts
