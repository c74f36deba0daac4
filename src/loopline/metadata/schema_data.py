"""The data tables (migration 0004): versioned datasets, their aliases and validation results.

A dataset version is a manifest — the sorted list of (relative path, BLAKE3 digest, size) of its
files, itself stored as a blob — plus what was learnt reading it: schema, row count, a column
profile. The ``digest`` of a version is the BLAKE3 of its manifest, so equal content means an
equal digest however it was added. (``datasets`` in ``schema.py`` is a different table: MLflow's
per-experiment dataset records that runs log as inputs.)
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

versioned_datasets = Table(
    "versioned_datasets",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    UniqueConstraint("workspace", "name"),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("dataset", BigId, ForeignKey("versioned_datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),  # BLAKE3 of the manifest
    Column("manifest_digest", String(64), nullable=False),  # the manifest's blob (same value today)
    Column("format", String(16), nullable=False),  # parquet | csv | json | files
    Column("source", Text, nullable=False),  # where it was added from (a path or URI)
    Column("num_files", Integer, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("num_rows", BigInteger, nullable=True),  # tabular data only
    Column("schema", Text, nullable=False, default="{}"),  # JSON: column -> arrow type
    Column("profile", Text, nullable=False, default="{}"),  # JSON: loopline.data.profile
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(255), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Index(None, "dataset", "digest"),
)

dataset_aliases = Table(
    "dataset_aliases",
    metadata,
    Column("dataset", BigId, ForeignKey("versioned_datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
)

dataset_validations = Table(
    "dataset_validations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataset", BigId, ForeignKey("versioned_datasets.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("suite", String(256), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("result", Text, nullable=False),  # the validation report's JSON
    Column("created_by", String(255), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Index(None, "dataset", "version", "id"),
)
