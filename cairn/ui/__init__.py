"""The web UI: server-rendered pages (Jinja2, autoescaped) under ``/``, outside the OpenAPI
document, with a little progressive JavaScript. A face: it calls :mod:`cairn.service`,
never the store. Its dependencies are the ``ui`` extra; without them ``/`` says how to
install it (:func:`mount`).

Layout: ``mount.py`` builds the routes (pages, static files, the API docs page);
``pages/<name>.py`` each hold a ``router`` of page handlers (found by name, so adding a page
is adding a module); ``render.py`` the template environment, the CSP header and the thread
hop every service call takes; ``templates/`` and ``static/`` ship inside the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["INSTALL_HINT", "mount", "ui_available"]

INSTALL_HINT = "pip install 'cairn[ui]'"
_NEEDED = ("jinja2", "markdown_it", "nh3", "plotly")


def ui_available() -> list[str]:
    """The modules of the ``ui`` extra that are missing (empty: the UI can run)."""
    import importlib.util

    return [name for name in _NEEDED if importlib.util.find_spec(name) is None]


def mount(app: FastAPI) -> None:
    """Add the UI's routes to ``app`` (none of them in its OpenAPI document), and the API
    docs page (Swagger UI served from a package, never a CDN)."""
    from cairn.ui import apidocs

    apidocs.install(app)
    missing = ui_available()
    if missing:
        from cairn.ui.missing import install_placeholder

        install_placeholder(app, missing)
        return
    from cairn.ui.mount import install

    install(app)
