"""Tags and attributes of any entity; hyperparameters of runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cairn.core.model import HyperparameterValue
from cairn.server.deps import JSON, Service
from cairn.server.schemas import AttributesIn, HyperparametersIn, KeysIn, TagsIn

router = APIRouter(tags=["labels"])


@router.post("/entities/{entity_id}/tags", status_code=204, summary="Add tags")
async def add_tags(entity_id: str, body: TagsIn, service: Service) -> None:
    service.add_tags(entity_id, body.tags)


@router.post("/entities/{entity_id}/tags/remove", status_code=204, summary="Remove tags")
async def remove_tags(entity_id: str, body: TagsIn, service: Service) -> None:
    service.remove_tags(entity_id, body.tags)


@router.get("/entities/{entity_id}/tags")
async def get_tags(entity_id: str, service: Service) -> list[str]:
    return service.get_tags(entity_id)


@router.patch("/entities/{entity_id}/attributes", status_code=204, summary="Set attributes")
async def set_attributes(entity_id: str, body: AttributesIn, service: Service) -> None:
    service.set_attributes(entity_id, body.attributes)


@router.get("/entities/{entity_id}/attributes", response_class=JSON)
async def get_attributes(
    entity_id: str,
    service: Service,
    key: Annotated[list[str] | None, Query(max_length=1000)] = None,
) -> Any:
    return JSON(service.get_attributes(entity_id, key))


@router.post("/entities/{entity_id}/attributes/remove", status_code=204)
async def remove_attributes(entity_id: str, body: KeysIn, service: Service) -> None:
    service.remove_attributes(entity_id, body.keys)


@router.post("/runs/{run_id}/hyperparameters", status_code=204, summary="Log hyperparameters")
async def log_hyperparameters(run_id: str, body: HyperparametersIn, service: Service) -> None:
    service.log_hyperparameters(run_id, body.hyperparameters, overwrite=body.overwrite)


@router.get("/runs/{run_id}/hyperparameters", response_class=JSON)
async def get_hyperparameters(run_id: str, service: Service) -> dict[str, HyperparameterValue]:
    return service.get_hyperparameters(run_id)
