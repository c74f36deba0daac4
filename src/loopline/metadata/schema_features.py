"""The features tables (migration 0007), on the shared MetaData of ``loopline.metadata.schema``.

- ``feature_objects``: one row per registered definition (entity, feature view, on-demand view,
  feature service) with its JSON spec and the digest ``apply`` diffs against.
- ``feature_materializations``: one row per materialisation job of one view over one time window,
  with its progress (rows written, the last entity key written): a restarted job resumes after
  that key instead of starting over. ``materialize_incremental`` starts where the newest finished
  job of the view ended.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text, UniqueConstraint

from loopline.metadata.schema_base import BigId, metadata

feature_objects = Table(
    "feature_objects",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column(
        "kind", String(32), nullable=False
    ),  # entity | feature_view | on_demand_feature_view | feature_service
    Column("name", String(256), nullable=False),
    Column("spec", Text, nullable=False),  # JSON
    Column("digest", String(64), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    UniqueConstraint("workspace", "kind", "name"),
)

feature_materializations = Table(
    "feature_materializations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("view", String(256), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("rows", BigInteger, nullable=False, default=0),
    Column("cursor", Text, nullable=True),  # JSON list: the join-key values of the last row written
    Column("error", Text, nullable=False, default=""),
    Column("start_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Index(None, "workspace", "view", "status", "end_ms"),
)
