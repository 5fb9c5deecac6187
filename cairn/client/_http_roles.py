"""Roles in projects over REST (the :class:`~cairn.service.contracts.Roles` part of the
HTTP backend)."""

from __future__ import annotations

from typing import Any

from cairn.client._transport import Transport
from cairn.client._transport import path_id as _id
from cairn.core.auth import check_user_name
from cairn.core.identity import Role
from cairn.core.roles import RoleInfo, parse_role, role_name
from cairn.core.settings import Settings

__all__ = ["HttpRoles", "role_from_json"]


def role_from_json(data: dict[str, Any]) -> RoleInfo:
    return RoleInfo(data["user"], parse_role(data["role"]), data["granted_at"], data["granted_by"])


class HttpRoles:
    """Who may read, write or own a project."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self._t = transport
        self.settings = settings

    def list_roles(self, project_id: str) -> list[RoleInfo]:
        found = self._t.get(f"/projects/{_id(project_id, 'project_id')}/roles")
        return [role_from_json(r) for r in found]

    def grant_role(self, project_id: str, user: str, role: Role | str) -> RoleInfo:
        body = {"role": role_name(parse_role(role))}
        name = check_user_name(user)
        path = f"/projects/{_id(project_id, 'project_id')}/roles/{name}"
        return role_from_json(self._t.request("PUT", path, json=body).json())

    def revoke_role(self, project_id: str, user: str) -> None:
        name = check_user_name(user)
        path = f"/projects/{_id(project_id, 'project_id')}/roles/{name}"
        self._t.request("DELETE", path)
