"""The pipelines tables (migration 0006), on the shared MetaData of ``loopline.metadata.schema``.

- ``pipeline_runs``: one row per pipeline run. Its ``run_id`` is also the id of the tracking run
  that carries its params, tags and metrics (``runs:/<run_id>``), so one id names both.
- ``pipeline_steps``: one row per step of a run. A step's output counts only once its row says
  ``succeeded`` with the output's digest: the row is written in the same transaction as the
  lineage edges, after the output's bytes are in the artifact store, so a killed step leaves no
  registered partial output. ``cache_key`` finds an earlier identical step in any run.
- ``pipeline_schedules`` and ``pipeline_schedule_slots``: cron schedules, and one row per slot
  claimed; the primary key makes a claim atomic, so a slot runs once across restarts and servers.
- ``pipeline_sweeps``: parameter searches; their trials are pipeline runs with ``sweep_id`` set.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from loopline.metadata.schema_base import BigId, metadata

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("target", String(1024), nullable=False),  # file.py:func or module:func, to rerun/resume
    Column("status", String(16), nullable=False),
    Column("params", Text, nullable=False, default="{}"),
    Column("seed", BigInteger, nullable=False),
    Column("executor", String(256), nullable=False),
    Column("environment", Text, nullable=False, default="{}"),
    Column("graph", Text, nullable=False, default="{}"),
    Column("outputs", Text, nullable=False, default="{}"),
    Column("error", Text, nullable=False, default=""),
    Column("rerun_of", String(32), nullable=False, default=""),
    Column("sweep_id", String(32), nullable=False, default=""),
    Column("schedule", String(256), nullable=False, default=""),
    Column("host", String(255), nullable=False, default=""),
    Column("pid", Integer, nullable=False, default=0),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Index(None, "workspace", "name", "start_time"),
    Index(None, "workspace", "start_time"),
    Index(None, "workspace", "sweep_id"),
)

pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("run_id", String(32), ForeignKey("pipeline_runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("pipeline", String(256), nullable=False),
    Column("node", String(256), nullable=False),  # unique in the run: featurize, featurize_2, …
    Column("step", String(256), nullable=False),  # the function's name
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cache_key", String(64), nullable=False, default=""),
    Column("fingerprint", String(64), nullable=False, default=""),
    Column("inputs", Text, nullable=False, default="{}"),  # {argument: digest}
    Column("params", Text, nullable=False, default="{}"),  # constant arguments
    Column("cached_from", String(32), nullable=False, default=""),
    Column("serializer", String(32), nullable=False, default=""),
    Column("output_path", String(1024), nullable=False, default=""),
    Column("output_digest", String(64), nullable=False, default=""),
    Column("output_size", BigInteger, nullable=False, default=0),
    Column("output_inline", Text),  # small JSON outputs live in the row itself
    Column("output_meta", Text, nullable=False, default="{}"),
    Column("reason", Text, nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
    Column("start_time", BigInteger),
    Column("end_time", BigInteger),
    UniqueConstraint("run_id", "node"),
    Index(None, "workspace", "cache_key"),
    Index(None, "workspace", "fingerprint"),
    Index(None, "workspace", "pipeline", "node", "end_time"),
)

pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("target", String(1024), nullable=False),
    Column("cron", String(128), nullable=False),
    Column("params", Text, nullable=False, default="{}"),
    Column("executor", String(256), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_time", BigInteger, nullable=False),
    UniqueConstraint("workspace", "name"),
)

pipeline_schedule_slots = Table(
    "pipeline_schedule_slots",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("schedule", String(256), primary_key=True),
    Column("slot_ms", BigInteger, primary_key=True),
    Column("claimed_by", String(255), nullable=False),
    Column("claimed_time", BigInteger, nullable=False),
    Column("run_id", String(32), nullable=False, default=""),
    Column("error", Text, nullable=False, default=""),
)

pipeline_sweeps = Table(
    "pipeline_sweeps",
    metadata,
    Column("sweep_id", String(32), primary_key=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("target", String(1024), nullable=False),
    Column("method", String(16), nullable=False),
    Column("metric", String(256), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("space", Text, nullable=False, default="{}"),
    Column("status", String(16), nullable=False),
    Column("best_run_id", String(32), nullable=False, default=""),
    Column("best_value", Text, nullable=False, default=""),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Index(None, "workspace", "start_time"),
)
