"""A ``model_versions`` row as a ``ModelVersion``: the one mapping the SQL store and the embedded
lookup (``sqlite_lookup``) share, so both build the same object from the same columns. Standard
library only, as the lookup imports no SQLAlchemy."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from loopline.registry.types import ModelVersion, ModelVersionStatus


class Row(Protocol):
    """A row read by column name: SQLAlchemy's ``Row._mapping``, or a ``sqlite3.Row``."""

    def __getitem__(self, key: str, /) -> Any: ...


def model_version(name: str, row: Row, tags: Mapping[str, str], aliases: Iterable[str]) -> ModelVersion:
    """Version ``row`` of registered model ``name``, with its tags and aliases (in alias order)."""
    return ModelVersion(
        name=name,
        version=row["version"],
        creation_timestamp=row["creation_time"],
        last_updated_timestamp=row["last_updated_time"],
        source=row["source"],
        run_id=row["run_id"],
        model_id=row["model_id"],
        user_id=row["user_id"],
        description=row["description"],
        current_stage=row["current_stage"],
        status=ModelVersionStatus(row["status"]),
        status_message=row["status_message"],
        run_link=row["run_link"],
        tags=tags,
        aliases=tuple(aliases),
        digests=json.loads(row["digests"]),
    )
