"""An experiment's page: description, tags, owner, dates, attributes and artifacts above
its runs table (:mod:`cairn.ui.runs_table`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.core.model import ArtifactInfo, ExperimentInfo, ProjectInfo
from cairn.service import TrackingService
from cairn.ui.render import call, page, render, service
from cairn.ui.runs_table import RunsTable, TableState, load_table

__all__ = ["router"]

router = APIRouter()


@dataclass(frozen=True, slots=True)
class ExperimentView:
    info: ExperimentInfo
    project: ProjectInfo
    tags: list[str]
    attributes: dict[str, Any]
    artifacts: list[ArtifactInfo]
    table: RunsTable


def _load(svc: TrackingService, experiment_id: str, state: TableState) -> ExperimentView:
    info = svc.entities.get_experiment(experiment_id)
    return ExperimentView(
        info=info,
        project=svc.entities.get_project(info.project_id),
        tags=svc.labels.get_tags(experiment_id),
        attributes=svc.labels.get_attributes(experiment_id),
        artifacts=svc.artifacts.list_artifacts(experiment_id),
        table=load_table(svc, state, experiment_id=experiment_id),
    )


@router.get("/experiments/{experiment_id}")
@page
async def experiment(request: Request, experiment_id: str) -> Response:
    params = request.query_params
    state = TableState.from_params(params, params.getlist("col"))
    view = await call(_load, service(request), experiment_id, state)
    return render(
        request,
        "experiment.html",
        title=view.info.name,
        nav="projects",
        view=view,
        table=view.table,
        path=request.url.path,
        extra={},
        crumbs=[("Projects", "/"), (view.project.name, f"/projects/{view.project.id}")],
    )
