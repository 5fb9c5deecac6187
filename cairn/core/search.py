"""What a search returns: whole records (an entity with its values) a page at a time,
and the opaque cursor that asks for the next page."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cairn.core.digest import digest_bytes
from cairn.core.errors import InvalidArgument
from cairn.core.model import ExperimentInfo, HyperparameterValue, ProjectInfo, RunInfo
from cairn.core.versioning.info import RepositoryInfo

__all__ = [
    "Cursor",
    "ExperimentRecord",
    "Page",
    "ProjectRecord",
    "Record",
    "RepositoryRecord",
    "RunRecord",
    "check_limit",
    "decode_cursor",
    "encode_cursor",
    "query_fingerprint",
]

T = TypeVar("T")
Info = TypeVar("Info", ExperimentInfo, ProjectInfo, RepositoryInfo)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run with its values: hyperparameters, the latest value of each metric (NaN
    as logged), tags and attributes. With ``columns=``, only the values asked for."""

    info: RunInfo
    hyperparameters: dict[str, HyperparameterValue] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True, slots=True)
class Record(Generic[Info]):
    """An experiment, project or repository with its tags and attributes."""

    info: Info
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def name(self) -> str:
        return self.info.name


ExperimentRecord = Record[ExperimentInfo]
ProjectRecord = Record[ProjectInfo]
RepositoryRecord = Record[RepositoryInfo]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results, and the cursor of the next one (None: this was the last)."""

    items: list[T]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the last page ended: the sort values and id of its last row, and which
    query and order it belongs to (a cursor of another query is refused)."""

    values: tuple[Any, ...]
    last_id: str
    fingerprint: str


def check_limit(limit: object, maximum: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit", f"must be a whole number from 1 to {maximum}")
    if limit > maximum:
        raise InvalidArgument(
            "limit",
            f"at most {maximum} (max_search_limit, CAIRN_MAX_SEARCH_LIMIT); "
            "page through more with the cursor",
            maximum=maximum,
        )
    return limit


def query_fingerprint(scope: str, query: str, order: Sequence[str], where: str) -> str:
    """Short digest naming what a cursor pages through."""
    text = json.dumps([scope, query, list(order), where], ensure_ascii=False)
    return digest_bytes(text.encode())[:16]


def encode_cursor(cursor: Cursor) -> str:
    body = json.dumps(
        [cursor.fingerprint, cursor.last_id, list(cursor.values)],
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=True,  # a metric may be infinite (NaN never: it sorts as missing)
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(text: object, fingerprint: str) -> Cursor:
    """The cursor a page handed out; ``InvalidArgument`` (field ``cursor``) if it is not
    one, or belongs to another query, order or scope."""
    if not isinstance(text, str) or len(text) > 65_536:
        raise InvalidArgument("cursor", "must be the next_cursor of a page")
    try:
        padded = text + "=" * (-len(text) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        found, last_id, values = body
        if not (isinstance(found, str) and isinstance(last_id, str) and isinstance(values, list)):
            raise ValueError("bad shape")
        if any(not isinstance(v, (int, float, str, type(None))) for v in values):
            raise ValueError("bad value")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("cursor", "must be the next_cursor of a page") from None
    if found != fingerprint:
        raise InvalidArgument(
            "cursor", "belongs to another query, order or scope: start again without it"
        )
    return Cursor(tuple(values), last_id, found)
