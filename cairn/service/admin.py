"""Store administration: where a home's store is, whether it is whole, migrations, backups."""

from __future__ import annotations

import os
from pathlib import Path

from cairn.core.errors import NotFound, StoreUnavailable
from cairn.core.settings import Settings
from cairn.store.metadata import MetadataStore
from cairn.store.metadata.store import backup, current_revision, upgrade

__all__ = [
    "backup_store",
    "check_home",
    "objects_folder",
    "open_metadata",
    "schema_revision",
    "sqlite_file",
    "store_url",
    "upgrade_store",
]


def sqlite_file(settings: Settings) -> Path | None:
    """The embedded store's database file (``$CAIRN_HOME/cairn.db``), or None when
    ``store_uri`` names the store."""
    return None if settings.store_uri else Path(settings.home).resolve() / "cairn.db"


def objects_folder(settings: Settings) -> Path:
    return Path(settings.objects_uri or Path(settings.home) / "objects")


def store_url(settings: Settings, *, make_home: bool = True) -> str:
    """The metadata store URL: ``store_uri``, else SQLite in the home folder (made, unless
    ``make_home`` is False)."""
    if settings.store_uri:
        return settings.store_uri
    db = sqlite_file(settings)
    assert db is not None
    if make_home:
        db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{os.fspath(db)}"


def _holds_files(folder: Path) -> bool:
    """Whether any file lies under ``folder`` (stops at the first one found)."""
    pending = [folder]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    else:
                        return True
        except (FileNotFoundError, NotADirectoryError):
            continue
    return False


def _lost(what: str, settings: Settings) -> StoreUnavailable:
    objects = objects_folder(settings).resolve()
    home = settings.home
    return StoreUnavailable(
        f"{what}, but the objects folder {os.fspath(objects)!r} holds objects: this store's "
        "database was lost or moved, and Cairn will not start an empty one over its "
        "objects. Restore the database from a backup (`cairn db backup` makes one), or "
        "point --home / CAIRN_HOME (--store / CAIRN_STORE_URI) at where it is. To start a "
        f"new, empty store beside these objects on purpose: `cairn db upgrade --home {home}`"
        f"{' --store URL' if settings.store_uri else ''}",
        objects=os.fspath(objects),
    )


def check_home(settings: Settings) -> bool:
    """Whether the embedded SQLite store exists (False: nothing there yet, a first write
    may make it). A database file that is missing or empty (0 bytes) where the objects
    folder holds objects is an error naming the file: a new store there would silently
    hide every run the lost one had."""
    db = sqlite_file(settings)
    if db is None:
        return True
    try:
        size = db.stat().st_size
    except FileNotFoundError:
        size = None
    if size:
        return True
    if _holds_files(objects_folder(settings)) or Path(f"{db}-wal").exists():
        state = "is missing" if size is None else "is empty (0 bytes)"
        error = _lost(f"the store's database {os.fspath(db)!r} {state}", settings)
        error.details["path"] = os.fspath(db)
        raise error
    return False


def open_metadata(settings: Settings, *, create: bool = True) -> MetadataStore:
    """The metadata store of ``settings``, checked first (:func:`check_home`). ``create``:
    a home (or database) with no store yet gets a new one; else it is :class:`NotFound`.
    A database without Cairn tables beside an objects folder that holds objects is never
    made a new store (a PostgreSQL database emptied or replaced)."""
    exists = check_home(settings)
    if not exists and not create:
        raise NotFound(
            f"no Cairn store at {os.fspath(Path(settings.home).resolve())!r} yet (no "
            "cairn.db): a first write makes one, or `cairn db upgrade`",
            home=settings.home,
        )
    has_objects = settings.store_uri is not None and _holds_files(objects_folder(settings))
    try:
        return MetadataStore(
            store_url(settings),
            busy_timeout=settings.sqlite_busy_timeout,
            synchronous=settings.sqlite_synchronous,
            create=create and not has_objects,
        )
    except NotFound as exc:
        if not has_objects:
            raise
        what = f"the metadata store at {exc.details['url']} has no Cairn tables"
        raise _lost(what, settings) from exc


def upgrade_store(settings: Settings) -> str:
    """Migrate the metadata store to the current schema (a new store where there is none,
    even beside objects: the one explicit way to start over); returns its revision."""
    return upgrade(store_url(settings))


def schema_revision(settings: Settings) -> str | None:
    """The store's schema revision; None where there is no store (made nowhere)."""
    db = sqlite_file(settings)
    if db is not None and not db.is_file():
        return None
    return current_revision(store_url(settings, make_home=False))


def backup_store(settings: Settings, destination: str | Path) -> Path:
    """A consistent copy of the embedded SQLite store at ``destination`` (SQLite's online
    backup: writers may go on meanwhile). PostgreSQL has its own tools (``pg_dump``)."""
    if check_home(settings) is False:
        raise NotFound(
            f"no Cairn store at {os.fspath(Path(settings.home).resolve())!r} to back up",
            home=settings.home,
        )
    return backup(store_url(settings, make_home=False), Path(destination))
