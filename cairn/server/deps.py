"""Request-scoped access to the service the app was built with."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import JSONResponse

from cairn.service import TrackingService

__all__ = ["JSON", "Service", "get_service"]


async def get_service(request: Request) -> TrackingService:
    # async: FastAPI runs a plain def dependency in its thread pool on every request.
    service: TrackingService = request.app.state.service
    return service


Service = Annotated[TrackingService, Depends(get_service)]


class JSON(JSONResponse):
    """JSON that keeps NaN and infinities (as Python's json writes them), which
    metric values and attributes may hold."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
