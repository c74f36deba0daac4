"""The metadata tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Design notes:
- Every top-level object carries ``workspace``; every query filters by it.
- ``metrics`` holds full histories; ``latest_metrics`` holds one row per (run, key), so that
  run listings, filters and ordering never touch the history table (MLflow #1571, #2730).
- ``events`` is append-only: who did what to which object URI, written in the same
  transaction as the change. ``lineage_edges`` joins objects across capabilities.
- Times are integer milliseconds since the epoch (UTC), as in MLflow's REST API.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from loopline.metadata import (  # noqa: F401  # each domain's tables, on this metadata (schema_base.py)
    schema_auth,
    schema_automation,
    schema_data,
    schema_deployments,
    schema_features,
    schema_idempotency,
    schema_jobs,
    schema_monitoring,
    schema_pipelines,
)
from loopline.metadata.limits import KEY, PARAM_VALUE, TAG_VALUE
from loopline.metadata.schema_base import BigId as BigId, metadata as metadata

workspaces = Table(
    "workspaces",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_uri", String(512), nullable=False),
    Column("payload", Text, nullable=False, default="{}"),
    Column("reason", Text, nullable=False, default=""),
    Index(None, "workspace", "object_uri", "id"),
    Index(None, "workspace", "action", "time_ms"),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("from_uri", String(512), nullable=False),
    Column("to_uri", String(512), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    # True when from_uri names an object this store does not hold (a run of another tracking
    # server that shares this registry): recorded as given, shown as unresolved.
    Column("external", Boolean, nullable=False, default=False, server_default=false()),
    UniqueConstraint("workspace", "from_uri", "to_uri", "relation"),
    Index(None, "workspace", "to_uri"),
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("artifact_location", String(1024), nullable=False),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    UniqueConstraint("workspace", "name"),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        BigId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), primary_key=True),
    Column("workspace", String(63), nullable=False),
    Column(
        "experiment_id",
        BigId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger),
    Column("end_time", BigInteger),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("artifact_uri", String(1024), nullable=False),
    Column("deleted_time", BigInteger),
    Index(None, "experiment_id", "lifecycle_stage", "start_time"),
    Index(None, "workspace", "lifecycle_stage", "deleted_time"),
)


def _run_fk() -> Column[str]:
    return Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True)


params = Table(
    "params",
    metadata,
    _run_fk(),
    Column("key", String(KEY), primary_key=True),
    Column("value", String(PARAM_VALUE), nullable=False),
    Index(None, "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    _run_fk(),
    Column("key", String(KEY), primary_key=True),
    Column("value", String(TAG_VALUE), nullable=False),
    Index(None, "key", "value"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", String(KEY), nullable=False),
    Column("value", Double, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    # One row per distinct point (a retried request stores nothing twice), in MLflow's history order.
    Index("uq_metrics_point", "run_uuid", "key", "timestamp", "step", "value", "is_nan", unique=True),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    _run_fk(),
    Column("key", String(KEY), primary_key=True),
    Column("value", Double, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Index(None, "key", "value"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_uuid", String(32), primary_key=True),
    Column("workspace", String(63), nullable=False),
    Column(
        "experiment_id",
        BigId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text, nullable=False),
    Column("profile", Text, nullable=False),
    UniqueConstraint("experiment_id", "name", "digest"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    _run_fk(),
    Column(
        "dataset_uuid",
        String(32),
        ForeignKey("datasets.dataset_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("context", String(64), nullable=False, default=""),  # mlflow.data.context tag
    Column("tags", Text, nullable=False, default="{}"),
)

# MLflow 3's model inputs and outputs of a run (log-inputs ``models``, runs/outputs).
run_logged_models = Table(
    "run_logged_models",
    metadata,
    _run_fk(),
    Column("model_id", String(64), primary_key=True),
    Column("direction", String(8), primary_key=True),  # "input" or "output"
    Column("step", BigInteger, nullable=False, default=0),
)

# ---- model registry (migration 0002) -------------------------------------------------------

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("workspace", String(63), nullable=False),
    Column(
        "experiment_id",
        BigId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("artifact_location", String(1024), nullable=False),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=False, default=""),
    Column("model_type", String(500), nullable=False, default=""),
    Column("source_run_id", String(32), nullable=False, default=""),
    Column("lifecycle_stage", String(16), nullable=False),
    Index(None, "experiment_id", "creation_timestamp"),
    Index(None, "source_run_id"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column(
        "model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column(
        "model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    Column(
        "model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(KEY), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Double, nullable=False),
    Column("run_id", String(32), nullable=False, default=""),
    Column("dataset_name", String(500), nullable=False, default=""),
    Column("dataset_digest", String(64), nullable=False, default=""),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    UniqueConstraint("workspace", "name"),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("model", BigId, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model", BigId, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("user_id", String(255), nullable=False, default=""),
    Column("current_stage", String(20), nullable=False, default="None"),
    Column("source", String(1024), nullable=False),
    Column("run_id", String(32), nullable=False, default=""),
    Column("model_id", String(64), nullable=False, default=""),
    Column("run_link", String(1024), nullable=False, default=""),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=False, default=""),
    Column("digests", Text, nullable=False, default="{}"),  # JSON {path: blake3} checked on load
    Index(None, "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model", BigId, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["model", "version"], ["model_versions.model", "model_versions.version"], ondelete="CASCADE"
    ),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model", BigId, ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
)

# The domains' tables (migrations 0004 data, 0005 monitoring, 0006 pipelines, 0007 features, 0009
# deployments, 0010 jobs, 0011 idempotency keys, 0012 automation, 0013 auth) live in schema_*.py on this same
# metadata; importing them above makes ``metadata`` the whole schema.
