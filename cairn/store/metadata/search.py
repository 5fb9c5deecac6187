"""Search compiled to SQL: a checked query tree (``cairn.core.query``) becomes one
parameterized SQLAlchemy statement; user input is only ever a bound value.

Semantics (docs/search.md says them to users; tests hold the SQL to a plain-Python
reading of the same tree, on both databases):

- A comparison is true only when the key exists and its value has a type the literal
  compares with (numbers with numbers, strings with strings, booleans with booleans);
  a NaN metric matches no comparison; ``is null`` means the key is missing.
- ``not`` is two-valued: ``not metrics.acc > 0.9`` holds for a run without ``acc``. The
  tree is put in negation normal form and each negated leaf is ``NOT COALESCE(leaf,
  FALSE)``, so positive leaves stay plain column comparisons the planner can index.
- Ordering puts missing values (and NaN metrics) last in both directions; ties are
  broken by id. Pages are keyset pages: the cursor holds the last row's sort values.
- ``dataset.version`` is read from the run's ``dataset-version:ID`` tags: true when any
  one of them meets the comparison (``!=`` too), ``is null`` when there is none.
- Strings compare by code point on both databases (PostgreSQL: ``COLLATE "C"``);
  ``like`` is case-sensitive, ``ilike`` folds ASCII letters only, on both.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import FromClause, Label
from sqlalchemy.sql.selectable import NamedFromClause

from cairn.core.datasets import RUN_TAG_PREFIX
from cairn.core.errors import InvalidArgument
from cairn.core.model import (
    ExperimentInfo,
    ProjectInfo,
    RunInfo,
    RunStatus,
    decode_hyperparameter,
)
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
    Scope,
    Value,
    time_ms,
)
from cairn.core.search import Cursor
from cairn.core.versioning.info import RepositoryInfo
from cairn.store.metadata import dialect
from cairn.store.metadata.roles import readable_by
from cairn.store.metadata.schema import (
    attributes,
    experiments,
    hyperparameters,
    metric_series,
    projects,
    repositories,
    run_commits,
    runs,
    tags,
)

__all__ = ["SearchRequest", "SearchRows"]

_TABLES = {
    Scope.RUNS: runs,
    Scope.EXPERIMENTS: experiments,
    Scope.PROJECTS: projects,
    Scope.REPOSITORIES: repositories,
}


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One search, as the service hands it to the store."""

    scope: Scope
    where: Node | None
    order: Sequence[OrderKey]
    limit: int
    cursor: Cursor | None = None
    experiment_ids: Sequence[str] | None = None
    project_ids: Sequence[str] | None = None
    include_deleted: bool = False
    now: int = 0  # ms; for durations of running runs
    readable_by: str | None = None  # a user id: only projects it holds a role in (None: all)
    crashed_before: int = 0  # ms; running runs whose heartbeat is older read as crashed


@dataclass(slots=True)
class _SortColumn:
    expr: ColumnElement[Any]
    descending: bool


class _Compiler:
    """The FROM clause grows one outer join per key a query names (a metric, a
    hyperparameter, an attribute, the project...), shared by its filter and its order."""

    def __init__(
        self, conn: Connection, request: SearchRequest, inner: tuple[str, str] | None = None
    ) -> None:
        self.request = request
        self.inner = inner  # the one join made inner (see SearchRows.page)
        self.postgres = conn.dialect.name == "postgresql"
        self.table = _TABLES[request.scope]
        self.source: FromClause = self.table
        self.joined: dict[tuple[str, str | None], NamedFromClause] = {}

    # -- dialect ------------------------------------------------------------------
    def text(self, expr: ColumnElement[Any], op: str = "<") -> ColumnElement[Any]:
        """Strings order by code point on both databases. Equality needs no collation
        (and on PostgreSQL a COLLATE hides the column's statistics from the planner)."""
        if op in ("=", "!=") or not self.postgres:
            return expr
        return expr.collate("C")

    def like(self, expr: ColumnElement[Any], pattern: str, fold: bool) -> ColumnElement[bool]:
        if fold:  # ASCII letters only, as SQLite's LIKE and lower() do
            if self.postgres:
                return func.lower(expr.collate("C")).like(
                    func.lower(literal(pattern).collate("C")), escape="\\"
                )
            return expr.like(pattern, escape="\\")
        if self.postgres:
            return expr.like(pattern, escape="\\")
        # SQLite's LIKE ignores ASCII case; GLOB does not.
        return expr.op("GLOB")(_like_to_glob(pattern))

    # -- joins --------------------------------------------------------------------
    def join(self, name: str, key: str | None) -> NamedFromClause:
        found = self.joined.get((name, key))
        if found is not None:
            return found
        entity = self.table.c.id
        n = len(self.joined)
        if name == "metrics":
            alias = metric_series.alias(f"m{n}")
            on = and_(alias.c.run_id == entity, alias.c.key == key)
        elif name == "hyperparameters":
            alias = hyperparameters.alias(f"h{n}")
            on = and_(alias.c.run_id == entity, alias.c.key == key)
        elif name == "attributes":
            alias = attributes.alias(f"a{n}")
            on = and_(alias.c.entity_id == entity, alias.c.key == key)
        elif name == "project":
            alias = projects.alias(f"p{n}")
            on = alias.c.id == self.table.c.project_id
        elif name == "experiment":
            alias = experiments.alias(f"e{n}")
            on = alias.c.id == self.table.c.experiment_id
        elif name == "commit":
            alias = run_commits.alias(f"c{n}")
            on = alias.c.run_id == entity
        else:  # pragma: no cover - fields are checked by the parser
            raise AssertionError(name)
        if (name, key) == self.inner:
            self.source = self.source.join(alias, on)
        else:
            self.source = self.source.outerjoin(alias, on)
        self.joined[(name, key)] = alias
        return alias

    # -- plain fields -------------------------------------------------------------
    def column(self, field: Field) -> ColumnElement[Any]:
        t = self.table
        name = field.name
        if name in ("name", "id", "owner", "description"):
            return t.c[name]
        if name in ("created_at", "updated_at", "start_time", "end_time"):
            return t.c[name]
        if name == "status":
            return case(
                (
                    and_(
                        t.c.status == "running",
                        t.c.heartbeat_at < self.request.crashed_before,
                    ),
                    literal("crashed"),
                ),
                else_=t.c.status,
            )
        if name == "duration":
            end = func.coalesce(t.c.end_time, self.request.now)
            return (end - t.c.start_time) / 1000.0
        if name == "project.id":
            return t.c.project_id
        if name == "experiment.id":
            return t.c.experiment_id
        if name == "parent.id":
            return t.c.parent_id
        if name == "project.name":
            if self.request.scope is Scope.PROJECTS:  # pragma: no cover - not a field there
                return t.c.name
            return self.join("project", None).c.name
        if name == "experiment.name":
            return self.join("experiment", None).c.name
        if name == "commit.id":
            return self.join("commit", None).c.commit
        raise AssertionError(name)  # pragma: no cover

    # -- the filter ---------------------------------------------------------------
    def where(self, node: Node, positive: bool = True) -> ColumnElement[bool]:
        if isinstance(node, Not):
            return self.where(node.item, not positive)
        if isinstance(node, (And, Or)):
            parts = [self.where(item, positive) for item in node.items]
            use_and = isinstance(node, And) == positive
            return and_(*parts) if use_and else or_(*parts)
        leaf = self.leaf(node)
        if positive:
            return leaf
        # Two-valued: a leaf that is unknown (NULL: a missing key) is false, so its
        # negation is true.
        return not_(func.coalesce(leaf, false(), type_=Boolean))

    def leaf(self, node: Compare | IsNull) -> ColumnElement[bool]:
        field = node.field
        if isinstance(node, IsNull):
            return self.missing(field)
        kind = field.kind
        if kind is FieldKind.TAGS:
            return exists().where(tags.c.entity_id == self.table.c.id, tags.c.tag == node.value)
        if kind is FieldKind.DATASET_VERSION:
            return self.dataset_version(node)
        if node.op == "in":
            assert isinstance(node.value, tuple)
            return or_(*(self.compare(field, "=", v) for v in node.value))
        if node.op in ("like", "ilike"):
            assert isinstance(node.value, str)
            return self.match(field, node.value, node.op == "ilike")
        assert not isinstance(node.value, tuple)
        return self.compare(field, node.op, node.value)

    def missing(self, field: Field) -> ColumnElement[bool]:
        if field.kind is FieldKind.METRIC:
            return self.join("metrics", field.key).c.id.is_(None)
        if field.kind is FieldKind.HYPERPARAMETER:
            return self.join("hyperparameters", field.key).c.run_id.is_(None)
        if field.kind is FieldKind.ATTRIBUTE:
            alias = self.join("attributes", field.key)
            return or_(alias.c.entity_id.is_(None), alias.c.kind == "null")
        if field.kind is FieldKind.TAGS:
            return ~exists().where(tags.c.entity_id == self.table.c.id)
        if field.kind is FieldKind.DATASET_VERSION:
            return ~self.version_tags()
        if field.name in ("end_time", "parent.id", "commit.id"):
            return self.column(field).is_(None)
        return false()

    # -- dataset.version: the run's dataset-version tags (run.log_dataset_version) ----
    def version_tags(self, *also: ColumnElement[bool]) -> ColumnElement[bool]:
        """Whether the run has a dataset-version tag (that also meets ``also``)."""
        prefix = self.like(tags.c.tag, RUN_TAG_PREFIX + "%", False)  # the prefix's case kept
        return exists().where(tags.c.entity_id == self.table.c.id, prefix, *also)

    def dataset_version(self, node: Compare) -> ColumnElement[bool]:
        """True when any of the run's versions meets the comparison, as with a tag: a run
        that logged X and Y matches ``= X`` and ``!= X`` alike (``not ... = X`` is none)."""
        tag = tags.c.tag
        if node.op in ("like", "ilike"):
            assert isinstance(node.value, str)  # the prefix has no % _ or backslash
            pattern = RUN_TAG_PREFIX + node.value
            return self.version_tags(self.like(tag, pattern, node.op == "ilike"))
        if node.op == "in":
            assert isinstance(node.value, tuple)
            wanted = [RUN_TAG_PREFIX + str(v) for v in node.value]
            return exists().where(tags.c.entity_id == self.table.c.id, tag.in_(wanted))
        value = RUN_TAG_PREFIX + str(node.value)
        if node.op == "=":
            return exists().where(tags.c.entity_id == self.table.c.id, tag == value)
        assert node.op == "!="
        return self.version_tags(tag != value)

    def compare(self, field: Field, op: str, value: Value) -> ColumnElement[bool]:
        kind = field.kind
        if kind is FieldKind.METRIC:
            # Metrics are floats: an int literal is one too (SQLite would compare an int
            # above 2**53 exactly, PostgreSQL as a float).
            number = float(value) if isinstance(value, int) else value
            return _op(self.join("metrics", field.key).c.last_value, op, number)
        if kind is FieldKind.HYPERPARAMETER:
            h = self.join("hyperparameters", field.key)
            if isinstance(value, bool):
                return and_(h.c.kind == "bool", _op(h.c.value_text, op, _bool_text(value)))
            if isinstance(value, int):
                return or_(
                    and_(h.c.kind == "int", _op(h.c.value_int, op, value)),
                    and_(h.c.kind == "float", _op(h.c.value_num, op, float(value))),
                )
            if isinstance(value, float):
                return and_(h.c.kind.in_(("int", "float")), _op(h.c.value_num, op, value))
            return and_(h.c.kind == "str", _op(self.text(h.c.value_text, op), op, value))
        if kind is FieldKind.ATTRIBUTE:
            a = self.join("attributes", field.key)
            if isinstance(value, bool):
                return and_(a.c.kind == "bool", _op(a.c.value_text, op, _bool_text(value)))
            if isinstance(value, (int, float)):
                return and_(a.c.kind == "number", _op(a.c.value_num, op, float(value)))
            return and_(a.c.kind == "string", _op(self.text(a.c.value_text, op), op, value))
        column = self.column(field)
        if kind is FieldKind.TIME:
            ms = time_ms(value) if isinstance(value, dt.datetime) else value
            return _op(column, op, ms)
        if kind in (FieldKind.TEXT, FieldKind.STATUS):
            return _op(self.text(column, op), op, value)
        return _op(column, op, value)

    def match(self, field: Field, pattern: str, fold: bool) -> ColumnElement[bool]:
        if field.kind is FieldKind.HYPERPARAMETER:
            h = self.join("hyperparameters", field.key)
            return and_(h.c.kind == "str", self.like(h.c.value_text, pattern, fold))
        if field.kind is FieldKind.ATTRIBUTE:
            a = self.join("attributes", field.key)
            return and_(a.c.kind == "string", self.like(a.c.value_text, pattern, fold))
        return self.like(self.column(field), pattern, fold)

    # -- order ----------------------------------------------------------------------
    def order(self, column: _SortColumn) -> Any:
        """ORDER BY for a column with missing values last in both directions: SQLite
        sorts NULL first, PostgreSQL last, so one direction each is native (and can walk
        an index); the other says NULLS LAST."""
        expr = column.expr
        if column.descending:
            return expr.desc().nulls_last() if self.postgres else expr.desc()
        return expr.asc() if self.postgres else expr.asc().nulls_last()

    def sort_columns(self, key: OrderKey) -> list[_SortColumn]:
        """The SQL columns one order key sorts by, most significant first; NULL in the
        first one means the value is missing (sorted last)."""
        field, desc = key.field, key.descending
        if field.kind is FieldKind.METRIC:
            return [_SortColumn(self.join("metrics", field.key).c.last_value, desc)]
        if field.kind is FieldKind.HYPERPARAMETER:
            h = self.join("hyperparameters", field.key)
            klass = case(
                (h.c.kind.in_(("int", "float")), 0),
                (h.c.kind == "str", 1),
                (h.c.kind == "bool", 2),
                else_=null(),
            )
            text_value = case((h.c.kind.in_(("str", "bool")), h.c.value_text), else_=null())
            return [
                _SortColumn(klass, desc),
                _SortColumn(h.c.value_num, desc),
                _SortColumn(self.text(text_value), desc),
            ]
        if field.kind is FieldKind.ATTRIBUTE:
            a = self.join("attributes", field.key)
            klass = case(
                (a.c.kind == "number", 0),
                (a.c.kind == "string", 1),
                (a.c.kind == "bool", 2),
                else_=null(),
            )
            return [
                _SortColumn(klass, desc),
                _SortColumn(a.c.value_num, desc),
                _SortColumn(self.text(a.c.value_text), desc),
            ]
        column = self.column(field)
        if field.kind in (FieldKind.TEXT, FieldKind.STATUS):
            column = self.text(column)
        return [_SortColumn(column, desc)]


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _op(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = _OPERATORS[op](column, value)
    return result


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, backslash escapes) as the GLOB pattern that means
    the same, case-sensitively: GLOB's own specials are put in brackets."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            following = next(chars, "\\")
            out.append(_glob_literal(following))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "*?[" else char


def _after(
    columns: Sequence[_SortColumn],
    values: Sequence[Any],
    last_id: str,
    id_column: ColumnElement[Any],
    id_desc: bool,
) -> ColumnElement[bool]:
    """Rows after the cursor in the order (nulls last in both directions)."""
    alternatives: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for column, value in zip(columns, values, strict=True):
        expr = column.expr
        if value is None:
            beyond: ColumnElement[bool] = false()  # nothing sorts after a missing value
            same = expr.is_(None)
        else:
            further = expr < value if column.descending else expr > value
            beyond = or_(further, expr.is_(None))
            same = expr == value
        alternatives.append(and_(*equal, beyond) if equal else beyond)
        equal.append(same)
    tail = id_column < last_id if id_desc else id_column > last_id
    alternatives.append(and_(*equal, tail) if equal else tail)
    return or_(*alternatives)


class SearchRows:
    """Searches of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _base(
        self, request: SearchRequest, inner: tuple[str, str] | None = None
    ) -> tuple[_Compiler, list[ColumnElement[bool]]]:
        compiler = _Compiler(self._conn, request, inner)
        t = compiler.table
        conditions: list[ColumnElement[bool]] = []
        if not request.include_deleted:
            if "deleted_at" in t.c:  # repositories are never deleted
                conditions.append(t.c.deleted_at.is_(None))
            # A deleted project or experiment hides what it holds. Few are deleted: the
            # database reads their ids once, rather than joining them to every row.
            # Named containers are searched as asked, deleted or not (an experiment's
            # own listing shows its runs).
            gone_projects = select(projects.c.id).where(projects.c.deleted_at.is_not(None))
            if (
                request.scope in (Scope.EXPERIMENTS, Scope.REPOSITORIES)
                and request.project_ids is None
            ):
                conditions.append(t.c.project_id.not_in(gone_projects))
            if (
                request.scope is Scope.RUNS
                and request.experiment_ids is None
                and request.project_ids is None
            ):
                gone = select(experiments.c.id).where(
                    or_(
                        experiments.c.deleted_at.is_not(None),
                        experiments.c.project_id.in_(gone_projects),
                    )
                )
                conditions.append(t.c.experiment_id.not_in(gone))
        if request.experiment_ids is not None and request.scope is Scope.RUNS:
            conditions.append(_one_of(t.c.experiment_id, request.experiment_ids))
        if request.project_ids is not None and request.scope is not Scope.PROJECTS:
            conditions.append(_one_of(t.c.project_id, request.project_ids))
        if request.scope is Scope.PROJECTS and request.project_ids is not None:
            conditions.append(_one_of(t.c.id, request.project_ids))
        if request.readable_by is not None:  # in the statement: pages and counts stay right
            owner = t.c.id if request.scope is Scope.PROJECTS else t.c.project_id
            conditions.append(readable_by(owner, request.readable_by))
        if request.where is not None:
            conditions.append(compiler.where(request.where))
        return compiler, conditions

    def unknown(self, request: SearchRequest) -> tuple[str, str] | None:
        """The first experiment or project the request names that does not exist, as
        (kind, id); None when all do."""
        for kind, table, ids in (
            ("experiment", experiments, request.experiment_ids),
            ("project", projects, request.project_ids),
        ):
            if ids:
                found = {
                    r[0]
                    for r in self._conn.execute(select(table.c.id).where(_one_of(table.c.id, ids)))
                }
                for entity_id in ids:
                    if entity_id not in found:
                        return kind, entity_id
        return None

    def count(self, request: SearchRequest) -> int:
        compiler, conditions = self._base(request)
        query = select(func.count()).select_from(compiler.source).where(*conditions)
        return int(self._conn.execute(query).scalar_one())

    def page(self, request: SearchRequest) -> tuple[list[Any], tuple[Any, ...] | None]:
        """The entities of one page (RunInfo, ExperimentInfo or ProjectInfo) and, if
        more follow, the sort values of its last row.

        Ordered by a metric first, a page is read in two parts: runs that have a value,
        through an inner join the database can walk down the metric's index and stop at
        the limit (an outer join makes it read every run: 190 ms against 1 ms at 100,000
        runs), then, if the page is not full, the runs without one (missing or NaN)."""
        first = request.order[0].field if request.order else None
        if first is None or first.kind is not FieldKind.METRIC or first.key is None:
            rows = self._part(request, request.cursor, request.limit + 1, None)
        else:
            cursor = request.cursor
            rows = []
            if cursor is None or cursor.values[:1] != (None,):
                rows = self._part(request, cursor, request.limit + 1, ("metrics", first.key))
                cursor = None  # runs without a value all come after the last with one
            if len(rows) <= request.limit:
                rest = self._part(request, cursor, request.limit + 1 - len(rows), "missing")
                rows.extend(rest)
        width = len(_TABLES[request.scope].c)
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        last: tuple[Any, ...] | None = None
        if more and rows:
            last = rows[-1][width:]
        return [_INFO[request.scope](row[:width]) for row in rows], last

    def _part(
        self,
        request: SearchRequest,
        cursor: Cursor | None,
        limit: int,
        part: tuple[str, str] | str | None,
    ) -> list[tuple[Any, ...]]:
        """Rows (table columns, then sort values) of a page, or of one part of it:
        ``(family, key)`` those with a value for the first order key, "missing" those
        without."""
        inner = part if isinstance(part, tuple) else None
        compiler, conditions = self._base(request, inner)
        columns: list[_SortColumn] = []
        for key in request.order:
            columns.extend(compiler.sort_columns(key))
        t = compiler.table
        id_desc = columns[-1].descending if columns else True
        ordered = columns
        if part is not None:
            first = columns[0].expr
            conditions.append(first.is_not(None) if inner else first.is_(None))
            if not inner:
                ordered = columns[1:]  # all missing: the first column orders nothing
        if cursor is not None:
            values = cursor.values
            if len(values) != len(columns):
                raise InvalidArgument("cursor", "does not fit this order: start again")
            if ordered is not columns:
                values = values[1:]
            if ordered:
                conditions.append(_after(ordered, values, cursor.last_id, t.c.id, id_desc))
            else:
                after_id = cursor.last_id
                conditions.append(t.c.id < after_id if id_desc else t.c.id > after_id)
        labels: list[Label[Any]] = [c.expr.label(f"s{i}") for i, c in enumerate(columns)]
        order_by = [compiler.order(column) for column in ordered]
        if inner:
            # No missing values in this part: the first column in its plain direction,
            # which PostgreSQL's index on (key, last_value) can walk backwards and stop.
            first_column = columns[0]
            order_by[0] = (
                first_column.expr.desc() if first_column.descending else first_column.expr.asc()
            )
        order_by.append(t.c.id.desc() if id_desc else t.c.id.asc())
        query: Select[Any] = (
            select(t, *labels)
            .select_from(compiler.source)
            .where(*conditions)
            .order_by(*order_by)
            .limit(limit)
        )
        return [tuple(row) for row in self._conn.execute(query)]

    # -- values of a page ---------------------------------------------------------
    # On the bare DB-API cursor, one list parameter per statement: a page of 1,000 runs
    # has ~15,000 values, and SQLAlchemy's row objects (or a compiled IN of 1,000
    # parameters) cost more per row than the database does. Each row is led by its
    # entity's position in the page (a small int costs less than the id again).
    def _rows(
        self,
        table: str,
        columns: str,
        owner: str,
        ids: Sequence[str],
        keys: Sequence[str] | None,
    ) -> list[tuple[Any, ...]]:
        if not ids:
            return []
        engine = self._conn.engine
        sql = (
            f"SELECT ids.n, {columns} FROM ({dialect.positions(engine, 'text')}) AS ids "
            f"JOIN {table} AS t ON t.{owner} = ids.value"
        )
        params: list[Any] = [dialect.list_param(engine, list(ids))]
        if keys is not None:
            sql += f" WHERE t.key IN ({dialect.list_values(engine, 'text')})"
            params.append(dialect.list_param(engine, list(keys)))
        cursor = self._conn.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def hyperparameters(
        self, run_ids: Sequence[str], keys: Sequence[str] | None
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        rows = self._rows("hyperparameters", "t.key, t.kind, t.value_text", "run_id", run_ids, keys)
        last, values = -1, {}
        for n, key, kind, text in rows:
            if n != last:  # rows come grouped by run: one lookup per run
                last, values = n, found.setdefault(run_ids[n], {})
            if kind == "str":
                values[key] = text
            elif kind == "float":
                values[key] = float(text)
            elif kind == "int":
                values[key] = int(text)
            else:
                values[key] = decode_hyperparameter(kind, text)
        return found

    def metrics(
        self, run_ids: Sequence[str], keys: Sequence[str] | None
    ) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        nan = float("nan")
        rows = self._rows("metric_series", "t.key, t.last_value", "run_id", run_ids, keys)
        last, values = -1, {}
        for n, key, value in rows:
            if n != last:
                last, values = n, found.setdefault(run_ids[n], {})
            values[key] = nan if value is None else value
        return found

    def tags(self, entity_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for n, tag in sorted(self._rows("tags", "t.tag", "entity_id", entity_ids, None)):
            found.setdefault(entity_ids[n], []).append(tag)
        return found

    def attributes(
        self, entity_ids: Sequence[str], keys: Sequence[str] | None
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        # Scalars from their typed copies (json.loads costs more than the query); only
        # numbers need their text, for int or float; lists and objects are parsed.
        rows = self._rows(
            "attributes",
            "t.key, t.kind, t.value_text, "
            "CASE WHEN t.kind IN ('number', 'other') THEN t.value_json END",
            "entity_id",
            entity_ids,
            keys,
        )
        last, values = -1, {}
        for n, key, kind, text, raw in rows:
            if n != last:
                last, values = n, found.setdefault(entity_ids[n], {})
            if kind == "string":
                values[key] = text
            elif kind == "number":
                values[key] = int(raw) if raw.isdigit() or raw[1:].isdigit() else float(raw)
            elif kind == "bool":
                values[key] = text == "true"
            elif kind == "null":
                values[key] = None
            else:
                values[key] = json.loads(raw)
        return found


def _run(row: tuple[Any, ...]) -> RunInfo:
    # The table's columns are RunInfo's fields, in order (a test checks it).
    (
        run_id,
        experiment_id,
        project_id,
        name,
        description,
        owner,
        status,
        parent_id,
        start,
        end,
        created,
        updated,
        deleted,
        heartbeat,
    ) = row
    return RunInfo(
        run_id,
        experiment_id,
        project_id,
        name,
        description,
        owner,
        RunStatus(status),
        parent_id,
        start,
        end,
        created,
        updated,
        deleted,
        heartbeat,
    )


_INFO: dict[Scope, Callable[[tuple[Any, ...]], Any]] = {
    Scope.RUNS: _run,
    Scope.EXPERIMENTS: lambda row: ExperimentInfo(*row),
    Scope.PROJECTS: lambda row: ProjectInfo(*row),
    Scope.REPOSITORIES: lambda row: RepositoryInfo(*row),
}


def _one_of(column: ColumnElement[Any], values: Sequence[str]) -> ColumnElement[bool]:
    if len(values) == 1:
        return column == values[0]
    return column.in_(list(values))
