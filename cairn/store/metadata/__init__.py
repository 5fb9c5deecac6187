"""Metadata tables behind SQLAlchemy: SQLite (embedded default) and PostgreSQL."""

from cairn.store.metadata.store import HEAD_REVISION, MetadataStore, upgrade

__all__ = ["HEAD_REVISION", "MetadataStore", "upgrade"]
