"""The fixed app-db tables. Dataset rows live in one typed table per dataset version (see datasets.py)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData()

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("columns", JSON, nullable=False),  # [{"name": ..., "dtype": ...}], features then target
    Column("target_column", String(128), nullable=False),
    Column("task_type", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("table_name", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("dropped_columns", JSON),  # source columns left out of the features -> why (migration 3)
    Column("load_order", Integer),  # per name: the highest is the latest load, even of older content (migration 3)
    UniqueConstraint("name", "version", name="uq_dataset_versions_name_version"),
    UniqueConstraint("name", "content_hash", name="uq_dataset_versions_name_hash"),
)

# Lists are JSON on SQLite and native arrays on PostgreSQL (fixed-width, so batches can be binary-COPYed).
FloatList = JSON().with_variant(postgresql.ARRAY(postgresql.DOUBLE_PRECISION), "postgresql")
TextList = JSON().with_variant(postgresql.ARRAY(Text), "postgresql")


def _bytewise(length: int):
    """A string compared byte by byte on PostgreSQL (COLLATE "C"): its primary-key index is far cheaper to build."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


# One row per (batch, role, dataset row): the primary key makes a duplicated prediction impossible and is the
# access path (a batch id names the dataset version and the production version that scored it).
predictions = Table(
    "predictions",
    metadata,
    Column("batch_id", _bytewise(255), primary_key=True),
    Column("model_role", _bytewise(32), primary_key=True),  # "production" or "shadow"
    Column("row_id", BigInteger, primary_key=True, autoincrement=False),
    Column("dataset", String(64), nullable=False),
    Column("dataset_version", Integer, nullable=False),
    Column("model_name", String(255), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("model_alias", String(128), nullable=False),
    Column("mlflow_run_id", String(64), nullable=False),
    Column("predicted_class", Text),
    Column("predicted_value", Float),
    Column("classes", TextList),  # the class labels, in the order of ``probabilities``
    Column("probabilities", FloatList),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

monitoring_reports = Table(
    "monitoring_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(64), nullable=False),
    Column("dataset_version", Integer, nullable=False),
    Column("model_name", String(255), nullable=False),
    Column("production_version", Integer, nullable=False),
    Column("candidate_version", Integer),
    Column("metric", String(32), nullable=False),
    Column("production_score", Float, nullable=False),
    Column("candidate_score", Float),
    Column("held_out_rows", Integer, nullable=False),
    Column("drifted_features", JSON, nullable=False),
    Column("drift", JSON, nullable=False),
    Column("mlflow_run_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_monitoring_reports_dataset", "dataset", "created_at"),
)

# Every alias change the platform sees or makes: MLflow keeps only the current holder of an alias.
alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(255), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("from_version", Integer),  # None: the alias did not exist
    Column("to_version", Integer),  # None: the alias was removed
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_alias_history_model_alias", "model_name", "alias", "id"),
)

# One row per invocation a gateway mirrored to a shadow alias's server (ingested from the gateways' record files,
# each once: the id is the gateway's).
shadow_pairs = Table(
    "shadow_pairs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("model_name", String(255), nullable=False),
    Column("alias", String(128), nullable=False),  # the alias that answered (production)
    Column("production_version", Integer, nullable=False),
    Column("shadow_alias", String(128), nullable=False),
    Column("shadow_version", Integer, nullable=False),
    Column("agreement", Boolean),  # None: the shadow failed (error says how)
    Column("production_ms", Float, nullable=False),
    Column("shadow_ms", Float, nullable=False),
    Column("shadow_status", Integer),
    Column("error", String(255)),
    Index("ix_shadow_pairs_model_recorded", "model_name", "recorded_at"),
)
