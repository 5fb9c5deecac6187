"""``cairn db upgrade|current|backup``: metadata store administration, without a server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cairn.cli._common import HomeOption, StoreOption, group

__all__ = ["db"]

db = group("Metadata store administration (schema migrations, backups).")


@db.command("upgrade")
def upgrade(home: HomeOption = None, store: StoreOption = None) -> None:
    """Migrate the metadata store to this Cairn's schema (where there is none, a new store
    is created: even beside the objects of a store whose database was lost)."""
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


@db.command("backup")
def backup(
    destination: Annotated[
        Path, typer.Argument(metavar="DEST", help="The backup's file; must not exist yet.")
    ],
    home: HomeOption = None,
    store: StoreOption = None,
) -> None:
    """Copy the SQLite store's database to DEST, consistent while writers go on (SQLite's
    online backup). Copy the objects folder after it. PostgreSQL: use pg_dump."""
    from cairn.core.settings import settings_from
    from cairn.service.admin import backup_store

    settings = settings_from(os.environ, home=home, store_uri=store)
    made = backup_store(settings, destination)
    typer.echo(f"backed up to {made} ({made.stat().st_size} bytes)")
