"""The deployment tables (migration 0009), on the shared MetaData of ``loopline.metadata.schema``.

- ``deployments``: one row per deployment — its current spec (JSON: routes with weights, shadow,
  sticky header), its ``revision`` (1, 2, …: what optimistic writers compare and servers poll), and
  who created and last changed it, when.
- ``deployment_revisions``: every change, never updated: the revision number, the spec it set, the
  model version each ``models:/`` URI of the spec named at that moment (``resolved``, JSON), who,
  when and why. A rollback is a new revision copying an old spec.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text, UniqueConstraint

from loopline.metadata.schema_base import BigId, metadata

deployments = Table(
    "deployments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("spec", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", String(255), nullable=False),
    UniqueConstraint("workspace", "name"),
)

deployment_revisions = Table(
    "deployment_revisions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("deployment_id", BigId, ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("spec", Text, nullable=False),
    Column("resolved", Text, nullable=False, default="{}"),
    Column("actor", String(255), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    UniqueConstraint("deployment_id", "revision"),
)
