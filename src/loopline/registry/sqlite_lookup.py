"""Read one model version straight from an embedded SQLite store, with the standard library only.

A cold ``load_model`` is mostly imports, and SQLAlchemy's are a fifth of Loopline's part of it. The
lookup a load needs (a version by number or alias) is two indexed reads, so for an existing
SQLite database at this code's schema revision they are made here through ``sqlite3``.
Anything else — another database, an older or newer schema, a name or alias that is not there —
returns ``None`` and the caller takes the full store, which also gives the errors with their hints:
this path only ever answers the question it is sure of.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from loopline.locations import sqlite_path
from loopline.metadata.revision import HEAD_REVISION
from loopline.registry.types import ModelVersion, ModelVersionStatus

_VERSION_COLUMNS = (
    "version, creation_time, last_updated_time, source, run_id, model_id, user_id, description, "
    "current_stage, status, status_message, run_link, digests"
)


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    # A URI with mode=ro never creates the file; WAL readers still see committed writers' data.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        yield conn
    finally:
        conn.close()


def find_model_version(
    tracking_uri: str, workspace: str, name: str, *, version: int | None = None, alias: str | None = None
) -> ModelVersion | None:
    """Version ``version`` (or the one ``alias`` points to) of ``name``, or None when unsure."""
    path = sqlite_path(tracking_uri)
    if path is None or not path.is_file() or (version is None) == (alias is None):
        return None
    try:
        with _read_only(path) as conn:
            if conn.execute("SELECT version_num FROM alembic_version").fetchone() != (HEAD_REVISION,):
                return None
            found = conn.execute(
                "SELECT id FROM registered_models WHERE workspace = ? AND name = ?", (workspace, name)
            ).fetchone()
            if found is None:
                return None
            model = found[0]
            if alias is not None:
                row = conn.execute(
                    "SELECT version FROM model_aliases WHERE model = ? AND alias = ?", (model, alias)
                ).fetchone()
                if row is None:
                    return None
                version = row[0]
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? AND version = ?",
                (model, version),
            ).fetchone()
            if row is None:
                return None
            conn.row_factory = None
            tags = dict(
                conn.execute(
                    "SELECT key, value FROM model_version_tags WHERE model = ? AND version = ?",
                    (model, version),
                ).fetchall()
            )
            aliases = tuple(
                a
                for (a,) in conn.execute(
                    "SELECT alias FROM model_aliases WHERE model = ? AND version = ? ORDER BY alias",
                    (model, version),
                )
            )
    except sqlite3.Error:  # locked past the timeout, damaged, or a schema this code does not know
        return None
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
        aliases=aliases,
        digests=json.loads(row["digests"]),
    )
