"""Typed copies of stored values that search compares without parsing JSON."""

from __future__ import annotations

import json
import math

__all__ = ["attribute_copies", "hyperparameter_int"]


def attribute_copies(value_json: str) -> tuple[str, float | None, str | None]:
    """(kind, number, text) of an attribute's JSON: a number, a string, a bool
    ("true"/"false" as text), null, or "other" (lists, objects, NaN and infinities)."""
    if value_json[:1] in ("[", "{"):
        return "other", None, None  # not a scalar: no need to parse it
    try:
        value = json.loads(value_json)
    except ValueError:
        return "other", None, None
    if isinstance(value, bool):
        return "bool", None, "true" if value else "false"
    if isinstance(value, int):
        if abs(value) > 2**63:
            return "other", None, None
        return "number", float(value), None
    if isinstance(value, float):
        return ("number", value, None) if math.isfinite(value) else ("other", None, None)
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL text cannot hold NUL: kept as JSON only
            return "other", None, None
        return "string", None, value
    if value is None:
        return "null", None, None
    return "other", None, None


def hyperparameter_int(kind: str, text: str) -> int | None:
    return int(text) if kind == "int" else None
