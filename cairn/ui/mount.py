"""The UI's routes on the server's app: every page module's router, and the static files
(the package's own ``static/`` folder, and plotly.js from the ``plotly`` package), all
outside the OpenAPI document."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from cairn.ui import INSTALL_HINT, pages

__all__ = ["STATIC", "STATIC_URL", "install", "plotly_js"]

STATIC = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"
# Static files change only with a release: browsers may keep them an hour.
_CACHE = {"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"}


def plotly_js() -> Path:
    """plotly.js as the ``plotly`` wheel ships it: no Node build, nothing from a CDN."""
    spec = importlib.util.find_spec("plotly")  # found, not imported: plotly is slow to import
    if spec is None or spec.origin is None:
        raise RuntimeError(f"plotly is not installed: {INSTALL_HINT}")
    return Path(spec.origin).resolve().parent / "package_data" / "plotly.min.js"


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_CACHE)
        return response


def page_routers() -> list[APIRouter]:
    """``router`` of every module in :mod:`cairn.ui.pages`, in name order."""
    found = []
    for module in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{pages.__name__}.{module.name}")
        router = getattr(loaded, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def install(app: FastAPI) -> None:
    plotly = plotly_js()

    @app.get(f"{STATIC_URL}/plotly.min.js", include_in_schema=False)
    async def plotly_file() -> FileResponse:
        return FileResponse(plotly, media_type="text/javascript", headers=_CACHE)

    for router in page_routers():
        app.include_router(router, include_in_schema=False)
    app.mount(STATIC_URL, _Static(directory=STATIC), name="static")
