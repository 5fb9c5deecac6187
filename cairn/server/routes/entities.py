"""Projects, experiments and runs."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from pydantic import TypeAdapter
from starlette.responses import Response

from cairn.core.columns import batch_from_records
from cairn.core.model import ExperimentInfo, MetricRecord, ProjectInfo, RunInfo
from cairn.server.deps import Service
from cairn.server.errors import error_responses
from cairn.server.schemas import (
    CreateRunIn,
    DescriptionIn,
    EndRunIn,
    EntityIdPath,
    ExperimentIdPath,
    HeartbeatIn,
    HeartbeatOut,
    IdempotencyKeyHeader,
    IdFragmentQuery,
    NameQuery,
    ProjectIdPath,
    RunIdPath,
    SetEntityIn,
)
from cairn.service import TrackingService

__all__ = ["create_or_get_run", "router", "run_response"]

router = APIRouter(tags=["entities"])
MISSING = error_responses(404)  # the id (or name) names nothing
WRITE = error_responses(404, 409)  # ... or a deleted run, or a name that is taken


@router.post("/projects", summary="Get or create a project by name")
def set_project(body: SetEntityIn, service: Service) -> ProjectInfo:
    return service.entities.set_project(
        body.name, description=body.description, owner=body.owner, tags=body.tags
    )


@router.get("/projects", summary="List projects, or find one by name", responses=MISSING)
def list_projects(service: Service, name: NameQuery = None) -> list[ProjectInfo]:
    if name is not None:
        return [service.entities.get_project_by_name(name)]
    return service.entities.list_projects()


@router.get("/projects/{project_id}", responses=MISSING)
def get_project(project_id: ProjectIdPath, service: Service) -> ProjectInfo:
    return service.entities.get_project(project_id)


@router.delete("/projects/{project_id}", summary="Soft-delete a project", responses=MISSING)
def delete_project(project_id: ProjectIdPath, service: Service) -> ProjectInfo:
    return service.entities.delete_project(project_id)


@router.post("/projects/{project_id}/restore", summary="Undo a soft delete", responses=MISSING)
def restore_project(project_id: ProjectIdPath, service: Service) -> ProjectInfo:
    return service.entities.restore_project(project_id)


@router.post(
    "/projects/{project_id}/experiments", summary="Get or create an experiment", responses=WRITE
)
def set_experiment(
    project_id: ProjectIdPath, body: SetEntityIn, service: Service
) -> ExperimentInfo:
    return service.entities.set_experiment(
        project_id, body.name, description=body.description, owner=body.owner, tags=body.tags
    )


@router.get("/projects/{project_id}/experiments", responses=MISSING)
def list_experiments(
    project_id: ProjectIdPath, service: Service, name: NameQuery = None
) -> list[ExperimentInfo]:
    if name is not None:
        return [service.entities.get_experiment_by_name(project_id, name)]
    return service.entities.list_experiments(project_id)


@router.get("/experiments/{experiment_id}", responses=MISSING)
def get_experiment(experiment_id: ExperimentIdPath, service: Service) -> ExperimentInfo:
    return service.entities.get_experiment(experiment_id)


@router.delete(
    "/experiments/{experiment_id}", summary="Soft-delete an experiment", responses=MISSING
)
def delete_experiment(experiment_id: ExperimentIdPath, service: Service) -> ExperimentInfo:
    return service.entities.delete_experiment(experiment_id)


@router.post(
    "/experiments/{experiment_id}/restore", summary="Undo a soft delete", responses=MISSING
)
def restore_experiment(experiment_id: ExperimentIdPath, service: Service) -> ExperimentInfo:
    return service.entities.restore_experiment(experiment_id)


_RUN: Final = TypeAdapter(RunInfo)


def run_response(run: RunInfo) -> Response:
    """A run as the JSON its response model describes, serialized at once: FastAPI would
    first validate the run it was handed against that model, for a fifth of the route's
    CPU."""
    return Response(_RUN.dump_json(run), media_type="application/json")


def create_or_get_run(service: TrackingService, experiment_id: str, body: CreateRunIn) -> RunInfo:
    """The one service call of create_run (also made by cairn.server.fastpath)."""
    if body.get_or_create and body.name is not None:
        return service.entities.set_run(
            experiment_id,
            body.name,
            parent_id=body.parent_id,
            description=body.description,
            owner=body.owner,
            tags=body.tags,
        )
    captures = None
    if body.captures is not None:
        captures = {path: (ref.kind, ref.digest) for path, ref in body.captures.items()}
    return service.entities.create_run(
        experiment_id,
        body.name,
        parent_id=body.parent_id,
        description=body.description,
        owner=body.owner,
        tags=body.tags,
        captures=captures,
    )


@router.post(
    "/experiments/{experiment_id}/runs",
    summary="Create (or get) a run",
    response_model=RunInfo,
    responses=WRITE,
)
def create_run(experiment_id: ExperimentIdPath, body: CreateRunIn, service: Service) -> Response:
    # The usual request is answered by cairn.server.fastpath before it gets here.
    return run_response(create_or_get_run(service, experiment_id, body))


@router.get("/experiments/{experiment_id}/runs", responses=MISSING)
def list_runs(
    experiment_id: ExperimentIdPath,
    service: Service,
    name: NameQuery = None,
    include_deleted: bool = False,
) -> list[RunInfo]:
    if name is not None:
        return [service.entities.get_run_by_name(experiment_id, name)]
    return service.entities.list_runs(experiment_id, include_deleted=include_deleted)


@router.get("/runs", summary="Find runs by the start or the end of their id")
def find_runs_by_id(service: Service, id_fragment: IdFragmentQuery) -> list[RunInfo]:
    return service.entities.find_runs_by_id(id_fragment)


@router.post("/heartbeats", summary="Say the runs' process is alive")
def heartbeat(body: HeartbeatIn, service: Service) -> HeartbeatOut:
    return HeartbeatOut(running=service.entities.heartbeat(body.run_ids))


@router.get("/runs/{run_id}", response_model=RunInfo, responses=MISSING)
def get_run(run_id: RunIdPath, service: Service) -> Response:
    return run_response(service.entities.get_run(run_id))


@router.patch(
    "/runs/{run_id}", summary="End a run: set its status", response_model=RunInfo, responses=WRITE
)
def end_run(
    run_id: RunIdPath,
    body: EndRunIn,
    service: Service,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    metrics = None
    if body.points:
        metrics = batch_from_records(
            MetricRecord(run_id, p.key, p.step, p.timestamp, p.value) for p in body.points
        )
    ended = service.entities.end_run(
        run_id, body.status, metrics=metrics, idempotency_key=idempotency_key
    )
    return run_response(ended)


@router.post("/runs/{run_id}/resume", summary="Make an ended run running again", responses=WRITE)
def resume_run(run_id: RunIdPath, service: Service) -> RunInfo:
    return service.entities.resume_run(run_id)


@router.delete("/runs/{run_id}", summary="Soft-delete a run", responses=MISSING)
def delete_run(run_id: RunIdPath, service: Service) -> RunInfo:
    return service.entities.delete_run(run_id)


@router.post("/runs/{run_id}/restore", summary="Undo a soft delete", responses=MISSING)
def restore_run(run_id: RunIdPath, service: Service) -> RunInfo:
    return service.entities.restore_run(run_id)


@router.get("/runs/{run_id}/children", responses=MISSING)
def list_child_runs(
    run_id: RunIdPath, service: Service, include_deleted: bool = False
) -> list[RunInfo]:
    return service.entities.list_child_runs(run_id, include_deleted=include_deleted)


@router.put("/entities/{entity_id}/description", status_code=204, responses=WRITE)
def set_description(entity_id: EntityIdPath, body: DescriptionIn, service: Service) -> None:
    service.entities.set_description(entity_id, body.description)
