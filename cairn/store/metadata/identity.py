"""Rows of users, API tokens (hashes of their secrets only) and audit events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.engine import Connection

from cairn.core.auth import AuditEvent, TokenInfo, UserInfo
from cairn.store.metadata.schema import audit_events, tokens, users

__all__ = ["IdentityRows", "TokenGrant"]


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a token's hash authenticates: the token and its user, as stored."""

    token_id: str
    secret_hash: str
    expires_at: int | None
    revoked_at: int | None
    user_id: str
    user: str
    admin: bool
    disabled_at: int | None


def _user(row: Row[Any]) -> UserInfo:
    return UserInfo(
        id=row.id,
        name=row.name,
        admin=bool(row.admin),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        has_password=row.password_hash is not None,
    )


_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.name,
    users.c.name.label("user"),
    tokens.c.created_at,
    tokens.c.expires_at,
    tokens.c.revoked_at,
)


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        user=row.user,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class IdentityRows:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- users ----------------------------------------------------------------------------
    def insert_user(
        self, user_id: str, name: str, password_hash: str | None, admin: bool, now: int
    ) -> None:
        self._conn.execute(
            users.insert().values(
                id=user_id, name=name, password_hash=password_hash, admin=admin, created_at=now
            )
        )

    def user(self, name: str) -> UserInfo | None:
        row = self._conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else _user(row)

    def password_hash(self, name: str) -> tuple[UserInfo, str | None] | None:
        """The user and its password's hash (None: it has none)."""
        row = self._conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else (_user(row), row.password_hash)

    def users(self) -> list[UserInfo]:
        return [_user(r) for r in self._conn.execute(select(users).order_by(users.c.name))]

    def count_users(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(users)).scalar_one())

    def set_password(self, user_id: str, password_hash: str | None) -> None:
        self._conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    def disable_user(self, user_id: str, now: int) -> None:
        self._conn.execute(
            update(users)
            .where(users.c.id == user_id, users.c.disabled_at.is_(None))
            .values(disabled_at=now)
        )

    # -- tokens ---------------------------------------------------------------------------
    def insert_token(
        self,
        token_id: str,
        user_id: str,
        name: str,
        secret_hash: str,
        now: int,
        expires_at: int | None,
    ) -> None:
        self._conn.execute(
            tokens.insert().values(
                id=token_id,
                user_id=user_id,
                name=name,
                secret_hash=secret_hash,
                created_at=now,
                expires_at=expires_at,
            )
        )

    def token_names(self, user_id: str) -> set[str]:
        rows = self._conn.execute(select(tokens.c.name).where(tokens.c.user_id == user_id))
        return {r[0] for r in rows}

    def tokens(self, user_id: str | None = None) -> list[TokenInfo]:
        """Every token (of one user), oldest first."""
        query = select(*_TOKEN_COLUMNS).join(users, users.c.id == tokens.c.user_id)
        if user_id is not None:
            query = query.where(tokens.c.user_id == user_id)
        return [_token(r) for r in self._conn.execute(query.order_by(tokens.c.id))]

    def token(self, user_id: str, name_or_id: str) -> TokenInfo | None:
        """The user's token of that name, or with that id."""
        query = (
            select(*_TOKEN_COLUMNS)
            .join(users, users.c.id == tokens.c.user_id)
            .where(
                tokens.c.user_id == user_id,
                (tokens.c.name == name_or_id) | (tokens.c.id == name_or_id),
            )
        )
        row = self._conn.execute(query).first()
        return None if row is None else _token(row)

    def revoke_token(self, token_id: str, now: int) -> None:
        self._conn.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def grant(self, secret_hash: str) -> TokenGrant | None:
        """The token whose secret hashes to ``secret_hash``, with its user (one indexed
        read: the hash column is unique)."""
        row = self._conn.execute(
            select(
                tokens.c.id,
                tokens.c.secret_hash,
                tokens.c.expires_at,
                tokens.c.revoked_at,
                users.c.id.label("user_id"),
                users.c.name,
                users.c.admin,
                users.c.disabled_at,
            )
            .join(users, users.c.id == tokens.c.user_id)
            .where(tokens.c.secret_hash == secret_hash)
        ).first()
        if row is None:
            return None
        return TokenGrant(
            token_id=row.id,
            secret_hash=row.secret_hash,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            user_id=row.user_id,
            user=row.name,
            admin=bool(row.admin),
            disabled_at=row.disabled_at,
        )

    # -- the audit log --------------------------------------------------------------------
    def insert_audit(self, events: Sequence[AuditEvent]) -> None:
        if events:
            self._conn.execute(
                audit_events.insert(),
                [
                    {
                        "time": e.time,
                        "actor": e.actor,
                        "action": e.action[:64],
                        "target": e.target[:1024],
                        "remote": e.remote[:128],
                        "status": e.status,
                        "detail": json.dumps(e.detail or {}, separators=(",", ":")),
                    }
                    for e in events
                ],
            )

    def audit(
        self,
        *,
        since: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """The newest ``limit`` events (newest first); ``action`` matches a prefix
        (``user.`` for every user event)."""
        c = audit_events.c
        query = select(audit_events)
        if since is not None:
            query = query.where(c.time >= since)
        if actor is not None:
            query = query.where(c.actor == actor)
        if action is not None:
            escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(c.action.like(escaped + "%", escape="\\"))
        rows = self._conn.execute(query.order_by(c.id.desc()).limit(limit))
        return [
            AuditEvent(
                time=r.time,
                actor=r.actor,
                action=r.action,
                target=r.target,
                remote=r.remote,
                status=r.status,
                detail=json.loads(r.detail) if r.detail else None,
                id=r.id,
            )
            for r in rows
        ]
