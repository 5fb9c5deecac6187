"""The projects page (``/``): every project with its description, tags, counts and last
activity; a search box in the query language (``/api/v1/search/projects``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.core.errors import InvalidArgument
from cairn.core.search import ProjectRecord
from cairn.service import TrackingService
from cairn.ui.queries import BoxError, box_error
from cairn.ui.render import call, page, render, service
from cairn.ui.summary import Summary, summarize

__all__ = ["router"]

router = APIRouter()
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Row:
    record: ProjectRecord
    summary: Summary


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[Row]
    next_cursor: str | None
    error: BoxError | None


def _load(svc: TrackingService, query: str, cursor: str | None) -> Listing:
    try:
        found = svc.search.find_projects(query, order_by=["name"], limit=PAGE_SIZE, cursor=cursor)
    except InvalidArgument as error:
        return Listing([], None, box_error(error, query))
    rows = [Row(r, summarize(svc, r.info.updated_at, project_id=r.id)) for r in found]
    return Listing(rows, found.next_cursor, None)


@router.get("/")
@page
async def projects(request: Request, q: str = "", cursor: str | None = None) -> Response:
    listing = await call(_load, service(request), q, cursor)
    return render(
        request,
        "projects.html",
        title="Projects",
        nav="projects",
        query=q,
        listing=listing,
    )
