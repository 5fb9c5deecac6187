"""``cairn runs find|count``, and the ``--where``/``--columns`` of the listings: runs,
experiments and projects found with the search language (docs/search.md).

A query the language refuses is a usage error: its message (with the caret under the
offending token) on stderr and exit status 2, as for any other bad argument."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cairn.cli._common import (
    HomeOption,
    JsonOption,
    StoreOption,
    UrlOption,
    connect,
    format_time,
    print_json,
    print_table,
    shorten,
)
from cairn.cli._entities import (
    duration_text,
    find_experiment,
    format_number,
    nested,
    runs,
    status_text,
)
from cairn.core.errors import InvalidArgument, QueryError
from cairn.core.ids import short_id

if TYPE_CHECKING:
    from cairn.client import Client
    from cairn.core.model import RunInfo
    from cairn.core.query import Field, Node
    from cairn.core.search import ExperimentRecord, ProjectRecord, RunRecord

__all__ = [
    "Column",
    "find_all_experiments",
    "find_all_projects",
    "list_runs",
    "parse_columns",
    "usage_errors",
]

T = TypeVar("T")

# Arguments whose errors are the caller's to fix (exit 2): the query, its order, the page.
_USAGE_FIELDS = frozenset({"query", "order_by", "limit", "cursor", "columns"})
PAGE = 1000  # rows a request when a command reads every page


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """A query that does not parse (or a limit, cursor or column the store refuses):
    ``error: <message>`` on stderr, the query under it with a caret, exit status 2."""
    try:
        yield
    except InvalidArgument as exc:
        if isinstance(exc, QueryError) or exc.field in _USAGE_FIELDS:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        raise


# -- columns ---------------------------------------------------------------------------
_FAMILIES = ("hyperparameters", "metrics", "attributes", "tags")
# Plain fields a column may show: the name the language gives them -> the run's value.
_PLAIN: dict[str, Callable[[RunInfo], Any]] = {
    "id": lambda r: r.id,
    "name": lambda r: r.name,
    "status": lambda r: r.status.value,
    "duration": lambda r: None if r.end_time is None else max(0, r.end_time - r.start_time) / 1000,
    "owner": lambda r: r.owner,
    "description": lambda r: r.description,
    "created_at": lambda r: r.created_at,
    "updated_at": lambda r: r.updated_at,
    "start_time": lambda r: r.start_time,
    "end_time": lambda r: r.end_time,
    "parent.id": lambda r: r.parent_id,
    "experiment.id": lambda r: r.experiment_id,
    "project.id": lambda r: r.project_id,
    "experiment.name": lambda r: r.experiment_id,  # looked up by id (see _Names)
    "project.name": lambda r: r.project_id,
}
_TIMES = frozenset({"created_at", "updated_at", "start_time", "end_time"})


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a listing: a plain field (``owner``, ``experiment.name``), a value
    family's key (``metrics.acc``), a whole family (``metrics``: a column per key found),
    or ``tags``."""

    name: str
    family: str | None = None
    key: str | None = None

    @property
    def keyed(self) -> bool:
        return self.family is not None

    def __str__(self) -> str:
        return self.name


def parse_columns(items: Sequence[str] | None) -> list[Column]:
    """``--columns name,metrics.acc,hyperparameters.lr`` (commas, or the option
    repeated) as columns, in order, each once."""
    found: dict[str, Column] = {}
    for item in items or ():
        for piece in item.split(","):
            text = piece.strip()
            if not text:
                continue
            family, dot, key = text.partition(".")
            family = "hyperparameters" if family == "params" else family
            if family in _FAMILIES:
                if family == "tags" and dot:
                    raise typer.BadParameter(f"{text!r}: tags has no keys", param_hint="--columns")
                name = f"{family}.{key}" if key else family
                found.setdefault(name, Column(name, family, key or None))
            elif text in _PLAIN:
                found.setdefault(text, Column(text))
            else:
                valid = ", ".join([*(f"{f}.KEY" for f in _FAMILIES[:3]), "tags", *_PLAIN])
                raise typer.BadParameter(
                    f"unknown column {text!r}; columns are {valid}", param_hint="--columns"
                )
    return list(found.values())


def _fields(node: Node | None) -> Iterator[Field]:
    from cairn.core.query import And, Compare, IsNull, Not, Or

    if node is None:
        return
    if isinstance(node, (And, Or)):
        for item in node.items:
            yield from _fields(item)
    elif isinstance(node, Not):
        yield from _fields(node.item)
    elif isinstance(node, (Compare, IsNull)):
        yield node.field


def named_columns(query: str, order: Sequence[str]) -> list[Column]:
    """The metrics, hyperparameters and attributes a query and its order name: a listing
    shows what it was asked about."""
    # Imported here: building the grammar costs every other command ~0.15 s at start.
    from cairn.core.query import parse_order, parse_query

    fields = [*_fields(parse_query(query)), *(k.field for k in parse_order(order))]
    found: dict[str, Column] = {}
    for field in fields:
        if field.key is not None:
            name = f"{field.name}.{field.key}"
            found.setdefault(name, Column(name, field.name, field.key))
    return list(found.values())


def wanted_values(columns: Sequence[Column]) -> list[str]:
    """What ``columns=`` asks the store for: only the values the columns show."""
    return [c.name for c in columns if c.keyed]


def expand(columns: Sequence[Column], records: Sequence[RunRecord]) -> list[Column]:
    """A whole family (``--columns metrics``) becomes a column per key the runs have."""
    out: dict[str, Column] = {}
    for column in columns:
        if column.family in ("hyperparameters", "metrics", "attributes") and column.key is None:
            keys = sorted({k for r in records for k in getattr(r, column.family)})
            for key in keys:
                name = f"{column.family}.{key}"
                out.setdefault(name, Column(name, column.family, key))
        else:
            out.setdefault(column.name, column)
    return list(out.values())


class _Names:
    """Project and experiment names by id, each looked up once."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._found: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, entity_id: str) -> str:
        name = self._found.get((kind, entity_id))
        if name is None:
            if kind == "project":
                name = self._client.get_project(id=entity_id).name
            else:
                name = self._client.get_experiment(entity_id).name
            self._found[(kind, entity_id)] = name
        return name


def raw_value(column: Column, record: RunRecord, names: _Names | None) -> Any:
    """The column's value for JSON-like output (CSV): None where the run has none."""
    if column.family == "tags":
        return record.tags
    if column.family is not None:
        assert column.key is not None
        return getattr(record, column.family).get(column.key)
    value = _PLAIN[column.name](record.info)
    if column.name in ("experiment.name", "project.name") and names is not None:
        return names(column.name.partition(".")[0], value)
    return value


def cell(column: Column, record: RunRecord, names: _Names | None) -> str:
    """The column's value for a table: short, aligned, empty where the run has none."""
    if column.name == "duration":
        return duration_text(record.info)
    if column.name == "status":
        return status_text(record.info)
    value = raw_value(column, record, names)
    if value is None:
        return ""
    if column.family == "tags":
        return ", ".join(value)
    if column.name in _TIMES:
        return format_time(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, str):
        return shorten(value)
    if isinstance(value, (list, dict)):
        return shorten(json.dumps(value, ensure_ascii=False))
    return str(value)


def csv_value(column: Column, record: RunRecord, names: _Names | None) -> Any:
    value = raw_value(column, record, names)
    if value is None:
        return ""
    if column.family == "tags":
        return ",".join(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value  # floats as Python writes them: every digit, nan, inf


def header(column: Column) -> str:
    return column.name.upper() if column.family is None else column.name


def write_csv(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    writer.writerows(rows)
    typer.echo(out.getvalue(), nl=False)


def record_json(record: RunRecord) -> dict[str, Any]:
    """A run as the REST API gives it: its fields, then its values."""
    return {
        **asdict(record.info),
        "hyperparameters": record.hyperparameters,
        "metrics": record.metrics,
        "tags": record.tags,
        "attributes": record.attributes,
    }


# -- reading every page -----------------------------------------------------------------
def every_page(read: Callable[[int, str | None], tuple[list[T], str | None]]) -> list[T]:
    """Every item of a search, page after page. A store whose ``max_search_limit`` is
    below the page size says its maximum; the pages are made that size."""
    size, cursor, items = PAGE, None, []
    while True:
        try:
            found, cursor = read(size, cursor)
        except InvalidArgument as exc:
            maximum = exc.details.get("maximum")
            if exc.field != "limit" or not isinstance(maximum, int) or maximum >= size:
                raise
            size = maximum
            continue
        items.extend(found)
        if cursor is None:
            return items


def find_all_projects(client: Client, query: str) -> list[ProjectRecord]:
    def read(size: int, cursor: str | None) -> tuple[list[ProjectRecord], str | None]:
        page = client.find_projects(query, order_by="id", limit=size, cursor=cursor)
        return page.items, page.next_cursor

    return every_page(read)


def find_all_experiments(client: Client, project: str, query: str) -> list[ExperimentRecord]:
    found = client.get_project(project)

    def read(size: int, cursor: str | None) -> tuple[list[ExperimentRecord], str | None]:
        page = found.find_experiments(query, order_by="id", limit=size, cursor=cursor)
        return page.items, page.next_cursor

    return every_page(read)


# -- cairn runs ls ---------------------------------------------------------------------
def list_runs(
    client: Client,
    path: str,
    *,
    where: str | None,
    columns: Sequence[str] | None,
    metrics: Sequence[str],
    include_deleted: bool,
    as_json: bool,
) -> None:
    """``cairn runs ls``: an experiment's runs, oldest first, children under their
    parent; ``where`` filters them, ``columns`` adds columns."""
    query = where or ""
    with usage_errors():
        chosen = [c for c in parse_columns(columns) if c.name not in _LS_FIXED]
        chosen += [c for c in named_columns(query, []) if c not in chosen]
        metric_columns = [Column(f"metrics.{k}", "metrics", k) for k in metrics]
        wanted = wanted_values([*metric_columns, *chosen])
        experiment = find_experiment(client, path)

        def read(size: int, cursor: str | None) -> tuple[list[RunRecord], str | None]:
            page = experiment.find_runs(
                query,
                order_by="id",  # creation order, as the listing always was
                limit=size,
                cursor=cursor,
                columns=wanted,
                include_deleted=include_deleted,
            )
            return page.items, page.next_cursor

        records = every_page(read)
    chosen = expand(chosen, records)
    names = _Names(client)
    if as_json:
        rows: list[Any] = []
        for record in records:
            row: dict[str, Any] = asdict(record.info)
            for family in dict.fromkeys(c.family for c in chosen if c.family is not None):
                row[family] = getattr(record, family)
            if metrics:  # each key asked for, null where the run has none
                row["metrics"] = {**{k: None for k in metrics}, **record.metrics}
            for column in chosen:
                if column.family is None:
                    row[column.name] = raw_value(column, record, names)
            rows.append(row)
        print_json(rows)
        return
    if not records:
        typer.echo(f"no runs in {path!r}" + (" match" if query.strip() else ""))
        return
    by_id = {r.id: r for r in records}
    table = []
    for info, depth in nested([r.info for r in records]):
        record = by_id[info.id]
        table.append(
            (
                "  " * depth + info.name,
                short_id(info.id),
                status_text(info),
                format_time(info.start_time),
                duration_text(info),
                info.owner,
                *(_metric(record, k) for k in metrics),
                *(cell(c, record, names) for c in chosen),
            )
        )
    print_table(
        ("NAME", "ID", "STATUS", "STARTED", "DURATION", "OWNER", *metrics, *map(header, chosen)),
        table,
    )


def _metric(record: RunRecord, key: str) -> str:
    value = record.metrics.get(key)
    return "" if value is None else format_number(value)


_LS_FIXED = frozenset({"name", "id", "status", "start_time", "duration", "owner"})


# -- cairn runs find / count -------------------------------------------------------------
QueryArgument = Annotated[
    str,
    typer.Argument(
        metavar="QUERY",
        help='A search query, e.g. "metrics.acc > 0.9 and hyperparameters.lr < 0.01" '
        "(docs/search.md); empty: every run.",
        show_default=False,
    ),
]
ExperimentOption = Annotated[
    str | None,
    typer.Option(
        "--experiment",
        metavar="PROJECT/EXPERIMENT",
        help="Only the runs of this experiment.",
    ),
]
ProjectOption = Annotated[
    str | None, typer.Option("--project", metavar="PROJECT", help="Only the runs of this project.")
]
IncludeDeletedOption = Annotated[
    bool, typer.Option("--include-deleted", help="Also find soft-deleted runs.")
]


def _scope(client: Client, experiment: str | None, project: str | None) -> Any:
    """What the search runs on: the client (every project), a project or an experiment."""
    if experiment is not None and project is not None:
        raise typer.BadParameter(
            "give --experiment or --project, not both", param_hint="--experiment"
        )
    if experiment is not None:
        return find_experiment(client, experiment)
    if project is not None:
        return client.get_project(project)
    return client


@runs.command("find")
def runs_find(
    query: QueryArgument = "",
    experiment: ExperimentOption = None,
    project: ProjectOption = None,
    order: Annotated[
        list[str] | None,
        typer.Option(
            "--order",
            metavar="FIELD",
            help="Sort by this field, '-' first for descending (-metrics.acc); repeat for "
            "ties. Default: newest first.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, metavar="N", help="Runs a page.")] = 20,
    cursor: Annotated[
        str | None,
        typer.Option("--cursor", metavar="CURSOR", help="The next page of the same search."),
    ] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns",
            metavar="COLUMN,COLUMN...",
            help="Columns to add (metrics.acc, hyperparameters.lr, attributes.K, tags, "
            "owner, experiment.name...); comma-separated or repeated.",
        ),
    ] = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV of the columns, with a header.")
    ] = False,
    include_deleted: IncludeDeletedOption = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the page as JSON: every run with all its values."),
    ] = False,
) -> None:
    """Find runs with the search language, across projects unless --experiment or
    --project narrows it; one page at a time."""
    if as_csv and as_json:
        raise typer.BadParameter("give --csv or --json, not both", param_hint="--csv")
    order_by = list(order or [])
    with usage_errors():
        chosen = parse_columns(columns)
        chosen += [c for c in named_columns(query, order_by) if c not in chosen]
    fixed = [Column("id"), Column("name"), Column("status"), Column("duration")]
    if as_csv:
        shown = fixed + [c for c in chosen if c not in fixed]
    else:
        shown = fixed[1:] + [c for c in chosen if c not in fixed]
    with connect(url, home, store) as client, usage_errors():
        where = _scope(client, experiment, project)
        page = where.find_runs(
            query,
            order_by=order_by or None,
            limit=limit,
            cursor=cursor,
            columns=None if as_json and not columns else wanted_values(shown),
            include_deleted=include_deleted,
        )
        shown = expand(shown, page.items)
        names = _Names(client)
        if as_json:
            print_json(
                {"runs": [record_json(r) for r in page.items], "next_cursor": page.next_cursor}
            )
            return
        if as_csv:
            write_csv(
                [c.name for c in shown], [[csv_value(c, r, names) for c in shown] for r in page]
            )
            if page.next_cursor is not None:
                typer.echo(f"next page: --cursor {page.next_cursor}", err=True)
            return
        if not page.items:
            typer.echo("no runs match" if cursor is None else "no more runs")
            return
        print_table(
            ["ID", *map(header, shown)],
            [[short_id(r.id), *(cell(c, r, names) for c in shown)] for r in page],
        )
    if page.next_cursor is not None:
        typer.echo(f"next page: --cursor {page.next_cursor}")


@runs.command("count")
def runs_count(
    query: QueryArgument = "",
    experiment: ExperimentOption = None,
    project: ProjectOption = None,
    include_deleted: IncludeDeletedOption = False,
    url: UrlOption = None,
    home: HomeOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """How many runs match a query (across projects unless --experiment or --project)."""
    with connect(url, home, store) as client, usage_errors():
        where = _scope(client, experiment, project)
        count = where.count_runs(query, include_deleted=include_deleted)
    if as_json:
        print_json({"count": count})
    else:
        typer.echo(str(count))
