"""Runs found across projects (``/runs``, optionally ``?project=ID``): the runs table of
:mod:`cairn.ui.runs_table`, without an experiment."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.core.model import ProjectInfo
from cairn.service import TrackingService
from cairn.ui.render import call, page, render, service
from cairn.ui.runs_table import RunsTable, TableState, load_table

__all__ = ["router"]

router = APIRouter()


def _load(
    svc: TrackingService, state: TableState, project_id: str | None
) -> tuple[RunsTable, ProjectInfo | None]:
    project = svc.entities.get_project(project_id) if project_id else None
    return load_table(svc, state, project_id=project_id), project


@router.get("/runs")
@page
async def runs(request: Request, project: str | None = None) -> Response:
    params = request.query_params
    state = TableState.from_params(params, params.getlist("col"))
    table, project_info = await call(_load, service(request), state, project or None)
    crumbs = [("Projects", "/")]
    if project_info is not None:
        crumbs.append((project_info.name, f"/projects/{project_info.id}"))
    return render(
        request,
        "runs.html",
        title="Runs" if project_info is None else f"Runs of {project_info.name}",
        nav="runs",
        table=table,
        project=project_info,
        path=request.url.path,
        extra={"project": project_info.id} if project_info else {},
        crumbs=crumbs if project_info else [],
    )
