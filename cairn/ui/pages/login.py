"""The login page (``/login``): a name and a password sent to ``POST /api/v1/auth/login``
with ``cookie: true``, so the server sets its HttpOnly token cookie and later pages (and
their API calls) carry it. The page itself holds no secret and keeps none."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cairn.ui.render import page, render

__all__ = ["router"]

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server only (never ``//host``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
@page
async def login(
    request: Request, after: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return render(request, "login.html", title="Log in", nav="login", next=safe_next(after))
