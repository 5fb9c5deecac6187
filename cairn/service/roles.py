"""Roles in projects: who may read, write or own each (see docs/roles.md)."""

from __future__ import annotations

from cairn.core.auth import check_user_name
from cairn.core.errors import Conflict, NotFound
from cairn.core.identity import Role
from cairn.core.roles import RoleInfo, parse_role
from cairn.core.validation import check_entity_id
from cairn.service.access import not_found
from cairn.service.base import ServicePart
from cairn.service.identity import current_principal
from cairn.store.metadata.roles import RoleRows
from cairn.store.metadata.tx import MetadataTx

__all__ = ["RoleService"]


class RoleService(ServicePart):
    """List, grant and revoke the roles of a project: its owners' (and admins') call."""

    def list_roles(self, project_id: str) -> list[RoleInfo]:
        """Who holds which role in the project, by user name."""
        self._owned(project_id)
        with self.metadata.read() as tx:
            self._require_project(tx, project_id)
            return RoleRows(tx.conn).of_project(project_id)

    def grant_role(self, project_id: str, user: str, role: Role | str) -> RoleInfo:
        """Give ``user`` (a user name) ``role`` in the project, replacing the one it held.
        Demoting the project's last owner is a ``Conflict``: a project keeps an owner."""
        wanted = parse_role(role)
        check_user_name(user)
        self._owned(project_id)
        principal = current_principal()
        by = "" if principal is None else principal.name
        with self.metadata.write() as tx:
            self._require_project(tx, project_id)
            rows = RoleRows(tx.conn)
            user_id = _user_id(rows, user)
            if wanted < Role.OWNER and rows.role(user_id, project_id) is Role.OWNER:
                _keep_an_owner(rows, project_id, user)
            now = self.clock()
            rows.put(project_id, user_id, wanted, now, by)
        self.access.changed(user_id, project_id, wanted)
        return RoleInfo(user, wanted, now, by)

    def revoke_role(self, project_id: str, user: str) -> None:
        """Take away the role ``user`` holds in the project (nothing if it holds none).
        Removing the project's last owner is a ``Conflict``."""
        check_user_name(user)
        self._owned(project_id)
        with self.metadata.write() as tx:
            self._require_project(tx, project_id)
            rows = RoleRows(tx.conn)
            user_id = _user_id(rows, user)
            if rows.role(user_id, project_id) is Role.OWNER:
                _keep_an_owner(rows, project_id, user)
            rows.remove(project_id, user_id)
        self.access.changed(user_id, project_id, None)

    def _owned(self, project_id: str) -> None:
        check_entity_id(project_id, "project_id")
        self._allow(project_id, Role.OWNER, "project")

    @staticmethod
    def _require_project(tx: MetadataTx, project_id: str) -> None:
        if tx.entities.project(project_id) is None:
            raise not_found("project", project_id)


def _user_id(rows: RoleRows, name: str) -> str:
    found = rows.user_id(name)
    if found is None:
        raise NotFound(f"no user named {name!r}", kind="user", name=name)
    return found


def _keep_an_owner(rows: RoleRows, project_id: str, user: str) -> None:
    if rows.owners(project_id) <= 1:
        raise Conflict(
            f"{user} is the last owner of project {project_id}; grant another user the owner "
            "role first",
            project_id=project_id,
            user=user,
        )
