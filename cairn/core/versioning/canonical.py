"""Canonical bytes and content ids of versioned objects (blobs, tree nodes, commits).

The canonical form of an object is JSON with sorted keys, no whitespace and no floats: a
number that is a value (a hyperparameter, a range bound) travels as ``[kind, text]``
(``["float", "0.01"]``, ``["int", "1"]``, ``["bool", "true"]``, ``["str", "1"]``), so 1, 1.0,
True and "1" stay distinct and every float has one spelling (``repr``, which round-trips).
Lists whose order carries no meaning (requirements, components, discrete sets) are sorted by
the objects themselves before they get here. The id of an object is the BLAKE3 digest of its
kind and its canonical bytes: the same content always has the same id, any change of
content changes it.
"""

from __future__ import annotations

import json
from typing import Any

from cairn.core.digest import Digest, digest_bytes
from cairn.core.errors import InvalidArgument
from cairn.core.model import HyperparameterValue, decode_hyperparameter, encode_hyperparameter
from cairn.core.validation import check_hyperparameter_value

__all__ = [
    "Json",
    "canonical_bytes",
    "decode_value",
    "encode_value",
    "object_digest",
    "parse_canonical",
]

Json = Any  # a JSON value: None, bool, int, str, list, dict (no floats in canonical forms)


def canonical_bytes(value: Json) -> bytes:
    """The one byte form of a JSON value."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode()
    except UnicodeEncodeError:
        raise InvalidArgument("value", "holds a lone surrogate, which is not text") from None
    except (TypeError, ValueError) as exc:
        raise InvalidArgument("value", f"has no canonical form: {exc}") from None


def parse_canonical(data: bytes, what: str) -> Json:
    """The JSON value of canonical bytes (read back from a store)."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument(what, f"is not canonical JSON: {exc}") from None


def object_digest(kind: str, body: bytes) -> Digest:
    """The content id of an object of ``kind`` whose canonical bytes are ``body``."""
    return digest_bytes(kind.encode() + b"\0" + body)


def encode_value(value: HyperparameterValue) -> list[str]:
    """A typed scalar as ``[kind, canonical text]``."""
    kind, text, _ = encode_hyperparameter(value)
    return [kind, text]


def decode_value(encoded: Json, what: str) -> HyperparameterValue:
    """The scalar of ``[kind, text]``."""
    if (
        not isinstance(encoded, list)
        or len(encoded) != 2
        or encoded[0] not in ("int", "float", "str", "bool")
        or not isinstance(encoded[1], str)
    ):
        raise InvalidArgument(what, f"is not an encoded value: {encoded!r}")
    try:
        value = decode_hyperparameter(encoded[0], encoded[1])
    except ValueError:
        raise InvalidArgument(what, f"is not an encoded value: {encoded!r}") from None
    value = check_hyperparameter_value(value, what)  # an int in 64 bits, text without NUL
    if encode_value(value) != encoded:  # one spelling per value: "1.0" is not "1.00"
        raise InvalidArgument(what, f"is not in canonical form: {encoded!r}")
    return value


def shown(value: Json) -> str:
    """A canonical field value for people: a typed scalar as itself (a string quoted, so
    that 1 and "1" still differ), anything else as compact JSON."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and value[0] in ("int", "float", "bool", "str")
        and isinstance(value[1], str)
    ):
        return value[1] if value[0] != "str" else json.dumps(value[1], ensure_ascii=False)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
