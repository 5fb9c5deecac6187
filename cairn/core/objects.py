"""Values about stored objects that every layer passes around."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from cairn.core.digest import Digest

__all__ = ["ObjectInfo", "Progress"]

# Told how many more bytes have moved, as they move (for progress bars).
Progress = Callable[[int], None]


class ObjectInfo(NamedTuple):
    """What a put returns: the digest the store computed and the size in bytes."""

    digest: Digest
    size: int
