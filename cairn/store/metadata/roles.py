"""Rows of project roles, and the lookups authorization makes: the project an entity
belongs to, a user's role in a project, the projects a user may read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, literal, select, union_all, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from cairn.core.identity import Role
from cairn.core.model import ProjectInfo
from cairn.core.roles import RoleInfo, parse_role, role_name
from cairn.store.metadata import dialect
from cairn.store.metadata.schema import (
    experiments,
    project_roles,
    projects,
    repositories,
    runs,
    users,
)

__all__ = ["RoleRows", "readable_by"]


def readable_by(column: ColumnElement[Any], user_id: str) -> ColumnElement[bool]:
    """``column`` (a project id) names a project ``user_id`` holds a role in: compiled
    into a search's statement, so its pages and counts see only what the user may read."""
    held = select(project_roles.c.project_id).where(project_roles.c.user_id == user_id)
    return column.in_(held.scalar_subquery())


class RoleRows:
    """Roles of one transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- lookups of authorization -------------------------------------------------------
    def project_of(self, entity_id: str) -> str | None:
        """The project of a project, experiment, run or repository (ids are unique across
        kinds); None if no entity has this id."""
        query = union_all(
            select(projects.c.id.label("p")).where(projects.c.id == entity_id),
            select(experiments.c.project_id).where(experiments.c.id == entity_id),
            select(runs.c.project_id).where(runs.c.id == entity_id),
            select(repositories.c.project_id).where(repositories.c.id == entity_id),
        )
        row = self._conn.execute(query).first()
        return None if row is None else str(row[0])

    def role(self, user_id: str, project_id: str) -> Role | None:
        row = self._conn.execute(
            select(project_roles.c.role).where(
                project_roles.c.user_id == user_id, project_roles.c.project_id == project_id
            )
        ).first()
        return None if row is None else parse_role(row[0])

    def writes_somewhere(self, user_id: str) -> bool:
        """The user is a writer or owner of some project."""
        row = self._conn.execute(
            select(literal(1)).where(
                project_roles.c.user_id == user_id,
                project_roles.c.role.in_([role_name(Role.WRITER), role_name(Role.OWNER)]),
            )
        ).first()
        return row is not None

    def readable_projects(self, user_id: str) -> list[ProjectInfo]:
        """The projects not deleted that the user holds a role in, by id."""
        rows = self._conn.execute(
            select(projects)
            .where(projects.c.deleted_at.is_(None), readable_by(projects.c.id, user_id))
            .order_by(projects.c.id)
        )
        return [ProjectInfo(*row) for row in rows]

    def user_id(self, name: str) -> str | None:
        row = self._conn.execute(select(users.c.id).where(users.c.name == name)).first()
        return None if row is None else str(row[0])

    # -- the roles of a project ---------------------------------------------------------
    def of_project(self, project_id: str) -> list[RoleInfo]:
        rows = self._conn.execute(
            select(
                users.c.name,
                project_roles.c.role,
                project_roles.c.granted_at,
                project_roles.c.granted_by,
            )
            .join(users, users.c.id == project_roles.c.user_id)
            .where(project_roles.c.project_id == project_id)
            .order_by(users.c.name)
        )
        return [RoleInfo(name, parse_role(role), at, by) for name, role, at, by in rows]

    def put(self, project_id: str, user_id: str, role: Role, now: int, by: str) -> None:
        """Grant ``role``, replacing the role the user held in the project."""
        row = {
            "project_id": project_id,
            "user_id": user_id,
            "role": role_name(role),
            "granted_at": now,
            "granted_by": by,
        }
        inserted = self._conn.execute(dialect.insert_ignore(self._conn.engine, project_roles), row)
        if inserted.rowcount != 1:
            self._conn.execute(
                update(project_roles)
                .where(project_roles.c.project_id == project_id, project_roles.c.user_id == user_id)
                .values(role=row["role"], granted_at=now, granted_by=by)
            )

    def remove(self, project_id: str, user_id: str) -> bool:
        """Revoke the user's role in the project; whether it held one."""
        result = self._conn.execute(
            delete(project_roles).where(
                project_roles.c.project_id == project_id, project_roles.c.user_id == user_id
            )
        )
        return bool(result.rowcount == 1)

    def owners(self, project_id: str) -> int:
        """How many owners the project has. The project's row is locked first (SQLite's
        writers are one at a time already), so two revokes at once cannot both pass a
        check that the last owner stays."""
        self._conn.execute(
            select(projects.c.id).where(projects.c.id == project_id).with_for_update()
        )
        query = select(func.count()).where(
            project_roles.c.project_id == project_id,
            project_roles.c.role == role_name(Role.OWNER),
        )
        return int(self._conn.execute(query).scalar_one())
