"""Who is calling: the principal every service call acts as, and the roles it can hold."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Principal", "Role"]


class Role(enum.IntEnum):
    """A user's role in one project; a higher role can do all a lower one can."""

    READER = 1  # read everything in the project
    WRITER = 2  # also create and change experiments, runs, artifacts, repositories
    OWNER = 3  # also grant and revoke roles, delete the project


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``name`` becomes the owner of what it creates; an admin may
    do anything on the server. With authentication off there is no principal at all (the
    service then trusts the caller, as an embedded store must)."""

    user_id: str
    name: str
    admin: bool = False
    token_id: str | None = None  # which token authenticated it (for the audit log)

    def __repr__(self) -> str:  # never a secret in it; token ids are not secrets
        return f"Principal({self.name!r}, admin={self.admin})"
