"""Alembic environment: runs on the connection Cairn hands it (see store.upgrade)."""

from __future__ import annotations

from alembic import context

from cairn.store.metadata.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
)
with context.begin_transaction():
    context.run_migrations()
