"""search: exact integer copies of hyperparameters, typed copies of attributes, indexes

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cairn.store.metadata.scalars import attribute_copies
from cairn.store.metadata.schema import HYPERPARAMETER_STATISTICS

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hyperparameters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_int", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE hyperparameters SET value_int = CAST(value_text AS BIGINT) WHERE kind = 'int'"
    )
    with op.batch_alter_table("attributes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=8), nullable=False, server_default="other")
        )
        batch_op.add_column(sa.Column("value_num", sa.Float(precision=53), nullable=True))
        batch_op.add_column(sa.Column("value_text", sa.Text(), nullable=True))
    conn = op.get_bind()
    table = sa.table(
        "attributes",
        sa.column("entity_id"),
        sa.column("key"),
        sa.column("value_json"),
        sa.column("kind"),
        sa.column("value_num"),
        sa.column("value_text"),
    )
    rows = conn.execute(sa.select(table.c.entity_id, table.c.key, table.c.value_json)).all()
    updates = []
    for entity_id, key, value_json in rows:
        kind, num, text = attribute_copies(value_json)
        updates.append({"e": entity_id, "k": key, "kind": kind, "num": num, "text": text})
    if updates:
        conn.execute(
            sa.update(table)
            .where(table.c.entity_id == sa.bindparam("e"), table.c.key == sa.bindparam("k"))
            .values(
                kind=sa.bindparam("kind"),
                value_num=sa.bindparam("num"),
                value_text=sa.bindparam("text"),
            ),
            updates,
        )
    op.create_index(
        "ix_metric_series_key_last_value_run_id", "metric_series", ["key", "last_value", "run_id"]
    )
    op.create_index("ix_runs_experiment_id_id", "runs", ["experiment_id", "id"])
    if conn.dialect.name == "postgresql":
        op.execute(HYPERPARAMETER_STATISTICS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_hyperparameters_key_value")
    op.drop_index("ix_runs_experiment_id_id", table_name="runs")
    op.drop_index("ix_metric_series_key_last_value_run_id", table_name="metric_series")
    with op.batch_alter_table("attributes", schema=None) as batch_op:
        batch_op.drop_column("value_text")
        batch_op.drop_column("value_num")
        batch_op.drop_column("kind")
    with op.batch_alter_table("hyperparameters", schema=None) as batch_op:
        batch_op.drop_column("value_int")
