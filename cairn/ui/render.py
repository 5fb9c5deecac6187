"""Rendering pages: the Jinja2 environment (autoescaped), the headers every page carries
(Content-Security-Policy: scripts only from this server, none inline), the hop off the
event loop that every service call takes, and errors shown as pages.

For page modules (``cairn/ui/pages/*.py``), the whole toolkit is::

    router = APIRouter()

    @router.get("/things/{thing_id}")
    @page
    async def thing(request: Request, thing_id: str) -> Response:
        info = await call(service(request).entities.get_project, thing_id)
        return render(request, "thing.html", title=info.name, info=info)
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import jinja2
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from cairn.core.api import API_PREFIX
from cairn.core.errors import CairnError, InvalidArgument, NotFound, PermissionDenied
from cairn.core.version import VERSION
from cairn.service import TrackingService
from cairn.ui.markdown import plain_summary, render_markdown

__all__ = [
    "CSP",
    "TEMPLATES",
    "call",
    "cell_text",
    "environment",
    "page",
    "render",
    "service",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Scripts and everything else only from this server; no inline script, no plugins, no
# framing. Inline *styles* are allowed: plotly.js writes style attributes into the SVG it
# draws, and a style cannot run code.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

P = ParamSpec("P")
T = TypeVar("T")


def service(request: Request) -> TrackingService:
    found: TrackingService = request.app.state.service
    return found


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a (blocking) service call on a worker thread: the event loop never waits on the
    database. The principal the request acts as travels with it (a context variable)."""
    return await run_in_threadpool(fn, *args, **kwargs)


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ago(ms: int | None, now: float | None = None) -> str:
    """'3 min ago': short, for tables (the exact time goes in a title)."""
    if ms is None:
        return ""
    seconds = (now if now is not None else time.time()) - ms / 1000
    if seconds < 0:
        return "just now"
    for size, unit in ((86400 * 365, "y"), (86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {sec:02d} s"


def cell_text(value: Any) -> str:
    """A value for a table cell: floats short, everything else as JSON would say it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, (int, str)):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False, default=str)


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _auth_on(request: Request | None) -> bool:
    """Whether the server asks for credentials (the nav then offers the login page)."""
    return request is not None and bool(service(request).settings.auth)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: user strings are escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters.update(when=_when, ago=_ago, duration=_duration, value=cell_text, pretty=_pretty)
    env.filters.update(markdown=render_markdown, summary=plain_summary)
    env.globals.update(api=API_PREFIX, version=VERSION, auth_on=_auth_on)
    return env


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    body = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


_ERROR_STATUS = ((NotFound, 404), (PermissionDenied, 403), (InvalidArgument, 400))


def error_page(request: Request, error: CairnError) -> Response:
    status = next((s for cls, s in _ERROR_STATUS if isinstance(error, cls)), 500)
    if status == 500:
        raise error  # the server's handlers log it and answer in the one error shape
    return render(request, "error.html", status=status, title=f"Error {status}", error=error)


def page(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """A page handler whose domain errors (not found, bad input) become an HTML page
    instead of the API's JSON. The handler takes ``request`` by that name."""

    @functools.wraps(handler)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except CairnError as error:
            request = kwargs.get("request")
            if not isinstance(request, Request):
                raise
            return error_page(request, error)

    return wrapped
