"""Roles in a project as values: who holds which, and the rule a role name follows."""

from __future__ import annotations

from dataclasses import dataclass

from cairn.core.errors import InvalidArgument
from cairn.core.identity import Role

__all__ = ["ROLE_NAMES", "RoleInfo", "parse_role", "role_name"]

ROLE_NAMES: tuple[str, ...] = tuple(r.name.lower() for r in Role)  # reader, writer, owner


def parse_role(value: Role | str, field: str = "role") -> Role:
    """``"reader"``, ``"writer"`` or ``"owner"`` (or a :class:`Role`) as a Role."""
    if isinstance(value, Role):
        return value
    if isinstance(value, str) and value.lower() in ROLE_NAMES:
        return Role[value.upper()]
    raise InvalidArgument(field, f"must be one of {', '.join(ROLE_NAMES)}, got {value!r}")


def role_name(role: Role) -> str:
    """The name a role is stored and sent as."""
    return role.name.lower()


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """A user's role in one project: who granted it, and when (ms since the epoch)."""

    user: str  # the user's name
    role: Role
    granted_at: int
    granted_by: str  # the granting user's name; "" when authentication was off
