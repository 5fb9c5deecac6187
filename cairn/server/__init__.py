"""The Cairn REST server (FastAPI). Needs the server extra: pip install 'cairn[server]'."""

from cairn.server.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
