"""versioning: repositories, versioned objects, commits, refs, run links and captures

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_repositories_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repositories")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_repositories_project_id_name")),
    )
    op.create_table(
        "version_objects",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_version_objects")),
    )
    op.create_table(
        "commits",
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("parents", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=256), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_commits_repository_id_repositories"),
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", name=op.f("pk_commits")),
    )
    op.create_table(
        "refs",
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], name=op.f("fk_refs_repository_id_repositories")
        ),
        sa.PrimaryKeyConstraint("repository_id", "kind", "name", name=op.f("pk_refs")),
    )
    op.create_table(
        "run_commits",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=False),
        sa.Column("key_paths", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_run_commits_repository_id_repositories"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_commits_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_commits")),
    )
    with op.batch_alter_table("run_commits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_commits_repository_id_commit"),
            ["repository_id", "commit"],
            unique=False,
        )
    op.create_table(
        "run_captures",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_captures_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "path", name=op.f("pk_run_captures")),
    )


def downgrade() -> None:
    op.drop_table("run_captures")
    with op.batch_alter_table("run_commits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_commits_repository_id_commit"))
    op.drop_table("run_commits")
    op.drop_table("refs")
    op.drop_table("commits")
    op.drop_table("version_objects")
    op.drop_table("repositories")
