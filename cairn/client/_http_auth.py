"""Users, tokens and the audit log over REST: what ``cairn users|tokens|audit --url`` call.

The same methods, with the same arguments and answers, as the service's ``AuthService``
(which the CLI calls on a store directly), so the commands are written once.
"""

from __future__ import annotations

from typing import Any

from cairn.client._transport import Transport
from cairn.core.auth import AuditEvent, NewToken, TokenInfo, UserInfo, check_user_name
from cairn.core.errors import InvalidArgument
from cairn.core.validation import check_name

__all__ = ["HttpAuth"]


def _user(data: dict[str, Any]) -> UserInfo:
    return UserInfo(**data)


def _token(data: dict[str, Any]) -> TokenInfo:
    return TokenInfo(**data)


class HttpAuth:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def create_user(
        self, name: str, *, admin: bool = False, password: str | None = None
    ) -> UserInfo:
        check_user_name(name)
        body = {"name": name, "admin": admin, "password": password}
        return _user(self._transport.post("/users", body))

    def list_users(self) -> list[UserInfo]:
        return [_user(u) for u in self._transport.get("/users")]

    def disable_user(self, name: str) -> UserInfo:
        return _user(self._transport.post(f"/users/{check_user_name(name)}/disable"))

    def create_token(
        self, name: str, *, user: str | None = None, expires_in: float | None = None
    ) -> NewToken:
        body: dict[str, Any] = {"name": check_name(name, "token name"), "user": user}
        if expires_in is not None:
            body["expires_in"] = int(expires_in)
        data = dict(self._transport.post("/tokens", body))
        secret = data.pop("token")
        return NewToken(_token({**data, "revoked_at": None}), secret)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        return [_token(t) for t in self._transport.get("/tokens", user=user)]

    def revoke_token(self, name_or_id: str, *, user: str | None = None) -> TokenInfo:
        check_name(name_or_id, "token")
        if "/" in name_or_id:
            raise InvalidArgument("token", "a name with '/' cannot go in a URL: give its id")
        params = {"user": user} if user is not None else None
        answer = self._transport.request("DELETE", f"/tokens/{name_or_id}", params=params)
        return _token(answer.json())

    def audit_events(
        self,
        *,
        since: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        found = self._transport.get("/audit", since=since, actor=actor, action=action, limit=limit)
        return [AuditEvent(**e) for e in found]
