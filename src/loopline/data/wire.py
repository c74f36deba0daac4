"""The JSON shapes of dataset versions, summaries and validation results on the server's data routes.

One codec for both ends: ``loopline.server.data_api`` writes these shapes and
``loopline.data.rest_store`` reads them back into the same value types the SQL store returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from loopline.data.types import DatasetSummary, DatasetVersion, ValidationRecord


def version_to_json(v: DatasetVersion) -> dict[str, Any]:
    out = dataclasses.asdict(v)
    out["uri"] = v.uri
    out["aliases"] = list(v.aliases)
    return out


def version_from_json(body: Mapping[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        name=str(body["name"]),
        version=int(body["version"]),
        digest=str(body["digest"]),
        manifest_digest=str(body["manifest_digest"]),
        format=str(body["format"]),
        source=str(body["source"]),
        num_files=int(body["num_files"]),
        size_bytes=int(body["size_bytes"]),
        num_rows=None if body.get("num_rows") is None else int(body["num_rows"]),
        schema=dict(body.get("schema") or {}),
        profile=dict(body.get("profile") or {}),
        description=str(body.get("description") or ""),
        created_by=str(body.get("created_by") or ""),
        creation_time=int(body["creation_time"]),
        aliases=tuple(body.get("aliases") or ()),
    )


def summary_to_json(s: DatasetSummary) -> dict[str, Any]:
    return {**dataclasses.asdict(s), "aliases": dict(s.aliases)}


def summary_from_json(body: Mapping[str, Any]) -> DatasetSummary:
    return DatasetSummary(
        name=str(body["name"]),
        description=str(body.get("description") or ""),
        latest_version=int(body["latest_version"]),
        num_versions=int(body["num_versions"]),
        aliases={str(k): int(v) for k, v in (body.get("aliases") or {}).items()},
        last_updated_time=int(body["last_updated_time"]),
    )


def validation_to_json(r: ValidationRecord) -> dict[str, Any]:
    return dataclasses.asdict(r)


def validation_from_json(body: Mapping[str, Any]) -> ValidationRecord:
    return ValidationRecord(
        id=int(body["id"]),
        name=str(body["name"]),
        version=int(body["version"]),
        suite=str(body["suite"]),
        success=bool(body["success"]),
        result=dict(body.get("result") or {}),
        created_by=str(body.get("created_by") or ""),
        creation_time=int(body["creation_time"]),
    )
