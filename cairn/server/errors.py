"""The one place errors become HTTP responses: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from cairn.core.errors import (
    AlreadyExists,
    CairnError,
    Conflict,
    CorruptObject,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SchemaOutOfDate,
    StoreUnavailable,
    Unauthenticated,
)

__all__ = ["STATUS", "error_response", "install_error_handlers"]

log = logging.getLogger("cairn.server")

STATUS: dict[type[CairnError], int] = {
    InvalidArgument: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    CorruptObject: 500,
    SchemaOutOfDate: 503,
    StoreUnavailable: 503,
}
_HTTP_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _safe(value: Any) -> Any:
    """Details must survive JSON: anything else becomes its repr."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


def error_response(status: int, code: str, message: str, details: dict[str, Any]) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": {k: _safe(v) for k, v in details.items()},
        }
    }
    return JSONResponse(body, status_code=status)


def _status_of(error: CairnError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _cairn_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CairnError)
    status = _status_of(exc)
    if status >= 500:
        log.error("request failed: %s", exc)
    return error_response(status, exc.code, exc.message, exc.details)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(where) or "body"
    rule = str(first.get("msg", "is invalid"))
    return error_response(
        400, "invalid_argument", f"{field}: {rule}", {"field": field, "errors": len(exc.errors())}
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "internal" if exc.status_code >= 500 else "error")
    return error_response(exc.status_code, code, str(exc.detail), {})


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal", "internal server error", {})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CairnError, _cairn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
