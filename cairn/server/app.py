"""The one app factory: routes, middleware, error handlers and lifespan, made explicit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from cairn.core.api import API_PREFIX
from cairn.core.jsondepth import MAX_JSON_DEPTH
from cairn.core.settings import Settings
from cairn.core.version import VERSION
from cairn.server.auth import Authenticate
from cairn.server.errors import install_error_handlers
from cairn.server.fastpath import FastRoutes
from cairn.server.limits import BodyLimit, JsonDepthLimit
from cairn.server.openapi import CairnAPI
from cairn.server.perimeter import install_perimeter
from cairn.server.routes import (
    artifacts,
    auth,
    entities,
    labels,
    metrics,
    objects_batch,
    objects_chunks,
    roles,
    search,
    versioning,
)
from cairn.server.schemas import MetricsIn
from cairn.service import TrackingService, open_service
from cairn.ui import mount as mount_ui

__all__ = ["API_PREFIX", "create_app"]

_FAST_PATH_THREADS = 8

# FastAPI's native OpenTelemetry hooks look up the global providers on every request
# (~4% of a create_run's server CPU), and Cairn configures none: cairn.access logs
# every request instead.
_NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def create_app(settings: Settings, service: TrackingService | None = None) -> FastAPI:
    """Build the server. Without ``service``, the store named by ``settings`` opens at
    start-up and closes at shutdown; nothing happens at import time."""

    # The fast path (its hot routes) waits on the database on threads of its own (they
    # start on first use, and end when the app is collected; a lifespan may run more than
    # once): not the ones object transfers read and write on.
    fast_path = ThreadPoolExecutor(_FAST_PATH_THREADS, thread_name_prefix="cairn-fast-path")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.service = open_service(settings, server=True) if owned else service
        try:
            async with artifacts.sweeping(app.state.service, settings.temp_grace):
                yield
        finally:
            if owned:
                app.state.service.close()

    exempt = (f"{API_PREFIX}/objects",)  # uploads stream to disk: no size limit
    app = CairnAPI(
        exempt=exempt,
        extra_models=(MetricsIn,),  # the metric batch body is read by hand
        title="Cairn",
        version=VERSION,
        description="Versioning and metadata for machine-learning models.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by cairn.ui.apidocs from a package, offline
        redoc_url=None,
        lifespan=lifespan,
        telemetry=_NO_TELEMETRY,
        auth=settings.auth,  # documents the bearer token and the 401s
    )
    if service is not None:  # usable before start-up too (tests drive the app directly)
        app.state.service = service
    install_error_handlers(app)

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/health", tags=["server"], summary="Liveness and version")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": VERSION}

    for module in (entities, labels, metrics, artifacts, versioning, search, auth, roles):
        api.include_router(module.router)
    api.include_router(objects_batch.router)  # many small objects per request
    api.include_router(objects_chunks.router)  # big files as the chunks the server lacks
    app.include_router(api)
    mount_ui(app)  # the web UI under /, and the API docs page; outside the OpenAPI document
    # Inside BodyLimit (added last, so outermost): a body is counted as it is read.
    app.add_middleware(FastRoutes, prefix=API_PREFIX, executor=fast_path)
    app.add_middleware(JsonDepthLimit, limit=MAX_JSON_DEPTH, exempt=exempt)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, exempt=exempt)
    # Outside the body limit: a request without a valid token is refused before its body
    # is read. It also writes the audit event of every write.
    app.add_middleware(Authenticate, required=settings.auth, prefix=API_PREFIX)
    # Outermost, so added last: Host, cross-site writes, CORS (cairn/server/perimeter.py).
    install_perimeter(app, settings, API_PREFIX)
    return app
