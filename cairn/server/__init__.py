"""The Cairn REST server (FastAPI). Needs the server extra: pip install 'cairn[server]'.

Loaded lazily, so the CLI and uvicorn's worker processes pay for FastAPI only once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.server.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cairn.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'cairn.server' has no attribute {name!r}")
