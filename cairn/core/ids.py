"""Identifiers: time-sortable UUIDv7 strings, with a distinct type per entity."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import NewType

__all__ = [
    "EntityId",
    "ExperimentId",
    "ProjectId",
    "RunId",
    "new_id",
    "short_id",
    "uuid7",
]

EntityId = NewType("EntityId", str)
ProjectId = NewType("ProjectId", str)
ExperimentId = NewType("ExperimentId", str)
RunId = NewType("RunId", str)


def uuid7(now_ms: int, rand: Callable[[int], int] = secrets.randbits) -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits.

    Sorting the strings sorts by creation time, which keeps index inserts local.
    """
    value = (now_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= rand(12) << 64
    value |= 0b10 << 62  # variant
    value |= rand(62)
    return str(uuid.UUID(int=value))


def new_id(now_ms: int) -> EntityId:
    return EntityId(uuid7(now_ms))


SHORT_ID_LENGTH = 8


def short_id(entity_id: str) -> str:
    """The id as people read it: its last 8 hex digits. A UUIDv7 starts with the time, so
    ids of one day share their first digits; the random tail tells them apart (as git's
    short hashes do), and lookups accept it (see ``Client.get_run``)."""
    return entity_id.replace("-", "")[-SHORT_ID_LENGTH:]
