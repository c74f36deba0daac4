"""Versioned datasets: what the data store returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a named dataset: ``datasets:/<name>/<version>``."""

    name: str
    version: int
    digest: str  # BLAKE3 of the manifest: equal content, equal digest
    manifest_digest: str
    format: str  # parquet | csv | json | files
    source: str
    num_files: int
    size_bytes: int
    num_rows: int | None
    schema: Mapping[str, str]
    profile: Mapping[str, Any]
    description: str
    created_by: str
    creation_time: int  # ms since the epoch
    aliases: tuple[str, ...] = field(default=())

    @property
    def uri(self) -> str:
        return f"datasets:/{self.name}/{self.version}"

    @property
    def is_tabular(self) -> bool:
        return self.format in ("parquet", "csv", "json")


@dataclass(frozen=True)
class VersionContent:
    """What a new version holds, as the client that read it describes it: what ``create_version``
    takes (the manifest's digest names the files; the store makes a version only if it differs)."""

    digest: str  # BLAKE3 of the manifest, already stored as a blob
    format: str  # parquet | csv | json | files
    source: str  # where it was added from (a path or URI)
    num_files: int
    size_bytes: int
    num_rows: int | None = None
    schema: Mapping[str, str] = field(default_factory=dict)
    profile: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    description: str
    latest_version: int
    num_versions: int
    aliases: Mapping[str, int]
    last_updated_time: int


@dataclass(frozen=True)
class ValidationRecord:
    id: int
    name: str
    version: int
    suite: str
    success: bool
    result: Mapping[str, Any]
    created_by: str
    creation_time: int
