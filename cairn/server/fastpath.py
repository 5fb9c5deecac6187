"""A sweep's hot routes, answered ahead of FastAPI's routing.

A sweep makes, for every run, one create_run, one log_hyperparameters and one end_run (with
the run's last metric points). FastAPI's own machinery (matching the path through the
included routers, solving the dependencies, validating the body, serializing the answer)
cost about 0.3 ms of CPU per create_run, three times the service call, and about 0.6 ms of a
real server's time per log_hyperparameters or end_run. :class:`FastRoutes`, ASGI middleware
inside the app's own middleware (so the body limit, the error handling of last resort and the
access log still apply), answers the usual request to the routes of :data:`ROUTES` itself:

- ``POST {prefix}/experiments/{id}/runs`` (create_run),
- ``POST {prefix}/runs/{id}/hyperparameters`` (log_hyperparameters),
- ``PATCH {prefix}/runs/{id}`` (end_run, with its ``Idempotency-Key`` header).

It reads the request as FastAPI does: the id as the route's path type checks it
(:func:`check_entity_id`), the body with ``json.loads`` and then the route's model, the
``Idempotency-Key`` header (where the route reads it) by the rule of
:data:`IdempotencyKeyHeader` (one string of at most 128 characters). Then it calls the
route's own function, so the two cannot drift, and sends what the route sends: a domain
error gets the one error shape (:func:`cairn_error_response`). The call runs on a worker
thread of the fast path's executor, as the route's would on FastAPI's: the event loop never
waits on the database.

Everything else goes on to FastAPI, with the body already read handed on: another path or
method, a ``root_path``, a body that is not ``application/json``, a request the route's
validation would refuse, or anything in doubt. So every refusal is FastAPI's own, and the
routes, which the OpenAPI document describes, stay the reference.
tests/server/test_fastpath.py checks that both give the same answers.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.core.errors import CairnError
from cairn.core.validation import check_entity_id
from cairn.server.errors import cairn_error_response
from cairn.server.routes.entities import create_run, end_run
from cairn.server.routes.labels import log_hyperparameters
from cairn.server.schemas import CreateRunIn, EndRunIn, HyperparametersIn
from cairn.service import TrackingService

__all__ = ["ROUTES", "FastRoutes", "HotRoute"]

# The route's call: (path id, body, service, Idempotency-Key) -> what the route answers.
Call = Callable[[str, Any, TrackingService, str | None], Response]


@dataclass(frozen=True)
class HotRoute:
    method: str
    path: str  # a regex, after the prefix; its one group is the path id
    id_name: str  # the path parameter, as the route names it in errors
    body: type[BaseModel]  # the route's body model
    call: Call  # made on a worker thread
    idempotency_key: bool = False  # the route reads the Idempotency-Key header


def _log_hyperparameters(
    run_id: str, body: HyperparametersIn, service: TrackingService, key: str | None
) -> Response:
    log_hyperparameters(run_id, body, service)
    # What FastAPI sends for a status_code=204 route that returns None: its JSON response
    # class's content type, no content-length, no body.
    return Response(status_code=204, media_type="application/json")


ROUTES: tuple[HotRoute, ...] = (
    HotRoute(
        "POST",
        r"/experiments/([^/]+)/runs",
        "experiment_id",
        CreateRunIn,
        lambda experiment_id, body, service, key: create_run(experiment_id, body, service),
    ),
    HotRoute(
        "POST",
        r"/runs/([^/]+)/hyperparameters",
        "run_id",
        HyperparametersIn,
        _log_hyperparameters,
    ),
    HotRoute(
        "PATCH",
        r"/runs/([^/]+)",
        "run_id",
        EndRunIn,
        end_run,
        idempotency_key=True,
    ),
)

_MAX_IDEMPOTENCY_KEY = 128  # IdempotencyKeyHeader's max_length


class FastRoutes:
    def __init__(self, app: ASGIApp, prefix: str, executor: Executor) -> None:
        self.app = app
        self._routes = [(route, re.compile(re.escape(prefix) + route.path)) for route in ROUTES]
        self._executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and not scope.get("root_path"):
            for route, pattern in self._routes:
                if scope["method"] == route.method:
                    match = pattern.fullmatch(scope["path"])
                    if match is not None:
                        found = route, match[1]
                        break
        if found is None or not _is_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        route, path_id = found
        read: list[Message] = []
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        parsed = _parse(route, path_id, read, scope["headers"])
        if parsed is None:
            await self.app(scope, _replay(read, receive), send)
            return
        body, key = parsed
        service: TrackingService = scope["app"].state.service
        loop = asyncio.get_running_loop()
        try:
            # On a worker thread of its own: the event loop never waits on the database,
            # and a call waiting on a lock holds no thread that object transfers need. An
            # executor hop cost about 0.06 ms less CPU a request than anyio's (Starlette's
            # run_in_threadpool) in benchmarks/create_run_server.py.
            # With the request's context (its principal): an executor does not carry it.
            context = contextvars.copy_context()
            response = await loop.run_in_executor(
                self._executor, context.run, route.call, path_id, body, service, key
            )
        except CairnError as exc:
            response = cairn_error_response(exc)
        await response(scope, receive, send)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


def _parse(
    route: HotRoute, path_id: str, read: list[Message], headers: list[tuple[bytes, bytes]]
) -> tuple[BaseModel, str | None] | None:
    """The body and the Idempotency-Key the route would be called with, or None if it
    would not be (or if in doubt)."""
    if read[-1]["type"] != "http.request":  # the client left half-way
        return None
    key = None
    if route.idempotency_key:
        keys = [value for name, value in headers if name == b"idempotency-key"]
        if len(keys) > 1:  # FastAPI would take the first: let it
            return None
        if keys:
            key = keys[0].decode("latin-1")  # as Starlette decodes header values
            if len(key) > _MAX_IDEMPOTENCY_KEY:
                return None
    try:
        check_entity_id(path_id, route.id_name)
        # As FastAPI reads a JSON body: any failure here is the route's to explain.
        body = route.body.model_validate(json.loads(b"".join(m.get("body", b"") for m in read)))
    except Exception:
        return None
    return body, key


def _replay(read: list[Message], receive: Receive) -> Receive:
    """``receive`` as if nothing had been read from it yet."""
    pending = list(read)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
