"""What searches hand users: pages of whole runs (and experiments, projects) that know
their next cursor, and a run page as a pandas table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cairn.core.errors import InvalidArgument
from cairn.core.search import ExperimentRecord, Page, ProjectRecord, RepositoryRecord, RunRecord
from cairn.service.contracts import Backend

if TYPE_CHECKING:
    import pandas

__all__ = [
    "LIST_PAGE",
    "ExperimentPage",
    "ProjectPage",
    "RepositoryPage",
    "RunPage",
    "find_runs",
    "iter_experiments",
    "iter_projects",
    "iter_runs",
]

LIST_PAGE = 1000  # entities per request when a listing fetches them all
T = TypeVar("T")

_INFO = ("id", "name", "status", "owner", "experiment_id", "project_id", "parent_id")


@dataclass(frozen=True, slots=True)
class RunPage(Page[RunRecord]):
    """A page of runs, each with its values; ``next_cursor`` asks for the next page."""

    def to_pandas(self) -> pandas.DataFrame:
        """One row per run: its fields, then ``hyperparameters.K``, ``metrics.K`` (the
        latest value), ``attributes.K`` and ``tags`` (a list). Needs pandas
        (``pip install 'cairn[pandas]'``)."""
        try:
            import pandas
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "to_pandas needs pandas: pip install 'cairn[pandas]'"
            ) from None
        rows = [_row(r) for r in self.items]
        frame = pandas.DataFrame.from_records(rows, columns=_columns(rows))
        return frame


@dataclass(frozen=True, slots=True)
class ExperimentPage(Page[ExperimentRecord]):
    """A page of experiments with their tags and attributes."""


@dataclass(frozen=True, slots=True)
class ProjectPage(Page[ProjectRecord]):
    """A page of projects with their tags and attributes."""


@dataclass(frozen=True, slots=True)
class RepositoryPage(Page[RepositoryRecord]):
    """A page of repositories with their tags and attributes."""


def _time(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _row(record: RunRecord) -> dict[str, Any]:
    info = record.info
    row: dict[str, Any] = {name: getattr(info, name) for name in _INFO}
    row["status"] = info.status.value
    row["start_time"] = _time(info.start_time)
    row["end_time"] = _time(info.end_time)
    for key, value in record.hyperparameters.items():
        row[f"hyperparameters.{key}"] = value
    for key, metric in record.metrics.items():
        row[f"metrics.{key}"] = metric
    for key, attribute in record.attributes.items():
        row[f"attributes.{key}"] = attribute
    row["tags"] = record.tags
    return row


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    fixed = [*_INFO, "start_time", "end_time"]
    seen: dict[str, None] = {}
    for row in rows:
        for name in row:
            if name not in fixed and name != "tags":
                seen.setdefault(name, None)
    order = {"hyperparameters": 0, "metrics": 1, "attributes": 2}
    keyed = sorted(seen, key=lambda n: (order[n.partition(".")[0]], n))
    return [*fixed, *keyed, "tags"]


def find_runs(
    backend: Backend,
    query: str,
    *,
    experiment_ids: Sequence[str] | None = None,
    project_ids: Sequence[str] | None = None,
    order_by: Sequence[str] | str | None = None,
    limit: int = 100,
    cursor: str | None = None,
    columns: Sequence[str] | None = None,
    include_deleted: bool = False,
) -> RunPage:
    page = backend.search.find_runs(
        query,
        experiment_ids=experiment_ids,
        project_ids=project_ids,
        order_by=order_by,  # a lone key as a string too: both backends take one
        limit=limit,
        cursor=cursor,
        columns=columns,
        include_deleted=include_deleted,
    )
    return RunPage(page.items, page.next_cursor)


def _pages(fetch: Callable[[int, str | None], Page[T]], page_size: int) -> Iterator[T]:
    """Every item of every page; a page size above the store's ``max_search_limit`` is
    brought down to it (the limit's error says what it is) rather than failing."""
    cursor: str | None = None
    while True:
        try:
            page = fetch(page_size, cursor)
        except InvalidArgument as exc:
            maximum = exc.details.get("maximum")
            if exc.field != "limit" or not isinstance(maximum, int) or maximum >= page_size:
                raise
            page_size = maximum
            continue
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def iter_runs(
    backend: Backend,
    query: str,
    *,
    page_size: int,
    experiment_ids: Sequence[str] | None = None,
    project_ids: Sequence[str] | None = None,
    order_by: Sequence[str] | str | None = None,
    columns: Sequence[str] | None = None,
    include_deleted: bool = False,
) -> Iterator[RunRecord]:
    """Every run the query finds, a page at a time."""

    def fetch(limit: int, cursor: str | None) -> Page[RunRecord]:
        return find_runs(
            backend,
            query,
            experiment_ids=experiment_ids,
            project_ids=project_ids,
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            columns=columns,
            include_deleted=include_deleted,
        )

    return _pages(fetch, page_size)


def iter_experiments(
    backend: Backend, *, project_ids: Sequence[str] | None = None
) -> Iterator[ExperimentRecord]:
    """Every experiment not deleted (of ``project_ids``), oldest first, a page at a time."""

    def fetch(limit: int, cursor: str | None) -> Page[ExperimentRecord]:
        return backend.search.find_experiments(
            "", project_ids=project_ids, order_by=["id"], limit=limit, cursor=cursor
        )

    return _pages(fetch, LIST_PAGE)


def iter_projects(backend: Backend) -> Iterator[ProjectRecord]:
    """Every project not deleted, oldest first, a page at a time."""

    def fetch(limit: int, cursor: str | None) -> Page[ProjectRecord]:
        return backend.search.find_projects("", order_by=["id"], limit=limit, cursor=cursor)

    return _pages(fetch, LIST_PAGE)
