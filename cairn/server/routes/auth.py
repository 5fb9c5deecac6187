"""Users, API tokens, password logins and the audit log.

Admins manage users and read the audit log; every user manages their own tokens and
password (the service decides: with authentication off, everything is allowed).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.responses import JSONResponse, Response

from cairn.core.auth import AuditEvent, NewToken, TokenInfo, UserInfo
from cairn.server.auth import COOKIE
from cairn.server.deps import Service
from cairn.server.errors import error_responses
from cairn.server.schemas import MAX_INT64, NAME_PATTERN, Name
from cairn.service.identity import current_principal

__all__ = ["router"]

router = APIRouter(tags=["auth"])

USER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
ADMIN = error_responses(403)  # only an admin may
ADMIN_MISSING = error_responses(403, 404)
ADMIN_WRITE = error_responses(403, 404, 409)

UserName = Annotated[str, Field(min_length=1, max_length=64, pattern=USER_PATTERN)]
UserPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=USER_PATTERN, description="A user's name")
]
UserQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=USER_PATTERN,
        description="Whose tokens (default: the caller's; another user's: admins only)",
    ),
]
Password = Annotated[str, Field(min_length=8, max_length=1024)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: Annotated[str, Field(min_length=1, max_length=256)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    cookie: StrictBool = Field(
        False, description="Also set the token as the HttpOnly cookie cairn_token (web UI)"
    )


class UserIn(_In):
    name: UserName
    admin: StrictBool = False
    password: Password | None = Field(None, description="For the web UI's login; none: tokens only")


class PasswordIn(_In):
    password: Password | None = Field(description="The new password; null: none (tokens only)")


class TokenIn(_In):
    name: Name
    user: UserName | None = Field(None, description="Whose (default: the caller; admins: anyone)")
    expires_in: Annotated[int, Field(ge=1, le=100 * 365 * 86_400)] | None = Field(
        None, description="Seconds until it expires; none: until revoked"
    )


class NewTokenOut(BaseModel):
    token: str = Field(description="The secret: shown this once, stored only as a hash")
    id: str
    name: str
    user: str
    created_at: int
    expires_at: int | None


class WhoAmIOut(BaseModel):
    user: str | None = Field(description="The caller; null when authentication is off")
    admin: bool


def _new_token(made: NewToken) -> NewTokenOut:
    info = made.info
    return NewTokenOut(
        token=made.secret,
        id=info.id,
        name=info.name,
        user=info.user,
        created_at=info.created_at,
        expires_at=info.expires_at,
    )


@router.post(
    "/auth/login",
    summary="Log in with a password: a new token",
    responses=error_responses(401, 429),
)
def login(body: LoginIn, request: Request, service: Service) -> Any:
    made = service.auth.login(body.username, body.password)
    response = JSONResponse(_new_token(made).model_dump(), status_code=200)
    if body.cookie:
        lifetime = int(service.settings.login_token_lifetime)
        response.set_cookie(
            COOKIE,
            made.secret,
            max_age=lifetime,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


@router.post("/auth/logout", status_code=204, summary="Revoke the token of this request")
def logout(service: Service) -> Response:
    service.auth.logout()
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/auth/whoami", summary="Who the token stands for")
def whoami() -> WhoAmIOut:
    principal = current_principal()
    if principal is None:
        return WhoAmIOut(user=None, admin=True)
    return WhoAmIOut(user=principal.name, admin=principal.admin)


@router.get("/users", summary="List users (admins)", responses=ADMIN)
def list_users(service: Service) -> list[UserInfo]:
    return service.auth.list_users()


@router.post("/users", status_code=201, summary="Create a user (admins)", responses=ADMIN_WRITE)
def create_user(body: UserIn, service: Service) -> UserInfo:
    return service.auth.create_user(body.name, admin=body.admin, password=body.password)


@router.get("/users/{name}", summary="A user (admins; anyone: themselves)", responses=ADMIN_MISSING)
def get_user(name: UserPath, service: Service) -> UserInfo:
    return service.auth.get_user(name)


@router.post(
    "/users/{name}/disable",
    summary="Disable a user: their tokens and password stop working (admins)",
    responses=ADMIN_MISSING,
)
def disable_user(name: UserPath, service: Service) -> UserInfo:
    return service.auth.disable_user(name)


@router.put(
    "/users/{name}/password",
    status_code=204,
    summary="Set a user's password (their own; admins: anyone's)",
    responses=ADMIN_MISSING,
)
def set_password(name: UserPath, body: PasswordIn, service: Service) -> None:
    service.auth.set_password(name, body.password)


@router.get("/tokens", summary="List tokens (never their secrets)", responses=ADMIN_MISSING)
def list_tokens(service: Service, user: UserQuery = None) -> list[TokenInfo]:
    return service.auth.list_tokens(user)


@router.post(
    "/tokens", status_code=201, summary="Create a token (shown once)", responses=ADMIN_WRITE
)
def create_token(body: TokenIn, service: Service) -> NewTokenOut:
    made = service.auth.create_token(body.name, user=body.user, expires_in=body.expires_in)
    return _new_token(made)


@router.delete("/tokens/{token}", summary="Revoke a token, by name or id", responses=ADMIN_MISSING)
def revoke_token(
    token: Annotated[
        str,
        Path(min_length=1, max_length=256, pattern=NAME_PATTERN, description="Name or id"),
    ],
    service: Service,
    user: UserQuery = None,
) -> TokenInfo:
    return service.auth.revoke_token(token, user=user)


@router.get("/audit", summary="The audit log, newest first (admins)", responses=ADMIN)
def audit(
    service: Service,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="Only events at or after (ms)")
    ] = None,
    actor: Annotated[str | None, Query(max_length=256, pattern=NAME_PATTERN)] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, pattern=NAME_PATTERN, description="A prefix, e.g. auth."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AuditEvent]:
    return service.auth.audit_events(since=since, actor=actor, action=action, limit=limit)
