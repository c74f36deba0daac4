"""The idempotency table (migration 0011), on the shared MetaData of ``loopline.metadata.schema``.

``idempotency_keys`` holds one row per ``Idempotency-Key`` a client sent with a write, scoped by
workspace: the request it was first used for (method, path, a fingerprint of body and query) and,
once that request has been answered, the answer to replay (status, content type, body). A row whose
``status`` is NULL is a request still running. The primary key makes the claim atomic: of two
concurrent INSERTs of one key, on one database however many replicas share it, exactly one succeeds.
Rows expire after a day by default; ``created_at`` is indexed so the purge is one range delete.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from loopline.metadata.schema_base import metadata

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),  # ms since the epoch, UTC
    Column("status", Integer, nullable=True),  # NULL while the first request runs
    Column("content_type", String(255), nullable=True),
    Column("body", LargeBinary, nullable=True),
    Index(None, "created_at"),
)
