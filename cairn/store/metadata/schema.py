"""The metadata tables (SQLAlchemy Core). Changes go through a migration.

Times are integer milliseconds since the Unix epoch. Ids are UUIDv7 strings,
unique across all entity kinds, so tags, attributes and artifacts hang off
any entity through one ``entity_id`` column.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "artifacts",
    "attributes",
    "experiments",
    "hyperparameters",
    "idempotency_keys",
    "metadata",
    "metric_points",
    "metric_series",
    "projects",
    "runs",
    "tags",
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
    UniqueConstraint("experiment_id", "name"),
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
)

metric_series = Table(
    "metric_series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("key", NAME, nullable=False),
    # The latest point (highest step, then latest timestamp), ready for search.
    Column("last_step", BigInteger, nullable=False),
    Column("last_timestamp", BigInteger, nullable=False),
    # NULL stands for NaN: SQLite cannot store NaN (it turns it into NULL).
    Column("last_value", Float(53), nullable=True),
    UniqueConstraint("run_id", "key"),
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("series_id", Integer, ForeignKey("metric_series.id"), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float(53), nullable=True),  # NULL stands for NaN
    Index(None, "series_id", "step", "timestamp"),
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
