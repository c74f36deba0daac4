"""The closed loop's tables (migration 0012), on the shared MetaData of ``loopline.metadata.schema``.

- ``automation_policies``: one row per policy, its definition as JSON (``automation/types.py``
  gives the shape) and its labels (``managed-by: apply`` for those ``loopline apply`` owns).
- ``automation_rollouts``: one row per candidate: its state, step, the deployment revision it began
  from (restored on rollback), the gate's verdict and why it ended. The controller moves a rollout
  with a compare-and-set on (state, step), so a retried or duplicated step acts once.
- ``automation_triggers``: reasons to retrain not yet taken by a retraining (debounced together).
- ``automation_leases``: which controller acts on which key (a deployment, the event cursor) until when.
- ``automation_cursor``: the id of the last event the controller has read, per workspace.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from loopline.metadata.schema_base import BigId, metadata

automation_policies = Table(
    "automation_policies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("body", Text, nullable=False),
    Column("labels", Text, nullable=False, default="{}"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("workspace", "name"),
)

automation_rollouts = Table(
    "automation_rollouts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("policy", String(256), nullable=False),
    Column("deployment", String(256), nullable=False),
    Column("state", String(32), nullable=False),
    Column("step", Integer, nullable=False, default=-1),
    Column("step_started_ms", BigInteger, nullable=False, default=0),
    Column("candidate", String(512), nullable=False, default=""),
    Column("champion", String(512), nullable=False, default=""),
    Column("base_revision", Integer, nullable=False, default=0),
    Column("pipeline_run", String(64), nullable=False, default=""),
    Column("trigger", Text, nullable=False, default="{}"),
    Column("verdict", Text, nullable=False, default="{}"),
    Column("reason", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index(None, "workspace", "policy", "id"),
    Index(None, "workspace", "state"),
)

automation_triggers = Table(
    "automation_triggers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("policy", String(256), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("source_event", BigInteger, nullable=True),
    Column("change_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index(None, "workspace", "policy"),
)

automation_leases = Table(
    "automation_leases",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

automation_cursor = Table(
    "automation_cursor",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("event_id", BigInteger, nullable=False),
)
