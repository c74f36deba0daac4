"""The monitoring tables (migration 0005), on the shared MetaData of ``loopline.metadata.schema``.

- ``monitors``: a declared monitor — what it watches (``deployments:/…`` or ``models:/…@alias``), its
  reference (a ``datasets:/`` URI, a file, or empty for "the training data found through lineage"), its
  window, schedule and options (JSON), and its ``state``: the cursor over the inference log.
- ``monitor_runs``: one row per evaluation, with the verdict and a JSON summary of the report.
- ``monitor_metrics``: the figures of every run as a long time series (monitor, key, time, value),
  what ``loopline monitor history`` and the Prometheus gauges read.
- ``reference_profiles``: where the stored profile of a reference lives in the artifact store, so a
  reference is summarised once per dataset version, not once per run.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from loopline.metadata.schema_base import BigId, metadata

monitors = Table(
    "monitors",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("target", String(512), nullable=False),
    Column("reference", String(1024), nullable=False, default=""),
    Column("window", String(32), nullable=False),
    Column("schedule", String(128), nullable=False, default=""),
    Column("config", Text, nullable=False, default="{}"),
    Column("state", Text, nullable=False, default="{}"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("last_run_ms", BigInteger, nullable=True),
    Column("next_run_ms", BigInteger, nullable=True),
    UniqueConstraint("workspace", "name"),
    Index(None, "workspace", "next_run_ms"),
)

monitor_runs = Table(
    "monitor_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("monitor_id", BigId, ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("new_rows", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # ok | drift | no_data | failed
    Column("dataset_drift", Boolean, nullable=False),
    Column("drift_share", Double, nullable=True),
    Column("summary", Text, nullable=False, default="{}"),
    Index(None, "workspace", "monitor_id", "started_ms"),
)

monitor_metrics = Table(
    "monitor_metrics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("monitor_id", BigId, ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", BigId, ForeignKey("monitor_runs.id", ondelete="CASCADE"), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("key", String(256), nullable=False),
    Column("value", Double, nullable=False),
    Index(None, "workspace", "monitor_id", "key", "time_ms"),
)

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("source", String(512), nullable=False),  # datasets:/name/3, or file:<path>@<mtime>:<size>
    Column("path", String(1024), nullable=False),  # the profile's artifact path
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("workspace", "source"),
)
