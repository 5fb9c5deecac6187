"""Recipes: how a chunked object is put back together (docs/architecture.md, *Chunked
objects*).

A recipe names the whole object (its digest and size) and its chunks in order, each by
digest and size. Canonical bytes, so one object has one recipe: a magic and a version,
the 32 raw bytes of the whole digest, its size, the chunk count, then per chunk its 32
raw digest bytes and its size (sizes and count big-endian, 8 and 4 bytes). 40 bytes a
chunk: a 100 MiB file in chunks of 256 KiB has a recipe of ~16 KB.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cairn.core.digest import Digest, parse_digest
from cairn.core.errors import InvalidArgument

__all__ = ["MAX_CHUNKS", "Recipe"]

_MAGIC = b"CAIRNRCP\x01"
_HEAD = struct.Struct(">32sQI")  # whole digest, whole size, chunk count
_ENTRY = struct.Struct(">32sQ")  # chunk digest, chunk size
MAX_CHUNKS = 1 << 24  # 16M chunks: far beyond any file this store keeps whole or chunked


@dataclass(frozen=True, slots=True)
class Recipe:
    """A chunked object: its digest and size, and its chunks ``(digest, size)`` in order."""

    digest: Digest
    size: int
    chunks: tuple[tuple[Digest, int], ...]

    def __post_init__(self) -> None:
        parse_digest(self.digest)
        if len(self.chunks) > MAX_CHUNKS:
            raise InvalidArgument("chunks", f"at most {MAX_CHUNKS} chunks, not {len(self.chunks)}")
        total = 0
        for i, (digest, size) in enumerate(self.chunks):
            parse_digest(digest, f"chunks[{i}].digest")
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                raise InvalidArgument(
                    f"chunks[{i}].size", f"must be a positive integer, not {size!r}"
                )
            total += size
        if total != self.size:
            raise InvalidArgument(
                "chunks",
                f"the chunks' sizes add up to {total} bytes, not to the object's {self.size}",
            )

    def encode(self) -> bytes:
        parts = [_MAGIC, _HEAD.pack(bytes.fromhex(self.digest), self.size, len(self.chunks))]
        parts.extend(_ENTRY.pack(bytes.fromhex(d), s) for d, s in self.chunks)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, digest: Digest | None = None) -> Recipe:
        """The recipe in ``data``; ``InvalidArgument`` (field ``recipe``) saying what is
        wrong if it is not one, or (with ``digest``) not the recipe of that object."""
        view = memoryview(data)
        if bytes(view[: len(_MAGIC)]) != _MAGIC:
            raise InvalidArgument("recipe", "not a chunk recipe (wrong magic or version)")
        at = len(_MAGIC)
        if len(view) < at + _HEAD.size:
            raise InvalidArgument("recipe", f"cut short: {len(view)} bytes, no whole header")
        whole, size, count = _HEAD.unpack_from(view, at)
        at += _HEAD.size
        if len(view) != at + count * _ENTRY.size:
            raise InvalidArgument(
                "recipe",
                f"{len(view)} bytes, where a recipe of {count} chunks has "
                f"{at + count * _ENTRY.size}",
            )
        chunks = tuple((Digest(raw.hex()), n) for raw, n in _ENTRY.iter_unpack(view[at:]))
        try:
            recipe = cls(Digest(whole.hex()), size, chunks)
        except InvalidArgument as exc:
            raise InvalidArgument("recipe", f"inconsistent: {exc}") from None
        if digest is not None and recipe.digest != digest:
            raise InvalidArgument("recipe", f"it is the recipe of {recipe.digest}, not of {digest}")
        return recipe
