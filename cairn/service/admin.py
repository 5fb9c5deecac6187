"""Store administration: schema migrations."""

from __future__ import annotations

import os
from pathlib import Path

from cairn.core.settings import Settings
from cairn.store.metadata.store import current_revision, upgrade

__all__ = ["schema_revision", "store_url", "upgrade_store"]


def store_url(settings: Settings) -> str:
    """The metadata store URL: ``store_uri``, else SQLite in the home folder."""
    if settings.store_uri:
        return settings.store_uri
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{os.fspath(home.resolve() / 'cairn.db')}"


def upgrade_store(settings: Settings) -> str:
    """Migrate the metadata store to the current schema; returns its revision."""
    return upgrade(store_url(settings))


def schema_revision(settings: Settings) -> str | None:
    return current_revision(store_url(settings))
