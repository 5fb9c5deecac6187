"""What ``/`` says when the ``ui`` extra is not installed: how to install it. Plain
strings only (this module must import without the extra)."""

from __future__ import annotations

import html

from fastapi import FastAPI
from starlette.responses import HTMLResponse

from cairn.core.api import API_PREFIX

__all__ = ["install_placeholder"]


def install_placeholder(app: FastAPI, missing: list[str]) -> None:
    text = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<link rel="icon" href="data:,"><title>Cairn</title></head><body>'
        "<h1>Cairn</h1><p>The web UI needs the <code>ui</code> extra, which is not installed "
        f"(missing: {html.escape(', '.join(missing))}). Install it with:</p>"
        "<pre>pip install 'cairn[ui]'</pre><p>then restart <code>cairn server</code>. "
        f'The REST API works without it: <a href="{API_PREFIX}/docs">{API_PREFIX}/docs</a>.'
        "</p></body></html>"
    )

    @app.get("/", include_in_schema=False)
    async def placeholder() -> HTMLResponse:
        return HTMLResponse(text, status_code=503, headers={"cache-control": "no-store"})
