"""Search over REST (the :class:`~cairn.service.contracts.Search` part of the HTTP
backend). The server parses the query, so its errors (``QueryError`` with position and
caret) come back as they are."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from cairn.client._transport import Transport
from cairn.core.errors import CairnError
from cairn.core.model import ExperimentInfo, ProjectInfo, RunInfo, RunStatus
from cairn.core.search import (
    ExperimentRecord,
    Page,
    ProjectRecord,
    Record,
    RepositoryRecord,
    RunRecord,
    check_limit,
)
from cairn.core.settings import Settings
from cairn.core.versioning.info import RepositoryInfo

__all__ = ["HttpSearch"]

_RUN_VALUES = ("hyperparameters", "metrics", "tags", "attributes")


def _ids(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(values)


def _order(order_by: Sequence[str] | None) -> list[str] | None:
    if order_by is None:
        return None
    return [order_by] if isinstance(order_by, str) else list(order_by)


_RUN_ROW = [f.name for f in dataclasses.fields(RunInfo)] + list(_RUN_VALUES)


def _runs(found: dict[str, Any]) -> list[RunRecord]:
    """Runs from a page's rows, whose columns ``fields`` names (RunInfo's fields, then
    the values)."""
    if found["fields"] != _RUN_ROW:
        raise CairnError(f"the server sent runs as {found['fields']}, this client reads {_RUN_ROW}")
    records = []
    for row in found["runs"]:
        row[6] = RunStatus(row[6])
        records.append(RunRecord(RunInfo(*row[:14]), *row[14:]))
    return records


def _records(found: dict[str, Any], key: str, info: type[Any]) -> Page[Any]:
    """A page of experiments, projects or repositories (objects with tags and
    attributes beside the entity's fields)."""
    items = []
    for data in found[key]:
        tags, attributes = data.pop("tags"), data.pop("attributes")
        items.append(Record(info(**data), tags, attributes))
    return Page(items, found["next_cursor"])


class HttpSearch:
    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._t = transport
        self.settings = settings

    def find_runs(
        self,
        query: str = "",
        *,
        experiment_ids: Sequence[str] | None = None,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> Page[RunRecord]:
        body = {
            "query": query,
            "experiment_ids": _ids(experiment_ids),
            "project_ids": _ids(project_ids),
            "order_by": _order(order_by),
            "limit": check_limit(limit, 1 << 62),  # the server holds its own maximum
            "cursor": cursor,
            "columns": _ids(columns),
            "include_deleted": include_deleted,
        }
        found = self._t.post("/search/runs", body)
        return Page(_runs(found), found["next_cursor"])

    def count_runs(
        self,
        query: str = "",
        *,
        experiment_ids: Sequence[str] | None = None,
        project_ids: Sequence[str] | None = None,
        include_deleted: bool = False,
    ) -> int:
        body = {
            "query": query,
            "experiment_ids": _ids(experiment_ids),
            "project_ids": _ids(project_ids),
            "include_deleted": include_deleted,
        }
        return int(self._t.post("/search/runs/count", body)["count"])

    def find_experiments(
        self,
        query: str = "",
        *,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Page[ExperimentRecord]:
        body = {
            "query": query,
            "project_ids": _ids(project_ids),
            "order_by": _order(order_by),
            "limit": check_limit(limit, 1 << 62),
            "cursor": cursor,
            "include_deleted": include_deleted,
        }
        return _records(self._t.post("/search/experiments", body), "experiments", ExperimentInfo)

    def find_repositories(
        self,
        query: str = "",
        *,
        project_ids: Sequence[str] | None = None,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[RepositoryRecord]:
        body = {
            "query": query,
            "project_ids": _ids(project_ids),
            "order_by": _order(order_by),
            "limit": check_limit(limit, 1 << 62),
            "cursor": cursor,
        }
        return _records(self._t.post("/search/repositories", body), "repositories", RepositoryInfo)

    def find_projects(
        self,
        query: str = "",
        *,
        order_by: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Page[ProjectRecord]:
        body = {
            "query": query,
            "order_by": _order(order_by),
            "limit": check_limit(limit, 1 << 62),
            "cursor": cursor,
            "include_deleted": include_deleted,
        }
        return _records(self._t.post("/search/projects", body), "projects", ProjectInfo)
