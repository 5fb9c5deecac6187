"""A plain-Python reading of the search language: the checked syntax tree of
``cairn.core.query`` evaluated over runs held as plain values, and their order.

Written from the stated semantics, not from the SQL compiler, so the differential tests
can hold one to the other:

- a comparison holds only when the key exists and its value has a type the literal
  compares with; a missing key matches nothing but ``is null``;
- metrics: the latest value (a float); NaN matches no comparison and is not null; an
  int literal compares as a float, as with float hyperparameters;
- hyperparameters compare by type: an int literal matches int values exactly and float
  ones numerically, a float literal both numerically, strings strings, booleans booleans
  (``=``/``!=`` only); infinite and NaN floats match no numeric comparison;
- attributes compare their scalar JSON value: numbers as floats (ints beyond 2**63, NaN
  and infinities never match), strings, booleans; JSON null is ``is null``; lists and
  objects match nothing;
- ``not`` is two-valued; ``in`` is an or of ``=``; ``like`` is case-sensitive, ``ilike``
  folds ASCII letters only; strings compare by code point;
- status ``crashed``: running with a heartbeat older than the timeout; duration:
  (end or now) - start, in seconds;
- ``dataset.version``: the ids of the run's ``dataset-version:ID`` tags (the prefix's case
  kept); a comparison holds when any one of them meets it (``!= X`` too, so a run with X
  and Y matches both ``= X`` and ``!= X``); ``is null``: the run has none;
- order: missing values (NaN metrics included) last in both directions, ties by id in the
  direction of the last sort column (newest first when there is no order); a
  hyperparameter or attribute sorts numbers, then strings, then booleans.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.core.query import (
    And,
    Compare,
    Field,
    FieldKind,
    IsNull,
    Node,
    Not,
    Or,
    OrderKey,
    time_ms,
)

__all__ = ["Context", "OracleRun", "like", "matches", "ordered", "search"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass
class OracleRun:
    """A run as the oracle sees it: its record and every value logged on it."""

    id: str
    name: str
    status: str  # as stored: running, finished, failed, killed
    heartbeat_at: int | None
    start_time: int
    end_time: int | None
    created_at: int
    updated_at: int
    project_id: str
    project_name: str
    experiment_id: str
    experiment_name: str
    owner: str = ""
    description: str = ""
    parent_id: str | None = None
    commit_id: str | None = None
    deleted: bool = False
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # the latest value per key
    tags: set[str] = field(default_factory=set)
    attributes: dict[str, Any] = field(default_factory=dict)  # JSON values


@dataclass(frozen=True)
class Context:
    now: int  # ms
    heartbeat_timeout_ms: int


# -- the filter -------------------------------------------------------------------------
def matches(node: Node | None, run: OracleRun, ctx: Context) -> bool:
    if node is None:
        return True
    if isinstance(node, Not):
        return not matches(node.item, run, ctx)
    if isinstance(node, And):
        return all(matches(item, run, ctx) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, run, ctx) for item in node.items)
    if isinstance(node, IsNull):
        return _is_null(node.field, run, ctx)
    return _compare(node, run, ctx)


def _is_null(f: Field, run: OracleRun, ctx: Context) -> bool:
    if f.kind is FieldKind.METRIC:
        return f.key not in run.metrics  # NaN is a value, not a missing one
    if f.kind is FieldKind.HYPERPARAMETER:
        return f.key not in run.hyperparameters
    if f.kind is FieldKind.ATTRIBUTE:
        return run.attributes.get(f.key or "") is None  # missing or JSON null
    if f.kind is FieldKind.TAGS:
        return not run.tags
    if f.kind is FieldKind.DATASET_VERSION:
        return not dataset_versions(run)
    return plain_value(f, run, ctx) is None


VERSION_TAG = "dataset-version:"


def dataset_versions(run: OracleRun) -> set[str]:
    """The version ids a run logged (run.log_dataset_version tags it so)."""
    return {t[len(VERSION_TAG) :] for t in run.tags if t.startswith(VERSION_TAG)}


def _compare(node: Compare, run: OracleRun, ctx: Context) -> bool:
    f, op, literal = node.field, node.op, node.value
    if op == "in":
        assert isinstance(literal, tuple)
        return any(_compare(Compare(f, "=", v), run, ctx) for v in literal)
    if f.kind is FieldKind.TAGS:
        return op == "contains" and literal in run.tags
    if f.kind is FieldKind.DATASET_VERSION:
        assert isinstance(literal, str)
        versions = dataset_versions(run)
        if op in ("like", "ilike"):
            return any(like(v, literal, fold=op == "ilike") for v in versions)
        return any(_OPS[op](v, literal) for v in versions)
    if op in ("like", "ilike"):
        assert isinstance(literal, str)
        text = _text_of(f, run)
        return text is not None and like(text, literal, fold=op == "ilike")
    assert not isinstance(literal, tuple)
    compare = _OPS[op]
    if f.kind is FieldKind.METRIC:
        value = run.metrics.get(f.key or "")
        if value is None or math.isnan(value) or isinstance(literal, (str, bool, dt.datetime)):
            return False
        return compare(value, _float(literal))
    if f.kind is FieldKind.HYPERPARAMETER:
        return _compare_hyperparameter(f, compare, literal, run)
    if f.kind is FieldKind.ATTRIBUTE:
        return _compare_attribute(f, compare, literal, run)
    column = plain_value(f, run, ctx)
    if column is None:
        return False
    if f.kind is FieldKind.TIME:
        ms = time_ms(literal) if isinstance(literal, dt.datetime) else literal
        return compare(column, ms)
    return compare(column, literal)


def _compare_hyperparameter(
    f: Field, compare: Callable[[Any, Any], bool], literal: Any, run: OracleRun
) -> bool:
    if f.key not in run.hyperparameters:
        return False
    value = run.hyperparameters[f.key]
    if isinstance(literal, bool) or isinstance(value, bool):
        both = isinstance(literal, bool) and isinstance(value, bool)
        return both and compare(_bool_text(value), _bool_text(literal))
    if isinstance(literal, str) or isinstance(value, str):
        return isinstance(literal, str) and isinstance(value, str) and compare(value, literal)
    # Both numbers.
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if isinstance(literal, int) and isinstance(value, int):
        return compare(value, literal)  # exact, above 2**53 too
    return compare(float(value), _float(literal))


def _compare_attribute(
    f: Field, compare: Callable[[Any, Any], bool], literal: Any, run: OracleRun
) -> bool:
    if f.key not in run.attributes:
        return False
    kind, value = attribute_scalar(run.attributes[f.key])
    if isinstance(literal, bool):
        return kind == "bool" and compare(value, _bool_text(literal))
    if isinstance(literal, (int, float)):
        return kind == "number" and compare(value, _float(literal))
    return kind == "string" and compare(value, literal)


def attribute_scalar(value: Any) -> tuple[str, Any]:
    """(kind, comparable value) of a JSON value: number (a float), string, bool (its
    text), null or other (lists, objects, NaN, infinities, ints beyond 64 bits)."""
    if isinstance(value, bool):
        return "bool", _bool_text(value)
    if isinstance(value, int):
        return ("number", float(value)) if abs(value) <= 2**63 else ("other", None)
    if isinstance(value, float):
        return ("number", value) if math.isfinite(value) else ("other", None)
    if isinstance(value, str):
        return "string", value
    if value is None:
        return "null", None
    return "other", None


def _text_of(f: Field, run: OracleRun) -> str | None:
    """The string a like/ilike looks at, if the value is one."""
    if f.kind is FieldKind.HYPERPARAMETER:
        value = run.hyperparameters.get(f.key or "")
        return value if isinstance(value, str) else None
    if f.kind is FieldKind.ATTRIBUTE:
        value = run.attributes.get(f.key or "")
        return value if isinstance(value, str) else None
    value = plain_value(f, run, None)
    return value if isinstance(value, str) else None


def effective_status(run: OracleRun, ctx: Context) -> str:
    stale = run.heartbeat_at is not None and run.heartbeat_at < ctx.now - ctx.heartbeat_timeout_ms
    return "crashed" if run.status == "running" and stale else run.status


def plain_value(f: Field, run: OracleRun, ctx: Context | None) -> Any:
    """The value of a field that is not keyed (None: missing)."""
    name = f.name
    if name == "status":
        assert ctx is not None
        return effective_status(run, ctx)
    if name == "duration":
        assert ctx is not None
        end = run.end_time if run.end_time is not None else ctx.now
        return (end - run.start_time) / 1000.0
    simple = {
        "id": run.id,
        "name": run.name,
        "owner": run.owner,
        "description": run.description,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "project.name": run.project_name,
        "project.id": run.project_id,
        "experiment.name": run.experiment_name,
        "experiment.id": run.experiment_id,
        "parent.id": run.parent_id,
        "commit.id": run.commit_id,
    }
    return simple[name]


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _float(value: Any) -> float:
    """A number as a float; ints too big for one saturate to an infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def like(text: str, pattern: str, *, fold: bool) -> bool:
    """SQL LIKE with backslash escapes: ``%`` any run of characters, ``_`` one
    character; ``fold``: ASCII letters only compare without case."""
    if fold:
        text, pattern = text.translate(_ASCII_LOWER), pattern.translate(_ASCII_LOWER)
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.fullmatch("".join(out), text, flags=re.DOTALL) is not None


# -- the order --------------------------------------------------------------------------
def sort_values(key: OrderKey, run: OracleRun, ctx: Context) -> list[Any]:
    """The values one order key sorts by, most significant first (None: missing,
    sorted last whatever the direction)."""
    f = key.field
    if f.kind is FieldKind.METRIC:
        value = run.metrics.get(f.key or "")
        return [None if value is None or math.isnan(value) else value]
    if f.kind is FieldKind.HYPERPARAMETER:
        if f.key not in run.hyperparameters:
            return [None, None, None]
        value = run.hyperparameters[f.key]
        if isinstance(value, bool):
            return [2, None, _bool_text(value)]
        if isinstance(value, str):
            return [1, None, value]
        number = float(value)  # ints sort by their float copy: huge ones may tie
        return [0, number if math.isfinite(number) else None, None]
    if f.kind is FieldKind.ATTRIBUTE:
        if f.key not in run.attributes:
            return [None, None, None]
        kind, scalar = attribute_scalar(run.attributes[f.key])
        klass = {"number": 0, "string": 1, "bool": 2}.get(kind)
        return [klass, scalar if kind == "number" else None, scalar if klass in (1, 2) else None]
    return [plain_value(f, run, ctx)]


def _compare_values(a: Any, b: Any, descending: bool) -> int:
    if a is None or b is None:
        return (a is None) - (b is None)  # missing last, in both directions
    if a == b:
        return 0
    less = a < b
    return (-1 if less else 1) * (-1 if descending else 1)


def ordered(runs: Sequence[OracleRun], order: Sequence[OrderKey], ctx: Context) -> list[OracleRun]:
    directions = [k.descending for k in order for _ in sort_values(k, runs[0], ctx)] if runs else []
    id_descending = directions[-1] if directions else True
    keyed = [([v for k in order for v in sort_values(k, r, ctx)], r) for r in runs]

    def cmp(x: tuple[list[Any], OracleRun], y: tuple[list[Any], OracleRun]) -> int:
        for a, b, descending in zip(x[0], y[0], directions, strict=True):
            found = _compare_values(a, b, descending)
            if found:
                return found
        return _compare_values(x[1].id, y[1].id, id_descending)

    return [r for _, r in sorted(keyed, key=functools.cmp_to_key(cmp))]


def search(
    runs: Sequence[OracleRun],
    node: Node | None,
    order: Sequence[OrderKey],
    ctx: Context,
    *,
    include_deleted: bool = False,
) -> list[OracleRun]:
    """What find_runs returns, all pages together, in order."""
    found = [r for r in runs if (include_deleted or not r.deleted) and matches(node, r, ctx)]
    return ordered(found, order, ctx)
