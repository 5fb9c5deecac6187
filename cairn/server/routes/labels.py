"""Tags and attributes of any entity; hyperparameters of runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cairn.core.model import HyperparameterValue
from cairn.server.deps import JSON, Service
from cairn.server.errors import error_responses
from cairn.server.schemas import (
    AttributesIn,
    EntityIdPath,
    HyperparametersIn,
    KeysIn,
    KeysQuery,
    RunIdPath,
    TagsIn,
)

router = APIRouter(tags=["labels"])
MISSING = error_responses(404)  # the id names nothing
WRITE = error_responses(404, 409)  # ... or a deleted run; a hyperparameter logged before


@router.post("/entities/{entity_id}/tags", status_code=204, summary="Add tags", responses=WRITE)
def add_tags(entity_id: EntityIdPath, body: TagsIn, service: Service) -> None:
    service.labels.add_tags(entity_id, body.tags)


@router.post(
    "/entities/{entity_id}/tags/remove", status_code=204, summary="Remove tags", responses=WRITE
)
def remove_tags(entity_id: EntityIdPath, body: TagsIn, service: Service) -> None:
    service.labels.remove_tags(entity_id, body.tags)


@router.get("/entities/{entity_id}/tags", responses=MISSING)
def get_tags(entity_id: EntityIdPath, service: Service) -> list[str]:
    return service.labels.get_tags(entity_id)


@router.patch(
    "/entities/{entity_id}/attributes", status_code=204, summary="Set attributes", responses=WRITE
)
def set_attributes(entity_id: EntityIdPath, body: AttributesIn, service: Service) -> None:
    service.labels.set_attributes(entity_id, body.attributes)


@router.get(
    "/entities/{entity_id}/attributes",
    response_class=JSON,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **MISSING},
)
def get_attributes(entity_id: EntityIdPath, service: Service, key: KeysQuery = None) -> Any:
    return JSON(service.labels.get_attributes(entity_id, key))


@router.post("/entities/{entity_id}/attributes/remove", status_code=204, responses=WRITE)
def remove_attributes(entity_id: EntityIdPath, body: KeysIn, service: Service) -> None:
    service.labels.remove_attributes(entity_id, body.keys)


@router.post(
    "/runs/{run_id}/hyperparameters",
    status_code=204,
    summary="Log hyperparameters",
    responses=WRITE,
)
def log_hyperparameters(run_id: RunIdPath, body: HyperparametersIn, service: Service) -> None:
    service.labels.log_hyperparameters(run_id, body.hyperparameters, overwrite=body.overwrite)


@router.get("/runs/{run_id}/hyperparameters", response_class=JSON, responses=MISSING)
def get_hyperparameters(run_id: RunIdPath, service: Service) -> dict[str, HyperparameterValue]:
    return service.labels.get_hyperparameters(run_id)
