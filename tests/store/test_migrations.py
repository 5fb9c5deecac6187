"""The Alembic migrations and the schema check on open."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

import cairn.store.metadata.store as store_module
from cairn.core.errors import SchemaOutOfDate
from cairn.store.metadata import MetadataStore, upgrade
from cairn.store.metadata.schema import metadata

MIGRATIONS = Path(store_module.__file__).with_name("migrations")


def test_revision_chain_matches_alembic_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    chain = [s.revision for s in scripts.walk_revisions("base", "heads")]
    assert tuple(reversed(chain)) == store_module.REVISIONS
    assert scripts.get_current_head() == store_module.HEAD_REVISION


def test_migrations_build_exactly_the_declared_schema(store_url: str) -> None:
    assert upgrade(store_url) == store_module.HEAD_REVISION
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []
    MetadataStore(store_url).close()  # and the store opens on it


def test_new_store_is_created_at_head(store_url: str) -> None:
    MetadataStore(store_url).close()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert version == store_module.HEAD_REVISION
    assert diff == []


def _set_revision(url: str, revision: str | None) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        if revision is None:
            conn.execute(text("DROP TABLE alembic_version"))
        else:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    engine.dispose()


def test_older_store_asks_for_upgrade_then_upgrades(store_url: str) -> None:
    assert upgrade(store_url, "0001") == "0001"  # a store as the first release left it
    with pytest.raises(SchemaOutOfDate, match=r"python -m cairn db upgrade") as err:
        MetadataStore(store_url)
    assert err.value.details == {"revision": "0001", "expected": store_module.HEAD_REVISION}
    assert upgrade(store_url) == store_module.HEAD_REVISION
    MetadataStore(store_url).close()


def test_unknown_revision_is_refused(store_url: str) -> None:
    MetadataStore(store_url).close()
    _set_revision(store_url, "9999")
    with pytest.raises(SchemaOutOfDate, match="newer Cairn"):
        MetadataStore(store_url)


def test_tables_without_version_are_refused(store_url: str) -> None:
    MetadataStore(store_url).close()
    _set_revision(store_url, None)
    with pytest.raises(SchemaOutOfDate, match="no schema version"):
        MetadataStore(store_url)


def test_two_stores_open_one_new_database_at_once(store_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: MetadataStore(store_url), range(4)))
    for store in stores:
        store.close()
