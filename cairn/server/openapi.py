"""The OpenAPI document: what FastAPI derives from the routes, finished in one place.

FastAPI documents a 422 with its own validation-error shape for every route that takes
input; this server answers those with 400 in the one error shape, so the 422 goes. Errors
that do not depend on the route are documented here from the shape of each operation:
any input can be invalid (400), any body can be too large (413, outside ``exempt``), any
operation can meet an internal or store failure (5XX), any write can come from another web
page (403); a write with no body still says its type. Errors that depend on the route
(404, 409) are declared by the route. Schemas used only by hand-written request bodies
(``openapi_extra``) are added to the components.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from cairn.server.errors import ErrorOut, describe_status

__all__ = ["CairnAPI"]

_REF: Final = "#/components/schemas/{model}"
_METHODS: Final = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_WRITES: Final = frozenset({"put", "post", "patch", "delete"})


class CairnAPI(FastAPI):
    """FastAPI, with its OpenAPI document finished as described above."""

    def __init__(
        self,
        *,
        exempt: tuple[str, ...] = (),
        extra_models: Sequence[type[BaseModel]] = (),
        auth: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._exempt = exempt
        self._auth = auth
        self._extra_models: tuple[type[BaseModel], ...] = (ErrorOut, *extra_models)
        self._finished: dict[str, Any] | None = None

    def openapi(self) -> dict[str, Any]:
        document = super().openapi()  # cached by FastAPI until the routes change
        if document is not self._finished:
            finish(document, exempt=self._exempt, extra_models=self._extra_models, auth=self._auth)
            self._finished = document
        return document


def _error(status: int | str) -> dict[str, Any]:
    return {
        "description": describe_status(status),
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorOut")}}},
    }


def finish(
    document: dict[str, Any],
    *,
    exempt: tuple[str, ...] = (),
    extra_models: Sequence[type[BaseModel]] = (ErrorOut,),
    auth: bool = False,
) -> None:
    """Finish ``document`` in place (idempotent). ``auth``: every operation but the health
    check needs a bearer token, and may answer 401."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if extra_models:
        _, defs = models_json_schema([(m, "validation") for m in extra_models], ref_template=_REF)
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
    _exact_int64_bounds(document)
    if auth:
        document["components"].setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (`cairn tokens create`)",
        }
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            for parameter in operation.get("parameters", ()):
                _drop_null(parameter)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses: list[int | str] = []
            if auth and not path.endswith(("/health", "/auth/login")):  # open to all
                operation.setdefault("security", [{"bearer": []}])
                statuses.append(401)
            if method in _WRITES:
                if method != "delete":
                    operation.setdefault("requestBody", _no_body())
                statuses.append(403)  # a write from another web page (perimeter.py)
            if operation.get("parameters") or "requestBody" in operation:
                statuses.append(400)
            if "requestBody" in operation and not path.startswith(exempt):
                statuses.append(413)
            statuses.append("5XX")
            for status in statuses:
                responses.setdefault(str(status), _error(status))


def _no_body() -> dict[str, Any]:
    """A write that reads no body still needs a content type no web page can send unasked."""
    return {
        "required": True,
        "description": "None is read: send `{}` or nothing, as `application/json`",
        "content": {"application/json": {"schema": {}}},
    }


def _drop_null(parameter: dict[str, Any]) -> None:
    """An optional ``str | None`` parameter is None when absent: null cannot be spelled in
    a path, a query or a header, so the document does not offer it."""
    schema = parameter.get("schema", {})
    variants = schema.get("anyOf")
    if parameter.get("required") or not variants:
        return
    kept = [v for v in variants if v != {"type": "null"}]
    if len(kept) == 1:
        del schema["anyOf"]
        schema.update({**kept[0], **schema})
    elif len(kept) < len(variants):
        schema["anyOf"] = kept


def _exact_int64_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model holds bounds as floats, and float(2**63 - 1) is 2**63: give
    int64 schemas back their exact bounds."""
    if isinstance(node, dict):
        if node.get("format") == "int64":
            for key, exact in (("minimum", -(2**63)), ("maximum", 2**63 - 1)):
                if key in node and float(node[key]) == float(exact):
                    node[key] = exact
        for value in node.values():
            _exact_int64_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_int64_bounds(value)
