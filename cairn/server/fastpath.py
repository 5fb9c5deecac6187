"""create_run, the server's hottest route, answered ahead of FastAPI's routing.

A sweep starts runs by the thousand. For one create_run FastAPI spent about 0.3 ms of CPU
on its own machinery (matching the path through the included routers, solving the
dependencies, validating the body) against about 0.1 ms for creating the run.
:class:`FastCreateRun`, ASGI middleware inside the app's own middleware (so the body
limit, the error handling of last resort and the access log still apply), answers the
usual request itself: ``POST {prefix}/experiments/{id}/runs`` with a JSON body that the
route would take. It reads the body as FastAPI does (``json.loads``, then
:class:`CreateRunIn`), makes the route's one service call (:func:`create_or_get_run`) and
sends what the route sends (:func:`run_response`); a domain error gets the one error
shape (:func:`cairn_error_response`). The service call runs on a worker thread, as the
route's would: the event loop never waits on the database.

Everything else goes on to FastAPI, with the body already read handed on: another path or
method, a ``root_path``, a body that is not ``application/json`` or that the route's
validation would refuse. So every refusal is FastAPI's own, and the route, which the
OpenAPI document describes, stays the reference. tests/server/test_fastpath.py checks
that both give the same answers.
"""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import Executor

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.core.errors import CairnError
from cairn.core.validation import check_entity_id
from cairn.server.errors import cairn_error_response
from cairn.server.routes.entities import create_or_get_run, run_response
from cairn.server.schemas import CreateRunIn
from cairn.service import TrackingService

__all__ = ["FastCreateRun"]


class FastCreateRun:
    def __init__(self, app: ASGIApp, prefix: str, executor: Executor) -> None:
        self.app = app
        self._path = re.compile(rf"{re.escape(prefix)}/experiments/([^/]+)/runs")
        self._executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            self._path.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path")
            else None
        )
        if match is None or not _is_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        parsed = _parse(match[1], read)
        if parsed is None:
            await self.app(scope, _replay(read, receive), send)
            return
        service: TrackingService = scope["app"].state.service
        loop = asyncio.get_running_loop()
        try:
            # On a worker thread of its own: the event loop never waits on the database,
            # and a create_run waiting on a lock holds no thread that object transfers
            # need. An executor hop cost about 0.06 ms less CPU a request than anyio's
            # (Starlette's run_in_threadpool) in benchmarks/create_run_server.py.
            run = await loop.run_in_executor(self._executor, create_or_get_run, service, *parsed)
            response = run_response(run)
        except CairnError as exc:
            response = cairn_error_response(exc)
        await response(scope, receive, send)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


def _parse(experiment_id: str, read: list[Message]) -> tuple[str, CreateRunIn] | None:
    """What the route would be called with, or None if it would not be (or if in doubt)."""
    if read[-1]["type"] != "http.request":  # the client left half-way
        return None
    try:
        check_entity_id(experiment_id, "experiment_id")
        # As FastAPI reads a JSON body: any failure here is the route's to explain.
        body = CreateRunIn.model_validate(json.loads(b"".join(m.get("body", b"") for m in read)))
    except Exception:
        return None
    return experiment_id, body


def _replay(read: list[Message], receive: Receive) -> Receive:
    """``receive`` as if nothing had been read from it yet."""
    pending = list(read)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed
