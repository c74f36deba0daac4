"""Creating a dataset version, written once: the SQL text and the steps, run by either driver.

``SqlDataStore`` runs these statements through SQLAlchemy (SQLite or PostgreSQL). ``loopline data
add`` on an existing SQLite store runs the very same text through the standard library's
``sqlite3`` (``data.sqlite_versions``), because importing SQLAlchemy costs a small add more than
hashing its data. Either way the steps are the ones below, so the two cannot drift apart: the
caller opens the write transaction (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL the dataset's
row is locked ``FOR UPDATE``), a number is handed out only when the content differs from the
latest version, and the row, the dataset's timestamp and the audit events commit together.

The statements are plain SQL with named parameters (``:name``), which both drivers bind, and
they use nothing SQLite and PostgreSQL spell differently. This module imports only the stdlib.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from loopline import uris
from loopline.clock import now_ms
from loopline.data.types import DatasetVersion, VersionContent
from loopline.errors import NotFound
from loopline.metadata.event_rows import INSERT_EVENT, event_params
from loopline.names import check_name


class Row(Protocol):
    """A result row whose columns are read by name (``sqlite3.Row``, SQLAlchemy's ``RowMapping``)."""

    def __getitem__(self, key: str) -> Any: ...


Run = Callable[[str, Mapping[str, object]], Sequence[Row]]
"""Runs one statement with named parameters in the caller's transaction; returns its rows."""

VERSION_COLUMNS = (
    "version", "digest", "manifest_digest", "format", "source", "num_files", "size_bytes",
    "num_rows", "schema", "profile", "description", "created_by", "creation_time",
)  # fmt: skip
_COLUMNS = ", ".join(VERSION_COLUMNS)

DATASET_ID = "SELECT id FROM versioned_datasets WHERE workspace = :workspace AND name = :name"
INSERT_DATASET = (
    "INSERT INTO versioned_datasets (workspace, name, description, creation_time, last_updated_time)"
    " VALUES (:workspace, :name, '', :now, :now) RETURNING id"
)
LATEST = f"SELECT {_COLUMNS} FROM dataset_versions WHERE dataset = :dataset ORDER BY version DESC LIMIT 1"
INSERT_VERSION = (
    f"INSERT INTO dataset_versions (dataset, {_COLUMNS})"
    f" VALUES (:dataset, {', '.join(':' + c for c in VERSION_COLUMNS)})"
)
TOUCH_DATASET = "UPDATE versioned_datasets SET last_updated_time = :now WHERE id = :dataset"
VERSION_ALIASES = "SELECT alias FROM dataset_aliases WHERE dataset = :dataset AND version = :version"


def dataset_id(run: Run, workspace: str, name: str, *, lock: bool = False) -> int | None:
    """The dataset's row id; ``lock`` holds its row to the end of the transaction (PostgreSQL)."""
    found = run(DATASET_ID + (" FOR UPDATE" if lock else ""), {"workspace": workspace, "name": name})
    return int(found[0]["id"]) if found else None


def no_dataset(name: str) -> NotFound:
    return NotFound(f"No dataset named {name!r}.", hint="`loopline data list` shows the datasets there are.")


def latest_version(run: Run, workspace: str, name: str) -> DatasetVersion:
    """The newest version of ``name``."""
    ds = dataset_id(run, workspace, name)
    if ds is None:
        raise no_dataset(name)
    found = run(LATEST, {"dataset": ds})
    if not found:
        raise NotFound(f"Dataset {name!r} is empty.", hint=f"`loopline data log {name}` lists its versions.")
    return _with_aliases(run, name, ds, found[0])


def create_if_changed(
    run: Run,
    *,
    workspace: str,
    actor: str,
    name: str,
    lock: bool,
    content: VersionContent,
) -> tuple[DatasetVersion, bool]:
    """The new version, or the latest one if its content is the same; and whether it is new.

    Runs inside the caller's write transaction; ``lock`` as in :func:`dataset_id`.
    """
    name = check_name("dataset", name)
    now = now_ms()
    ds = dataset_id(run, workspace, name, lock=lock)
    if ds is None:
        ds = int(run(INSERT_DATASET, {"workspace": workspace, "name": name, "now": now})[0]["id"])
        run(INSERT_EVENT, event_params(workspace, actor, "dataset.created", f"datasets:/{name}"))
    found = run(LATEST, {"dataset": ds})
    c = content
    if found and found[0]["digest"] == c.digest:
        return _with_aliases(run, name, ds, found[0]), False
    number = (int(found[0]["version"]) if found else 0) + 1
    row: dict[str, object] = {
        "dataset": ds,
        "version": number,
        "digest": c.digest,
        "manifest_digest": c.digest,
        "format": c.format,
        "source": c.source,
        "num_files": c.num_files,
        "size_bytes": c.size_bytes,
        "num_rows": c.num_rows,
        "schema": json.dumps(dict(c.schema)),
        "profile": json.dumps(dict(c.profile), allow_nan=False),
        "description": c.description,
        "created_by": actor,
        "creation_time": now,
    }
    run(INSERT_VERSION, row)
    run(TOUCH_DATASET, {"now": now, "dataset": ds})
    payload = {"digest": c.digest, "source": c.source, "rows": c.num_rows}
    uri = uris.dataset_uri(name, number)
    run(INSERT_EVENT, event_params(workspace, actor, "dataset.version_created", uri, payload))
    return version_from_row(name, row, ()), True  # a new version has no alias yet


def version_from_row(name: str, row: Row | Mapping[str, Any], aliases: Iterable[str]) -> DatasetVersion:
    """A ``dataset_versions`` row as the value users see, with the aliases pointing at it."""
    return DatasetVersion(
        name=name,
        version=int(row["version"]),
        digest=row["digest"],
        manifest_digest=row["manifest_digest"],
        format=row["format"],
        source=row["source"],
        num_files=int(row["num_files"]),
        size_bytes=int(row["size_bytes"]),
        num_rows=None if row["num_rows"] is None else int(row["num_rows"]),
        schema=json.loads(row["schema"]),
        profile=json.loads(row["profile"]),
        description=row["description"],
        created_by=row["created_by"],
        creation_time=int(row["creation_time"]),
        aliases=tuple(sorted(aliases)),
    )


def _with_aliases(run: Run, name: str, ds: int, row: Row) -> DatasetVersion:
    aliases = run(VERSION_ALIASES, {"dataset": ds, "version": row["version"]})
    return version_from_row(name, row, (a["alias"] for a in aliases))


__all__ = ["Run", "create_if_changed", "dataset_id", "latest_version", "no_dataset", "version_from_row"]
