"""The one place errors become HTTP responses: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match

from cairn.core.errors import (
    AlreadyExists,
    CairnError,
    Conflict,
    CorruptObject,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QueryError,
    QuotaExceeded,
    RateLimited,
    SchemaOutOfDate,
    StorageFull,
    StoreBusy,
    StoreUnavailable,
    Unauthenticated,
)

__all__ = [
    "RETRY_AFTER_SECONDS",
    "STATUS",
    "ErrorBody",
    "ErrorOut",
    "HTTPError",
    "cairn_error_response",
    "codes_for",
    "describe_status",
    "error_response",
    "error_responses",
    "install_error_handlers",
]

log = logging.getLogger("cairn.server")

STATUS: dict[type[CairnError], int] = {
    InvalidArgument: 400,
    QueryError: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    RateLimited: 429,
    CorruptObject: 500,
    SchemaOutOfDate: 503,
    StoreUnavailable: 503,
    StoreBusy: 503,
    StorageFull: 507,
    QuotaExceeded: 507,
}
# Seconds a client should wait before trying again after a 503 of a store that is busy or
# could not be reached (sent as Retry-After; the HTTP client honours it until its deadline).
RETRY_AFTER_SECONDS = 1
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


class ErrorBody(BaseModel):
    code: str = Field(description="Stable code: the CairnError subclass, or the HTTP refusal")
    message: str = Field(description="What broke which rule, naming the field")
    details: dict[str, Any] = Field(description="Structured fields (e.g. field, kind, id)")


class ErrorOut(BaseModel):
    """Every failure, whatever its status, has this shape."""

    error: ErrorBody


class HTTPError(HTTPException):
    """A refusal at the HTTP level (not a domain error), with structured details."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(status, message)
        self.details = details


def codes_for(status: int) -> list[str]:
    """The error codes a status carries, read from the mappings above."""
    codes = [cls.code for cls, mapped in STATUS.items() if mapped == status]
    if status in _HTTP_CODES and _HTTP_CODES[status] not in codes:
        codes.append(_HTTP_CODES[status])
    return codes or ["internal"]


def describe_status(status: int | str) -> str:
    """One line for the OpenAPI document: which codes a status (or "5XX") carries."""
    if status == "5XX":
        codes = ["internal", *(cls.code for cls, mapped in STATUS.items() if mapped >= 500)]
    else:
        codes = codes_for(int(status))
    return "Error: " + ", ".join(f"`{code}`" for code in codes)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for these error statuses, in the one error shape."""
    return {s: {"model": ErrorOut, "description": describe_status(s)} for s in statuses}


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


def cairn_error_response(exc: CairnError) -> JSONResponse:
    """The answer to a domain error, wherever it is caught."""
    status = _status_of(exc)
    if status >= 500:
        log.error("request failed: %s", exc)
    response = error_response(status, exc.code, exc.message, exc.details)
    if isinstance(exc, StoreUnavailable):  # busy, or gone for now: worth another try
        response.headers["retry-after"] = str(RETRY_AFTER_SECONDS)
    elif isinstance(exc, Unauthenticated):  # RFC 6750: say which scheme is wanted
        response.headers["www-authenticate"] = 'Bearer realm="cairn"'
    elif isinstance(exc, RateLimited):
        response.headers["retry-after"] = str(exc.details.get("retry_after", 1))
    return response


async def _cairn_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CairnError)
    return cairn_error_response(exc)


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":  # loc is ("body", offset): say what and where
        reason = first.get("ctx", {}).get("error", "invalid")
        message = f"body: is not valid JSON ({reason} at offset {loc[-1] if loc else 0})"
        return error_response(400, "invalid_argument", message, {"field": "body"})
    content_type = request.headers.get("content-type")
    if (  # FastAPI did not read the body as JSON, and validated its bytes
        loc == ("body",)
        and first.get("type") == "model_attributes_type"
        and not _is_json(content_type or "")
    ):
        got = repr(content_type) if content_type else "no content-type header"
        message = f"content-type: must be application/json, got {got}"
        return error_response(400, "invalid_argument", message, {"field": "content-type"})
    where = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    field = ".".join(where) or "body"
    rule = str(first.get("msg", "is invalid"))
    return error_response(
        400, "invalid_argument", f"{field}: {rule}", {"field": field, "errors": len(errors)}
    )


_PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's 405 names only the first
    route's methods, though GET and POST of one path are often two routes)."""
    routes = request.app.router.routes
    return [
        method
        for method in _PROBED_METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "internal" if status >= 500 else "error")
    message = str(exc.detail)
    details = exc.details if isinstance(exc, HTTPError) else {}
    where = f"{request.method} {request.url.path}"
    allowed: list[str] = []
    if status == 404 and not details:  # raised by the router: no route has this path
        message, details = f"no route for {where}", {"method": request.method}
    elif status == 405:  # RFC 9110: a 405 lists the methods the resource has
        allowed = _allowed_methods(request)
        message = f"method {request.method} is not allowed here; allowed: {', '.join(allowed)}"
        details = {"method": request.method, "allowed": allowed}
    response = error_response(status, code, message, details)
    if exc.headers:
        response.headers.update(exc.headers)
    if status == 405:
        response.headers["allow"] = ", ".join(allowed)
    return response


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal", "internal server error", {})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CairnError, _cairn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
