"""Users, API tokens and audit events as values, and the rules of their inputs.

A token's secret is never part of these values: it is shown once, when made
(:class:`NewToken`), and only a hash of it is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cairn.core.errors import InvalidArgument

__all__ = [
    "AuditEvent",
    "NewToken",
    "TokenInfo",
    "UserInfo",
    "check_user_name",
    "parse_duration",
]

# User names go into tokens' listings, audit lines and owners: plain and short.
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_DURATION = re.compile(r"(\d+)\s*([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def check_user_name(value: object, field: str = "user") -> str:
    if not isinstance(value, str) or _USER_NAME.fullmatch(value) is None:
        raise InvalidArgument(
            field,
            "must be 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter "
            f"or digit, got {value!r}",
        )
    return value


def parse_duration(text: str, field: str = "expires") -> int:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a plain number of seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match[1]) <= 0:
        raise InvalidArgument(
            field, f"must be a positive duration such as 30d, 12h, 90m or 3600, got {text!r}"
        )
    return int(match[1]) * _UNIT_SECONDS[match[2]]


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    name: str
    admin: bool
    created_at: int  # ms since the epoch
    disabled_at: int | None = None
    has_password: bool = False

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed: never its secret."""

    id: str
    name: str
    user: str  # the user's name
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None

    def state(self, now: int) -> str:
        """One of "active", "expired" or "revoked"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made, with its secret: the one time the secret is shown."""

    info: TokenInfo
    secret: str

    def __repr__(self) -> str:  # the secret never prints
        return f"NewToken({self.info!r}, secret='***')"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to what, when, from where, and how it was answered."""

    time: int  # ms since the epoch
    actor: str  # the user's name; "" when no one was authenticated
    action: str  # "POST /api/v1/runs/{id}", "user.create", "auth.login_failed", ...
    target: str = ""
    remote: str = ""  # the client's address, or "local" for the CLI on the store
    status: int = 200
    detail: dict[str, Any] | None = None
    id: int | None = None  # set once stored
