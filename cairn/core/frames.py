"""The framed body of a batch of small objects (``POST /objects/batch`` and the answer of
``POST /objects/batch/read``): for each object, its BLAKE3 digest (32 raw bytes), its
size (8 bytes, unsigned big-endian) and its bytes, one after another, nothing else.
The content type is ``application/octet-stream``."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

from cairn.core.digest import Digest
from cairn.core.errors import InvalidArgument

__all__ = ["FRAME_HEADER", "MAX_BATCH_BYTES", "MAX_BATCH_OBJECTS", "decode", "encode"]

_HEADER: Final = struct.Struct(">32sQ")
FRAME_HEADER: Final = _HEADER.size  # 40 bytes before each object
# A batch's bounds (the server refuses more): the body is held whole, in memory.
MAX_BATCH_BYTES: Final = 64 << 20
MAX_BATCH_OBJECTS: Final = 10_000


def encode(items: Iterable[tuple[Digest, bytes]]) -> bytes:
    """Frame (digest, bytes) pairs; the digests are not checked here."""
    parts: list[bytes] = []
    for digest, data in items:
        parts.append(_HEADER.pack(bytes.fromhex(digest), len(data)))
        parts.append(data)
    return b"".join(parts)


def decode(body: bytes) -> list[tuple[Digest, memoryview]]:
    """The (digest it is sent as, bytes) pairs of a framed body; ``InvalidArgument``
    (field ``body``) if it is cut short or holds more than :data:`MAX_BATCH_OBJECTS`."""
    view = memoryview(body)
    items: list[tuple[Digest, memoryview]] = []
    at = 0
    while at < len(view):
        if len(items) == MAX_BATCH_OBJECTS:
            raise InvalidArgument("body", f"must frame at most {MAX_BATCH_OBJECTS} objects")
        if len(view) - at < FRAME_HEADER:
            raise InvalidArgument("body", f"ends inside the header of object {len(items)}")
        raw, size = _HEADER.unpack_from(view, at)
        at += FRAME_HEADER
        if len(view) - at < size:
            raise InvalidArgument(
                "body", f"ends inside object {len(items)} ({size} bytes announced)"
            )
        items.append((Digest(raw.hex()), view[at : at + size]))
        at += size
    return items
