"""The jobs table (migration 0010), on the shared MetaData of ``loopline.metadata.schema``.

``jobs``: one row per long request a server answered 202 for (a materialisation, a monitor run…):
its kind, status (queued | running | succeeded | failed), progress, and its outcome: the JSON the
route would have answered, or the error body it would have sent. The row is the job's only state,
so any replica behind a load balancer answers for a job another one runs; ``heartbeat_ms`` is how
a reader tells a running job from one whose server died.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from loopline.metadata.schema_base import metadata

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),  # uuid4 hex
    Column("workspace", String(63), nullable=False),
    Column("kind", String(64), nullable=False),  # features.materialize, monitors.run, …
    Column("status", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("done", BigInteger, nullable=False, default=0),
    Column("total", BigInteger, nullable=True),  # unknown while streaming
    Column("message", Text, nullable=False, default=""),
    Column("result", Text, nullable=True),  # JSON: the route's 200 answer
    Column("error", Text, nullable=True),  # JSON: error_code, message, hint, status_code
    Column("created_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger, nullable=True),
    Column("finished_ms", BigInteger, nullable=True),
    Column("heartbeat_ms", BigInteger, nullable=False),
    Index(None, "workspace", "created_ms"),
)
