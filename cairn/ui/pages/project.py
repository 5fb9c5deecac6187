"""A project's page: its Markdown description, tags, attributes and artifacts, its
experiments (runs, last activity) and its repositories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.core.model import ArtifactInfo, ProjectInfo
from cairn.core.search import ExperimentRecord
from cairn.core.versioning.info import RepositoryInfo
from cairn.service import TrackingService
from cairn.ui.pages.dataset import dataset_ids
from cairn.ui.render import call, page, render, service
from cairn.ui.summary import Summary, summarize

__all__ = ["router"]

router = APIRouter()


@dataclass(frozen=True, slots=True)
class ProjectView:
    info: ProjectInfo
    tags: list[str]
    attributes: dict[str, Any]
    artifacts: list[ArtifactInfo]
    experiments: list[tuple[ExperimentRecord, Summary]]
    repositories: list[RepositoryInfo]
    datasets: set[str]  # ids of the repositories that are datasets (linked to their page)


def _load(svc: TrackingService, project_id: str) -> ProjectView:
    info = svc.entities.get_project(project_id)
    limit = svc.settings.max_search_limit
    found = svc.search.find_experiments(project_ids=[project_id], order_by=["name"], limit=limit)
    experiments = [
        (record, summarize(svc, record.info.updated_at, experiment_id=record.id))
        for record in found
    ]
    return ProjectView(
        info=info,
        tags=svc.labels.get_tags(project_id),
        attributes=svc.labels.get_attributes(project_id),
        artifacts=svc.artifacts.list_artifacts(project_id),
        experiments=experiments,
        repositories=svc.repositories.list_repositories(project_id),
        datasets=dataset_ids(svc, project_id),
    )


@router.get("/projects/{project_id}")
@page
async def project(request: Request, project_id: str) -> Response:
    view = await call(_load, service(request), project_id)
    return render(
        request,
        "project.html",
        title=view.info.name,
        nav="projects",
        view=view,
        crumbs=[("Projects", "/")],
    )
