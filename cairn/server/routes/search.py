"""Search: runs, experiments and projects found with the query language, a page at a
time. POST, because a query and its options are a body, not a URL; nothing is written."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from cairn.core.model import ProjectInfo, RunInfo
from cairn.core.search import ExperimentRecord, Page, ProjectRecord, RepositoryRecord, RunRecord
from cairn.server.deps import JSON, Service
from cairn.server.errors import error_responses
from cairn.server.schemas import (
    CountOut,
    CountRunsIn,
    FindExperimentsIn,
    FindProjectsIn,
    FindRepositoriesIn,
    FindRunsIn,
)

__all__ = ["page_json", "router"]

router = APIRouter(tags=["search"])
# A query that does not parse, a limit too large, a stale cursor; a named project or
# experiment that does not exist.
BAD = error_responses(400, 404)

_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunInfo))  # as _run lists them
_ENTITY_FIELDS = ("id", "name", "description", "owner", "created_at", "updated_at", "deleted_at")


_RUN_ROW = (*_RUN_FIELDS, "hyperparameters", "metrics", "tags", "attributes")


def _run(record: RunRecord) -> list[Any]:
    # A row in the order of RUN_FIELDS: a page of 1,000 runs as arrays is a third
    # less JSON to write and read than as objects repeating every field name.
    info = record.info
    return [
        info.id,
        info.experiment_id,
        info.project_id,
        info.name,
        info.description,
        info.owner,
        info.status.value,
        info.parent_id,
        info.start_time,
        info.end_time,
        info.created_at,
        info.updated_at,
        info.deleted_at,
        info.heartbeat_at,
        record.hyperparameters,
        record.metrics,
        record.tags,
        record.attributes,
    ]


def _entity(record: ExperimentRecord | ProjectRecord | RepositoryRecord) -> dict[str, Any]:
    info = record.info
    found: dict[str, Any] = {
        name: getattr(info, name) for name in _ENTITY_FIELDS if hasattr(info, name)
    }
    if not isinstance(record.info, ProjectInfo):
        found["project_id"] = record.info.project_id
    found["tags"] = record.tags
    found["attributes"] = record.attributes
    return found


def page_json(page: Page[Any], key: str) -> JSON:
    if key == "runs":
        body = {
            "fields": _RUN_ROW,
            "runs": [_run(r) for r in page.items],
            "next_cursor": page.next_cursor,
        }
        return JSON(body)
    return JSON({key: [_entity(r) for r in page.items], "next_cursor": page.next_cursor})


_PAGE_DOC = {"content": {"application/json": {"schema": {"type": "object"}}}}


@router.post(
    "/search/runs",
    summary="Find runs, each with its values",
    response_class=JSON,
    responses={200: _PAGE_DOC, **BAD},
)
def find_runs(body: FindRunsIn, service: Service) -> Any:
    page = service.search.find_runs(
        body.query,
        experiment_ids=body.experiment_ids,
        project_ids=body.project_ids,
        order_by=body.order_by,
        limit=body.limit,
        cursor=body.cursor,
        columns=body.columns,
        include_deleted=body.include_deleted,
    )
    return page_json(page, "runs")


@router.post("/search/runs/count", summary="Count the runs a query finds", responses=BAD)
def count_runs(body: CountRunsIn, service: Service) -> CountOut:
    count = service.search.count_runs(
        body.query,
        experiment_ids=body.experiment_ids,
        project_ids=body.project_ids,
        include_deleted=body.include_deleted,
    )
    return CountOut(count=count)


@router.post(
    "/search/experiments",
    summary="Find experiments",
    response_class=JSON,
    responses={200: _PAGE_DOC, **BAD},
)
def find_experiments(body: FindExperimentsIn, service: Service) -> Any:
    page = service.search.find_experiments(
        body.query,
        project_ids=body.project_ids,
        order_by=body.order_by,
        limit=body.limit,
        cursor=body.cursor,
        include_deleted=body.include_deleted,
    )
    return page_json(page, "experiments")


@router.post(
    "/search/projects",
    summary="Find projects",
    response_class=JSON,
    responses={200: _PAGE_DOC, **BAD},
)
def find_projects(body: FindProjectsIn, service: Service) -> Any:
    page = service.search.find_projects(
        body.query,
        order_by=body.order_by,
        limit=body.limit,
        cursor=body.cursor,
        include_deleted=body.include_deleted,
    )
    return page_json(page, "projects")


@router.post(
    "/search/repositories",
    summary="Find repositories",
    response_class=JSON,
    responses={200: _PAGE_DOC, **BAD},
)
def find_repositories(body: FindRepositoriesIn, service: Service) -> Any:
    page = service.search.find_repositories(
        body.query,
        project_ids=body.project_ids,
        order_by=body.order_by,
        limit=body.limit,
        cursor=body.cursor,
    )
    return page_json(page, "repositories")
