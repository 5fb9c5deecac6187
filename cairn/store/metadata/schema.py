"""The metadata tables (SQLAlchemy Core). Changes go through a migration.

Times are integer milliseconds since the Unix epoch. Ids are UUIDv7 strings,
unique across all entity kinds, so tags, attributes and artifacts hang off
any entity through one ``entity_id`` column.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Connection

__all__ = [
    "HYPERPARAMETER_STATISTICS",
    "artifacts",
    "attributes",
    "audit_events",
    "commits",
    "experiments",
    "hyperparameters",
    "idempotency_keys",
    "metadata",
    "metric_chunks",
    "metric_series",
    "project_roles",
    "project_storage",
    "projects",
    "refs",
    "repositories",
    "run_captures",
    "run_commits",
    "runs",
    "tags",
    "tokens",
    "users",
    "version_objects",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(36)
NAME = String(256)

projects = Table(
    "projects",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("owner", NAME, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("owner", NAME, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    UniqueConstraint("project_id", "name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("owner", NAME, nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("parent_id", ID, ForeignKey("runs.id"), nullable=True, index=True),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    # Last sign of life of a running run's process; older than the heartbeat timeout,
    # the run reads as crashed.
    Column("heartbeat_at", BigInteger, nullable=True),
    UniqueConstraint("experiment_id", "name"),
    # An experiment's runs, newest first (ids are UUIDv7: time-ordered), page by page.
    Index(None, "experiment_id", "id"),
)

hyperparameters = Table(
    "hyperparameters",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", NAME, primary_key=True),
    # "int" | "float" | "str" | "bool": the value comes back with its own type.
    Column("kind", String(8), nullable=False),
    Column("value_text", Text, nullable=False),
    # Numeric copy for search; NULL for strings, booleans and non-finite floats.
    Column("value_num", Float(53), nullable=True),
    # Exact copy of an int for search (value_num rounds above 2**53); NULL otherwise.
    Column("value_int", BigInteger, nullable=True),
)

# PostgreSQL plans a search by how many rows each comparison keeps, and multiplies the
# estimates of `key = 'model'` and `value_text = 'tree'` as if they were independent (379
# rows estimated, 24,800 found at 100,000 runs): it then read the whole table instead of
# walking the metric index down (96 ms against 3). Statistics over the columns together
# tell it what the pairs are.
HYPERPARAMETER_STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS st_hyperparameters_key_value (mcv) "
    "ON key, kind, value_text FROM hyperparameters"
)


@event.listens_for(hyperparameters, "after_create")
def _hyperparameter_statistics(_table: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(HYPERPARAMETER_STATISTICS)


metric_series = Table(
    "metric_series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("key", NAME, nullable=False),
    # The latest point (highest step, then latest timestamp), ready for search.
    # NULL stands for NaN in last_value: SQLite turns a bound NaN into NULL.
    Column("last_step", BigInteger, nullable=False),
    Column("last_timestamp", BigInteger, nullable=False),
    Column("last_value", Float(53), nullable=True),
    UniqueConstraint("run_id", "key"),
    # Search: `metrics.K > x` and ordering by a metric walk this index; with run_id in it,
    # joining a run from it reads no table row.
    Index(None, "key", "last_value", "run_id"),
)

# Points are stored in chunks: per series, parallel little-endian arrays of steps
# (int64), timestamps (int64 ms) and values (float64, NaN and infinities as is).
# A batch appends one chunk per series (small ones merge into the tail chunk), so
# logging and reading a million points are a few rows, not a million.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("series_id", Integer, ForeignKey("metric_series.id"), nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("first_timestamp", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("last_timestamp", BigInteger, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
    Index(None, "series_id", "id"),
)

tags = Table(
    "tags",
    metadata,
    Column("entity_id", ID, primary_key=True),
    Column("tag", NAME, primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "tag"),
)

attributes = Table(
    "attributes",
    metadata,
    Column("entity_id", ID, primary_key=True),
    Column("key", NAME, primary_key=True),
    Column("value_json", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Typed copies of a scalar value for search, so no query parses JSON:
    # "number" | "string" | "bool" | "null" | "other" (lists, objects, NaN, infinities).
    Column("kind", String(8), nullable=False, server_default="other"),
    Column("value_num", Float(53), nullable=True),  # a number
    Column("value_text", Text, nullable=True),  # a string, or "true"/"false"
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("entity_id", ID, primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("kind", String(8), nullable=False),  # "file" | "tree"
    Column("digest", String(64), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Keys of applied write batches: a batch retried with the same key is applied once.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("created_at", BigInteger, nullable=False, index=True),
)


# -- versioning ---------------------------------------------------------------------------
repositories = Table(
    "repositories",
    metadata,
    Column("id", ID, primary_key=True),  # an entity id: tags, attributes, artifacts
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("owner", NAME, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)

# Blobs and tree nodes by content id, shared by every repository: kind, and the canonical
# bytes behind one byte that says how they are kept (as they are, or zlib-compressed).
version_objects = Table(
    "version_objects",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
)

# Commits of a repository; the id is the digest of (root, parents, message, author, time).
commits = Table(
    "commits",
    metadata,
    Column("repository_id", ID, ForeignKey("repositories.id"), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("root", String(64), nullable=False),
    Column("parents", Text, nullable=False),  # JSON list of digests, first parent first
    Column("message", Text, nullable=False),
    Column("author", NAME, nullable=False),
    Column("time", BigInteger, nullable=False),
)

# Branches move (by compare-and-swap), tags never do.
refs = Table(
    "refs",
    metadata,
    Column("repository_id", ID, ForeignKey("repositories.id"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "branch" | "tag"
    Column("name", NAME, primary_key=True),
    Column("commit", String(64), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# The commit each run was built from, and which path was which ingredient.
run_commits = Table(
    "run_commits",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("repository_id", ID, ForeignKey("repositories.id"), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("key_paths", Text, nullable=False),  # JSON object: key -> path
    Column("created_at", BigInteger, nullable=False),
    Index(None, "repository_id", "commit"),
)

# What was captured when a run started (its code and environment), blob by blob.
run_captures = Table(
    "run_captures",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),  # "code/git", "environment/python"
    Column("kind", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
)


# -- identity, roles, quotas, audit --------------------------------------------------------
users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),  # argon2; None: tokens only
    Column("admin", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled_at", BigInteger, nullable=True),
)

# API tokens: only a hash of the secret is kept (the secret is shown once, at creation).
# Secrets are long and random, so a fast hash is enough (no salt or slow hash needed).
tokens = Table(
    "tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    UniqueConstraint("user_id", "name"),
)

# A user's role in a project: "reader" | "writer" | "owner" (cairn.core.identity.Role).
project_roles = Table(
    "project_roles",
    metadata,
    Column("project_id", ID, ForeignKey("projects.id"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True, index=True),
    Column("role", String(8), nullable=False),
    Column("granted_at", BigInteger, nullable=False),
    Column("granted_by", NAME, nullable=False, default=""),
)

# Bytes a project's artifacts hold, kept as they are logged (the per-project quota).
project_storage = Table(
    "project_storage",
    metadata,
    Column("project_id", ID, ForeignKey("projects.id"), primary_key=True),
    Column("bytes", BigInteger, nullable=False),
)

# Every write and every authentication event: who, what, when, from where.
audit_events = Table(
    "audit_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("time", BigInteger, nullable=False, index=True),
    Column("actor", NAME, nullable=False, default=""),  # user name; "" when anonymous
    Column("action", String(64), nullable=False, index=True),  # "runs.create", "auth.login_failed"
    Column("target", String(1024), nullable=False, default=""),  # what it acted on
    Column("remote", String(128), nullable=False, default=""),  # client address
    Column("status", Integer, nullable=False),  # the HTTP status answered
    Column("detail", Text, nullable=False, default=""),  # JSON
)
