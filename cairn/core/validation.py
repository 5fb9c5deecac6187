"""Input rules. Each check raises InvalidArgument naming the field and the rule."""

from __future__ import annotations

import json
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cairn.core.columns import SeriesPoints
from cairn.core.errors import InvalidArgument
from cairn.core.model import MetricRecord

__all__ = [
    "IDEMPOTENCY_KEY_PATTERN",
    "MAX_NAME_LENGTH",
    "UUID_PATTERN",
    "check_artifact_key",
    "check_batch",
    "check_entity_id",
    "check_hyperparameter_value",
    "check_id_fragment",
    "check_idempotency_key",
    "check_mapping",
    "check_metric_value",
    "check_name",
    "check_names",
    "check_record",
    "check_step",
    "check_text",
    "check_timestamp",
    "encode_attribute",
]

MAX_NAME_LENGTH = 256
MAX_TEXT_LENGTH = 65_536
_MAX_INT64 = 2**63 - 1
# C0, DEL and C1 control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Half of a UTF-16 pair on its own: no text, and no byte form for a store or the wire.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Each rule's one spelling; the server's JSON Schemas anchor the same patterns.
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
IDEMPOTENCY_KEY_PATTERN = r"[A-Za-z0-9_.:-]{8,128}"
_UUID = re.compile(UUID_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def check_name(value: object, field: str = "name") -> str:
    """Names and keys: 1-256 characters of any Unicode but control characters."""
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_NAME_LENGTH:
        raise InvalidArgument(
            field, f"must be 1 to {MAX_NAME_LENGTH} characters long, got {len(value)}"
        )
    match = _CONTROL.search(value) or _SURROGATE.search(value)
    if match:
        found = f"U+{ord(match.group()):04X}"
        if _SURROGATE.match(match.group()):
            raise InvalidArgument(field, f"must be text (found a lone surrogate, {found})")
        raise InvalidArgument(field, f"must not contain control characters (found {found})")
    return value


def check_names(values: object, field: str) -> list[str]:
    """A list of names (tags, keys): each checked, duplicates dropped, sorted."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidArgument(f"{field}s", "must be a list of strings, not one string")
    return sorted({check_name(v, field) for v in values})


def check_text(value: object, field: str) -> str:
    """Free text (descriptions): any string up to 64 Ki characters, NUL refused."""
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidArgument(field, f"must be at most {MAX_TEXT_LENGTH} characters long")
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL characters")
    surrogate = _SURROGATE.search(value)
    if surrogate:
        found = f"U+{ord(surrogate.group()):04X}"
        raise InvalidArgument(field, f"must be text (found a lone surrogate, {found})")
    return value


def check_entity_id(value: object, field: str = "id") -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise InvalidArgument(field, "must be a lowercase UUID string")
    return value


_HEX_FRAGMENT = re.compile(r"[0-9a-f]{8,32}")


def check_id_fragment(value: object, field: str = "id") -> str:
    """Part of an id as people give it (the start or the end, 8 hex digits at least;
    dashes and case ignored): its lowercase digits."""
    bare = value.replace("-", "").lower() if isinstance(value, str) else ""
    if not _HEX_FRAGMENT.fullmatch(bare):
        raise InvalidArgument(field, "must be 8 to 32 hex digits of an id (its start or its end)")
    return bare


def check_idempotency_key(value: object) -> str:
    """The key that makes a retried write apply once."""
    if not isinstance(value, str) or not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidArgument(
            "idempotency_key", "must be 8 to 128 characters of letters, digits, '_.:-'"
        )
    return value


def check_hyperparameter_value(value: object, field: str) -> int | float | str | bool:
    """Hyperparameters are int, float, str or bool and keep that type exactly."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_MAX_INT64 - 1 <= value <= _MAX_INT64:
            raise InvalidArgument(field, "integers must fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return check_text(value, field)
    # numpy scalars and friends: keep the kind, drop the wrapper type.
    if isinstance(value, numbers.Integral):
        return check_hyperparameter_value(int(value), field)
    if isinstance(value, numbers.Real):
        return float(value)
    raise InvalidArgument(field, f"must be an int, float, str or bool, got {type(value).__name__}")


def check_metric_value(value: object, field: str = "value") -> float:
    """Metrics are floats (ints accepted); NaN and infinities are allowed."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind is int:
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(field, f"must be a number, got {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgument(field, f"must be a number: {exc}") from None


def check_step(value: object, field: str = "step") -> int:
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidArgument(field, f"must be an integer, got {type(value).__name__}")
        value = int(value)
    if not 0 <= value <= _MAX_INT64:
        raise InvalidArgument(field, "must be between 0 and 2**63-1")
    return value


def check_timestamp(value: object, field: str = "timestamp") -> int:
    """Timestamps are integer milliseconds since the Unix epoch."""
    return check_step(value, field)


def _check_object_keys(value: Any, field: str) -> None:
    """json.dumps turns keys 1, 1.5 and None into strings; refuse them instead, so an
    attribute always comes back equal to what went in."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise InvalidArgument(
                        field, f"object keys must be strings, got {type(key).__name__} {key!r}"
                    )
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def encode_attribute(value: Any, field: str, max_bytes: int) -> str:
    """Attributes are any JSON value; NaN and infinities survive as JSON extensions."""
    try:  # first: json.dumps refuses cycles, which the key walk would loop on
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidArgument(field, f"must be JSON-serializable: {exc}") from None
    _check_object_keys(value, field)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise InvalidArgument(
            field, f"is {size} bytes as JSON, above the limit of {max_bytes} bytes"
        )
    return text


def check_artifact_key(value: object, field: str = "key") -> str:
    """Artifact keys are relative POSIX paths with no '..', empty segments, '\\' or NUL."""
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > 1024:
        raise InvalidArgument(field, "must be at most 1024 characters long")
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL characters")
    if surrogate := _SURROGATE.search(value):
        found = f"U+{ord(surrogate.group()):04X}"
        raise InvalidArgument(field, f"must be text (found a lone surrogate, {found})")
    if "\\" in value:
        raise InvalidArgument(field, "must use '/' as separator, not backslashes")
    if value.startswith("/"):
        raise InvalidArgument(field, "must be a relative path, not an absolute one")
    if len(value) >= 2 and value[1] == ":" and value[0].isalpha():
        raise InvalidArgument(field, "must be a relative path, not a drive path")
    for segment in value.split("/"):
        if segment == "":
            raise InvalidArgument(
                field, "must not contain empty path segments ('//' or a trailing '/')"
            )
        if segment in (".", ".."):
            raise InvalidArgument(field, f"must not contain '{segment}' segments")
        if _CONTROL.search(segment):
            raise InvalidArgument(field, "must not contain control characters")
    return value


def check_mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(field, f"must be a mapping, got {type(value).__name__}")
    return value


def check_record(record: MetricRecord) -> MetricRecord:
    """The full rule set for one point (the client's batcher runs a cached subset)."""
    if not isinstance(record, MetricRecord):
        raise InvalidArgument("metrics", "must be MetricRecord values")
    check_entity_id(record.run_id, "run_id")
    check_name(record.key, "metric key")
    value = check_metric_value(record.value, f"metric {record.key!r}")
    step = check_step(record.step)
    timestamp = check_timestamp(record.timestamp)
    if value is record.value and step is record.step and timestamp is record.timestamp:
        return record
    return MetricRecord(record.run_id, record.key, step, timestamp, value)


def check_batch(batch: Mapping[tuple[str, str], SeriesPoints]) -> None:
    """The rules for a batch from outside the process (the server's input)."""
    for (run_id, key), points in batch.items():
        check_entity_id(run_id, "run_id")
        check_name(key, "metric key")
        n = len(points.steps)
        if len(points.timestamps) != n or len(points.values) != n:
            raise InvalidArgument(f"metric {key!r}", "steps, timestamps and values must align")
        if n and min(points.steps) < 0:
            raise InvalidArgument("step", "must be between 0 and 2**63-1")
        if n and min(points.timestamps) < 0:
            raise InvalidArgument("timestamp", "must be between 0 and 2**63-1")
