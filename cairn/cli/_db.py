"""``cairn db upgrade|current``: metadata store administration, without a server."""

from __future__ import annotations

import os

import typer

from cairn.cli._common import HomeOption, StoreOption, group

__all__ = ["db"]

db = group("Metadata store administration (schema migrations).")


@db.command("upgrade")
def upgrade(home: HomeOption = None, store: StoreOption = None) -> None:
    """Migrate the metadata store to this Cairn's schema (a new store is created)."""
    from cairn.core.settings import settings_from
    from cairn.service.admin import upgrade_store

    settings = settings_from(os.environ, home=home, store_uri=store)
    typer.echo(f"schema at revision {upgrade_store(settings)}")


@db.command("current")
def current(home: HomeOption = None, store: StoreOption = None) -> None:
    """Print the metadata store's schema revision ("no schema" for an empty store)."""
    from cairn.core.settings import settings_from
    from cairn.service.admin import schema_revision

    settings = settings_from(os.environ, home=home, store_uri=store)
    typer.echo(schema_revision(settings) or "no schema")
