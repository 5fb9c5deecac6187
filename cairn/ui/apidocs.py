"""The API docs page at ``/api/v1/docs``, offline: Swagger UI's files come from the
``swagger-ui-bundle-v2`` package (the ``ui`` extra; import name ``swagger_ui_bundle``),
never from a CDN.
Without that package (or with the old ``swagger-ui-bundle``, whose Swagger UI 4 cannot read
OpenAPI 3.1), the page lists every operation, rendered here from the OpenAPI document, and
says how to get the interactive one. Plain strings only: this works without the ui extra.
"""

from __future__ import annotations

import html
import importlib
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import FileResponse, HTMLResponse, Response

from cairn.core.api import API_PREFIX

__all__ = ["DOCS_URL", "install", "swagger_files"]

DOCS_URL = f"{API_PREFIX}/docs"
_FILES = ("swagger-ui.css", "swagger-ui-bundle.js")
_INIT_JS = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{API_PREFIX}/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  }});
}});
"""
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {"content-security-policy": _CSP, "x-content-type-options": "nosniff"}
_HINT = "pip install 'cairn[ui]'"  # brings swagger-ui-bundle-v2


def swagger_files() -> Path | None:
    """The folder of Swagger UI 5's dist files, or None when no package ships them."""
    try:  # by name: mypy must not need the package (it is optional)
        bundle = importlib.import_module("swagger_ui_bundle")
    except ImportError:
        return None
    folder = Path(str(getattr(bundle, "swagger_ui_path", "")))
    if not folder.name.startswith("swagger-ui-") or folder.name < "swagger-ui-5":
        return None  # Swagger UI 4 shows OpenAPI 3.1 documents as an error
    if not all((folder / name).is_file() for name in _FILES):
        return None
    return folder


def _page(head: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>Cairn API</title>{head}</head>'
        f"<body>{body}</body></html>"
    )


def _swagger_page() -> str:
    head = f'<link rel="stylesheet" href="{DOCS_URL}/files/swagger-ui.css">'
    body = (
        '<div id="swagger-ui"></div>'
        f'<script src="{DOCS_URL}/files/swagger-ui-bundle.js"></script>'
        f'<script src="{DOCS_URL}/init.js"></script>'
    )
    return _page(head, body)


def _listing(document: dict[str, Any]) -> str:
    """Every operation with its summary and parameters: readable with no script at all."""
    e = html.escape
    rows = []
    for path, item in document.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            params = ", ".join(e(str(p.get("name", ""))) for p in op.get("parameters", ()))
            rows.append(
                f"<tr><td><code>{e(method.upper())}</code></td><td><code>{e(path)}</code></td>"
                f"<td>{e(str(op.get('summary', '')))}</td><td>{params}</td></tr>"
            )
    style = (
        "<style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;"
        "padding:0 1rem;color:#1f2933}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #e4e7eb;padding:.35rem .5rem;text-align:left;"
        "vertical-align:top}code{font-size:13px}</style>"
    )
    body = (
        f"<h1>{e(str(document.get('info', {}).get('title', 'API')))} REST API</h1>"
        f'<p>The machine-readable document: <a href="{API_PREFIX}/openapi.json">'
        f"{API_PREFIX}/openapi.json</a>. The interactive page (Swagger UI, served from a "
        f"package, offline) needs <code>{e(_HINT)}</code> on the server.</p>"
        "<table><thead><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _page(style, body)


def install(app: FastAPI) -> None:
    """Serve the docs page (the app is built with ``docs_url=None``)."""
    folder = swagger_files()

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        text = _swagger_page() if folder is not None else _listing(app.openapi())
        return HTMLResponse(text, headers=_HEADERS)

    @app.get(f"{DOCS_URL}/init.js", include_in_schema=False)
    async def docs_init() -> Response:
        return Response(_INIT_JS, media_type="text/javascript", headers=_HEADERS)

    if folder is None:
        return

    @app.get(DOCS_URL + "/files/{name}", include_in_schema=False)
    async def docs_file(name: str) -> Response:
        if name not in _FILES:
            return Response("not found", status_code=404, media_type="text/plain")
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(folder / name, media_type=kind, headers=_HEADERS)
