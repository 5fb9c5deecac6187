"""The search language: text to a checked syntax tree (pure; no SQL here).

``metrics.acc > 0.9 and (hyperparameters.lr < 0.01 or tags contains 'best')``

The grammar is lark's (LALR), so parsing never recurses; turning its tree into ours
does, under a depth limit. Every error is a :class:`QueryError` whose ``position`` points
at the offending token and whose message shows it with a caret. Fields are checked
against the entity searched (runs, experiments, projects) and values against the
field (a status must be one that exists, a time a time), so a typo is an error, not an
empty result. The store compiles the tree to SQL; tests hold it to a plain-Python
reading of the same tree.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cairn.core.digest import DIGEST_PATTERN
from cairn.core.errors import QueryError
from cairn.core.model import RunStatus

__all__ = [
    "MAX_DEPTH",
    "MAX_QUERY_CHARS",
    "And",
    "Compare",
    "Field",
    "FieldKind",
    "IsNull",
    "Node",
    "Not",
    "Or",
    "OrderKey",
    "Scope",
    "Value",
    "parse_order",
    "parse_query",
    "time_ms",
]

MAX_QUERY_CHARS = 16_384
_HEX64 = re.compile(DIGEST_PATTERN)
MAX_DEPTH = 64  # nesting of and/or/not/parentheses

Value = int | float | str | bool | dt.datetime


class Scope(enum.StrEnum):
    """What is searched; each has its own fields."""

    RUNS = "runs"
    EXPERIMENTS = "experiments"
    PROJECTS = "projects"
    REPOSITORIES = "repositories"


class FieldKind(enum.StrEnum):
    """How a field is stored, which says how it compares."""

    METRIC = "metric"  # latest value of the series (float; NaN never matches)
    HYPERPARAMETER = "hyperparameter"  # int | float | str | bool, compared by type
    ATTRIBUTE = "attribute"  # scalar JSON values
    TAGS = "tags"  # a set of strings: contains
    TEXT = "text"  # a string column
    TIME = "time"  # milliseconds since the epoch; compared with dates and times
    DURATION = "duration"  # seconds (float)
    STATUS = "status"  # a run status, crashed included
    DATASET_VERSION = "dataset_version"  # the dataset versions a run logged: any one matches


@dataclass(frozen=True, slots=True)
class Field:
    """``name`` is the canonical field (``metrics``, ``status``, ``project.name``);
    ``key`` the metric, hyperparameter or attribute key."""

    name: str
    kind: FieldKind
    key: str | None = None

    def __str__(self) -> str:
        if self.key is None:
            return self.name
        plain = self.key.replace("_", "a").replace("-", "a").isalnum()
        return f"{self.name}.{self.key if plain else '`' + self.key.replace('`', '``') + '`'}"


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``; ``op``: = != < <= > >= in (value: a tuple) like ilike contains."""

    field: Field
    op: str
    value: Value | tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class IsNull:
    """``field is null``: the key is missing (a NaN metric is not missing)."""

    field: Field


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Compare | IsNull | Not | And | Or


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool = False

    def __str__(self) -> str:
        return f"{'-' if self.descending else ''}{self.field}"


# -- fields ---------------------------------------------------------------------------
_KEYED = {
    "metrics": FieldKind.METRIC,
    "hyperparameters": FieldKind.HYPERPARAMETER,
    "params": FieldKind.HYPERPARAMETER,
    "attributes": FieldKind.ATTRIBUTE,
}
_CANONICAL = {"params": "hyperparameters"}
_COMMON = {
    "name": FieldKind.TEXT,
    "id": FieldKind.TEXT,
    "owner": FieldKind.TEXT,
    "description": FieldKind.TEXT,
    "created_at": FieldKind.TIME,
    "updated_at": FieldKind.TIME,
    "tags": FieldKind.TAGS,
}
_PLAIN: dict[Scope, dict[str, FieldKind]] = {
    Scope.PROJECTS: dict(_COMMON),
    Scope.EXPERIMENTS: {**_COMMON, "project.name": FieldKind.TEXT, "project.id": FieldKind.TEXT},
    Scope.REPOSITORIES: {
        **_COMMON,
        "project.name": FieldKind.TEXT,
        "project.id": FieldKind.TEXT,
    },
    Scope.RUNS: {
        **_COMMON,
        "status": FieldKind.STATUS,
        "start_time": FieldKind.TIME,
        "end_time": FieldKind.TIME,
        "duration": FieldKind.DURATION,
        "project.name": FieldKind.TEXT,
        "project.id": FieldKind.TEXT,
        "experiment.name": FieldKind.TEXT,
        "experiment.id": FieldKind.TEXT,
        "parent.id": FieldKind.TEXT,
        "commit.id": FieldKind.TEXT,
        "dataset.version": FieldKind.DATASET_VERSION,
    },
}
_KEYED_IN: dict[Scope, tuple[str, ...]] = {
    Scope.PROJECTS: ("attributes",),
    Scope.EXPERIMENTS: ("attributes",),
    Scope.REPOSITORIES: ("attributes",),
    Scope.RUNS: ("metrics", "hyperparameters", "params", "attributes"),
}

# Which operators each kind of field takes.
_ORDERED = frozenset({"=", "!=", "<", "<=", ">", ">="})
_OPS: dict[FieldKind, frozenset[str]] = {
    FieldKind.METRIC: _ORDERED | {"in"},
    FieldKind.HYPERPARAMETER: _ORDERED | {"in", "like", "ilike"},
    FieldKind.ATTRIBUTE: _ORDERED | {"in", "like", "ilike"},
    FieldKind.TAGS: frozenset({"contains"}),
    FieldKind.TEXT: _ORDERED | {"in", "like", "ilike"},
    FieldKind.TIME: _ORDERED | {"in"},
    FieldKind.DURATION: _ORDERED | {"in"},
    FieldKind.STATUS: frozenset({"=", "!=", "in"}),
    FieldKind.DATASET_VERSION: frozenset({"=", "!=", "in", "like", "ilike"}),
}

GRAMMAR = r"""
?query: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> negate
         | atom
?atom: predicate
     | "(" or_expr ")"
predicate: field OP value                     -> compare
         | field NOT? IN "(" value ("," value)* ","? ")" -> member
         | field NOT? LIKE STRING             -> like
         | field NOT? ILIKE STRING            -> ilike
         | field NOT? CONTAINS value          -> contains
         | field IS NOT? NULL                 -> is_null
field: NAME ("." (KEY | QUOTED))?
?value: STRING -> string
      | SIGNED_NUMBER -> number
      | DATETIME -> datetime
      | TRUE -> true
      | FALSE -> false
      | NULL -> null
order_key: MINUS? field

_AND.2: /and\b/i
_OR.2: /or\b/i
NOT.2: /not\b/i
IN.2: /in\b/i
LIKE.2: /like\b/i
ILIKE.2: /ilike\b/i
CONTAINS.2: /contains\b/i
IS.2: /is\b/i
NULL.2: /null\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
MINUS: "-"
OP: "!=" | "<>" | "<=" | ">=" | "=" | "==" | "<" | ">"
NAME: /[A-Za-z_][A-Za-z0-9_\-\/:]*/
KEY: /[A-Za-z0-9_\-\/:]+/
QUOTED: /`([^`]|``)*`/
STRING: /'([^'\\]|\\.)*'/ | /"([^"\\]|\\.)*"/
DATETIME.3: /\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?/
SIGNED_NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/

%ignore /\s+/
"""


@functools.cache
def _parser() -> Lark:
    # Built at the first query, not at import: building the tables takes ~80 ms, which
    # every embedded client (the service imports this module) would pay at start-up.
    return Lark(
        GRAMMAR,
        start=["query", "order_key"],
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


# How lark's terminal names read in an error message.
_SHOWN = {
    "_AND": "and",
    "_OR": "or",
    "NOT": "not",
    "IN": "in",
    "LIKE": "like",
    "ILIKE": "ilike",
    "CONTAINS": "contains",
    "IS": "is",
    "NULL": "null",
    "TRUE": "true",
    "FALSE": "false",
    "OP": "a comparison (= != < <= > >=)",
    "NAME": "a field",
    "QUOTED": "a `quoted key`",
    "KEY": "a key",
    "STRING": "a 'string'",
    "SIGNED_NUMBER": "a number",
    "DATETIME": "a date or time",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "DOT": "'.'",
    "MINUS": "'-'",
    "$END": "the end",
}


def parse_query(text: str, scope: Scope = Scope.RUNS) -> Node | None:
    """The checked tree of ``text``; None for an empty query (everything matches)."""
    if not isinstance(text, str):
        raise QueryError(f"a query is a string, got {type(text).__name__}", position=0, expected=[])
    if len(text) > MAX_QUERY_CHARS:
        raise _error(text, MAX_QUERY_CHARS, f"longer than {MAX_QUERY_CHARS} characters")
    if not text.strip():
        return None
    _check_encodable(text)
    tree = _parse(text, "query")
    return _Builder(text, scope).node(tree, 0)


def _check_encodable(text: str) -> None:
    """Text that is not Unicode (a lone surrogate) cannot reach a database."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _error(text, exc.start, "not valid Unicode (a lone surrogate)") from None


def parse_order(keys: Sequence[str], scope: Scope = Scope.RUNS) -> list[OrderKey]:
    """``["-metrics.acc", "created_at"]``: a leading ``-`` is descending."""
    order = []
    for text in keys:
        if not isinstance(text, str) or len(text) > 1024:
            raise QueryError(
                "an order key is a field name, e.g. '-metrics.acc'",
                position=0,
                expected=["a field"],
                order_by=str(text)[:100],
            )
        _check_encodable(text)
        tree = _parse(text, "order_key")
        children = tree.children
        descending = len(children) == 2
        found = _Builder(text, scope).field(children[-1])
        if found.kind in (FieldKind.TAGS, FieldKind.DATASET_VERSION):
            # a run may hold several of either: there is no one value to sort by
            raise _error(text, 0, f"{found} cannot order results", expected=["a field"])
        order.append(OrderKey(found, descending))
    return order


def _parse(text: str, start: str) -> Tree[Token]:
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None


def _syntax_error(text: str, exc: UnexpectedInput) -> QueryError:
    position: int
    expected: Iterable[str]
    if isinstance(exc, UnexpectedEOF):
        position = len(text)
        expected = exc.expected
        found = "but the query ends"
    elif isinstance(exc, UnexpectedToken):
        start = exc.token.start_pos
        position = start if isinstance(start, int) else len(text)
        expected = exc.accepts or exc.expected
        found = "but the query ends" if exc.token.type == "$END" else f"found {exc.token.value!r}"
        if exc.token.type == "$END":
            position = len(text)
    elif isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        expected = exc.allowed or set()
        found = f"found {text[position]!r}"
    else:  # pragma: no cover - lark raises only the three above
        position, expected, found = 0, set(), "cannot parse"
    shown = sorted({_SHOWN.get(name, name.lower()) for name in expected})
    what = f"expected {_listed(shown)}, {found}" if shown else found
    return _error(text, position, what, expected=shown)


def _listed(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return "one of " + ", ".join(items)


def _error(
    text: str, position: int, what: str, *, expected: list[str] | None = None, **details: Any
) -> QueryError:
    # The query's line with a caret under the position (long queries: a window around it).
    start = max(0, position - 60)
    window = text[start : position + 60].replace("\n", " ")
    caret = " " * (position - start + (3 if start else 0)) + "^"
    lead = "..." if start else ""
    message = f"{what} at position {position}:\n  {lead}{window}\n  {caret}"
    return QueryError(message, position=position, expected=expected or [], **details)


class _Builder:
    """Our tree from lark's, checking fields, operators and values as it goes."""

    def __init__(self, text: str, scope: Scope) -> None:
        self.text = text
        self.scope = scope

    def fail(
        self,
        item: Tree[Token] | Token,
        what: str,
        expected: list[str] | None = None,
    ) -> QueryError:
        return _error(self.text, _start(item), what, expected=expected)

    def node(self, tree: Tree[Token] | Token, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(tree, f"nested deeper than {MAX_DEPTH} levels")
        assert isinstance(tree, Tree)
        rule = tree.data
        if rule == "or_expr":
            return Or(tuple(self.node(c, depth + 1) for c in tree.children))
        if rule == "and_expr":
            return And(tuple(self.node(c, depth + 1) for c in tree.children))
        if rule == "negate":
            return Not(self.node(tree.children[1], depth + 1))
        return self.predicate(tree)

    def predicate(self, tree: Tree[Token]) -> Node:
        rule = tree.data
        children = list(tree.children)
        field = self.field(children[0])
        negated = any(isinstance(c, Token) and c.type == "NOT" for c in children)
        found: Node
        if rule == "is_null":
            found = IsNull(field)
            return Not(found) if negated else found
        ops = _OPS[field.kind]
        if rule == "compare":
            op_token = children[1]
            op = {"==": "=", "<>": "!="}.get(str(op_token), str(op_token))
            value_tree = children[2]
            if op not in ops:
                raise self.fail(op_token, f"{field} takes {', '.join(sorted(ops))}, not {op}")
            value = self.value(value_tree, field)
            if value is None:
                raise self.fail(
                    value_tree,
                    "compare with null using 'is null' or 'is not null'",
                    expected=["is null"],
                )
            if isinstance(value, bool) and op not in ("=", "!="):
                raise self.fail(op_token, "true and false compare only with = and !=")
            return Compare(field, op, value)
        name = {"member": "in", "like": "like", "ilike": "ilike", "contains": "contains"}[rule]
        op_token = next(c for c in children[1:] if isinstance(c, Token) and c.type != "NOT")
        if name not in ops:
            raise self.fail(op_token, f"{field} takes {', '.join(sorted(ops))}, not {name}")
        if rule == "member":
            values = []
            for item in children[1:]:
                if isinstance(item, Tree):
                    value = self.value(item, field)
                    if value is None:
                        raise self.fail(item, "null is not a value of a list; use 'is null'")
                    values.append(value)
            found = Compare(field, "in", tuple(values))
        elif rule == "contains":
            value_tree = children[-1]
            value = self.value(value_tree, field)
            if not isinstance(value, str):
                raise self.fail(value_tree, "tags contains a 'string'", expected=["a 'string'"])
            found = Compare(field, "contains", value)
        else:
            pattern = _string(children[-1], keep="%_\\")
            if "\x00" in pattern:
                raise self.fail(children[-1], "a pattern cannot hold NUL (no stored text does)")
            found = Compare(field, name, pattern)
        return Not(found) if negated else found

    def field(self, tree: Tree[Token] | Token) -> Field:
        assert isinstance(tree, Tree)
        parts = tree.children
        head = str(parts[0])
        lowered = head.lower()
        if len(parts) == 1:
            kind = _PLAIN[self.scope].get(lowered)
            if kind is None:
                if lowered in _KEYED:
                    raise self.fail(
                        tree, f"{lowered} needs a key: {lowered}.KEY", expected=[f"{lowered}.KEY"]
                    )
                raise self.unknown(tree, head)
            return Field(lowered, kind)
        key_token = parts[1]
        assert isinstance(key_token, Token)
        key = str(key_token)
        if key_token.type == "QUOTED":
            key = key[1:-1].replace("``", "`")
        if lowered in _KEYED and lowered in _KEYED_IN[self.scope]:
            if not key:
                raise self.fail(key_token, "a key cannot be empty")
            return Field(_CANONICAL.get(lowered, lowered), _KEYED[lowered], key)
        dotted = f"{lowered}.{key.lower()}"
        kind = _PLAIN[self.scope].get(dotted)
        if kind is None or key_token.type == "QUOTED":
            raise self.unknown(tree, f"{head}.{key}")
        return Field(dotted, kind)

    def unknown(self, tree: Tree[Token], name: str) -> QueryError:
        valid = sorted(f"{k}.KEY" for k in _KEYED_IN[self.scope]) + sorted(_PLAIN[self.scope])
        return self.fail(
            tree,
            f"unknown field {name!r} for {self.scope.value}; fields are " + ", ".join(valid),
            expected=valid,
        )

    def value(self, tree: Tree[Token] | Token, field: Field) -> Value | None:
        assert isinstance(tree, Tree)
        token = tree.children[0]
        assert isinstance(token, Token)
        kind = tree.data
        value: Value | None
        if kind == "string":
            value = _string(token)
        elif kind == "number":
            try:
                value = _number(str(token))
            except ValueError:  # Python reads at most 4,300 digits of an int
                raise self.fail(token, "a number of more than 4,300 digits") from None
        elif kind == "datetime":
            value = self.time(token)
        elif kind in ("true", "false"):
            value = kind == "true"
        else:
            value = None
        if value is None:
            return None
        return self.fit(token, field, value)

    def fit(self, token: Token, field: Field, value: Value) -> Value:
        """The value as the field compares it, or an error if it never could."""
        kind = field.kind
        if isinstance(value, str) and "\x00" in value:
            raise self.fail(token, "a string in a query cannot hold NUL (no stored text does)")
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and not _INT64_MIN <= value <= _INT64_MAX
        ):
            # Beyond what any stored integer can be: compared as a float (infinite past
            # the float range), which orders it right against every stored number.
            value = _as_float(value)
        if kind is FieldKind.TIME:
            if isinstance(value, str):
                value = self.time(token, value)
            if isinstance(value, bool) or not isinstance(value, (int, float, dt.datetime)):
                raise self.fail(
                    token,
                    f"{field} compares with a date or time "
                    "(2026-01-31, 2026-01-31T12:00:00Z) or milliseconds "
                    "since the epoch",
                    expected=["a date or time"],
                )
            return value
        if kind is FieldKind.DATASET_VERSION:
            # a whole digest: a short id would silently match nothing
            if not (token.type == "STRING" and isinstance(value, str) and _HEX64.fullmatch(value)):
                raise self.fail(
                    token,
                    f"{field} is a whole version id in quotes (64 lowercase hex characters); "
                    "for a prefix write dataset.version like 'abc1234%'",
                    expected=["a version id"],
                )
            return value
        if isinstance(value, dt.datetime):
            if kind in (FieldKind.METRIC, FieldKind.DURATION):
                raise self.fail(token, f"{field} compares with numbers", expected=["a number"])
            return _string(token) if token.type == "STRING" else str(token)
        if kind in (FieldKind.METRIC, FieldKind.DURATION) and (isinstance(value, (str, bool))):
            raise self.fail(token, f"{field} compares with numbers", expected=["a number"])
        if kind in (FieldKind.TEXT, FieldKind.STATUS, FieldKind.TAGS) and not isinstance(
            value, str
        ):
            raise self.fail(token, f"{field} compares with a 'string'", expected=["a 'string'"])
        if kind is FieldKind.STATUS:
            allowed = [s.value for s in RunStatus]
            if value not in allowed:
                raise self.fail(
                    token, f"status is one of {', '.join(allowed)}, not {value!r}", expected=allowed
                )
        return value

    def time(self, token: Token, text: str | None = None) -> dt.datetime:
        raw = text if text is not None else str(token)
        try:
            parsed = dt.datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
        except ValueError:
            raise self.fail(
                token,
                f"{raw!r} is not a date or time (2026-01-31, 2026-01-31T12:00:00Z)",
                expected=["a date or time"],
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)  # times without a zone are UTC
        return parsed


def _start(item: Tree[Token] | Token) -> int:
    if isinstance(item, Token):
        return item.start_pos or 0
    return item.meta.start_pos if not item.meta.empty else 0


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _as_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _string(token: Token | Any, keep: str = "") -> str:
    """A quoted string's text. ``keep``: characters whose escapes stay escaped (a like
    pattern keeps ``\\%``, ``\\_`` and ``\\\\`` for the pattern to read)."""
    raw = str(token)[1:-1]
    if "\\" not in raw:
        return raw
    out = []
    chars = iter(raw)
    for char in chars:
        if char == "\\":
            following = next(chars, "\\")
            if following in keep:
                out.append("\\" + following)
            else:
                out.append(_ESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def time_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch, as times are stored."""
    return int(value.timestamp() * 1000)
