"""Roles in projects: who may read, write or own each (its owners and admins decide)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cairn.core.auth import check_user_name
from cairn.core.roles import RoleInfo, role_name
from cairn.server.deps import Service
from cairn.server.errors import error_responses
from cairn.server.routes.auth import USER_PATTERN
from cairn.server.schemas import ProjectIdPath

__all__ = ["router"]

router = APIRouter(tags=["roles"])
OWNERS = error_responses(403, 404)  # too low a role; no project (or one the caller cannot read)
CHANGE = error_responses(403, 404, 409)  # ... or the last owner would go

RoleName = Literal["reader", "writer", "owner"]
UserPath = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=USER_PATTERN, description="A user's name"),
    AfterValidator(check_user_name),  # the service's own rule, and its message
]


class RoleOut(BaseModel):
    user: str = Field(description="The user's name")
    role: RoleName
    granted_at: int = Field(description="When it was granted, in ms since the Unix epoch")
    granted_by: str = Field(description="Who granted it (empty: with authentication off)")


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RoleName


def _out(info: RoleInfo) -> RoleOut:
    return RoleOut(
        user=info.user,
        role=role_name(info.role),  # type: ignore[arg-type]  # one of RoleName
        granted_at=info.granted_at,
        granted_by=info.granted_by,
    )


@router.get(
    "/projects/{project_id}/roles",
    summary="List who holds which role in a project (owners and admins)",
    responses=OWNERS,
)
def list_roles(project_id: ProjectIdPath, service: Service) -> list[RoleOut]:
    return [_out(r) for r in service.roles.list_roles(project_id)]


@router.put(
    "/projects/{project_id}/roles/{user}",
    summary="Grant a user a role in a project, replacing the one it held (owners and admins)",
    responses=CHANGE,
)
def grant_role(
    project_id: ProjectIdPath, user: UserPath, body: RoleIn, service: Service
) -> RoleOut:
    return _out(service.roles.grant_role(project_id, user, body.role))


@router.delete(
    "/projects/{project_id}/roles/{user}",
    status_code=204,
    summary="Revoke a user's role in a project (owners and admins)",
    responses=CHANGE,
)
def revoke_role(project_id: ProjectIdPath, user: UserPath, service: Service) -> None:
    service.roles.revoke_role(project_id, user)
