"""Read one model version from an embedded SQLite store without importing SQLAlchemy.

A cold ``load_model`` is mostly imports, and SQLAlchemy's are a fifth of Loopline's part of it. So
on an existing SQLite database at this code's schema revision, the version a load names (by number
or alias) is read here through ``sqlite3`` — with the registry store's own SQL, not a second copy:
the statements below are the text ``SqlRegistryStore.get_model_version(_by_alias)`` sends to
SQLite, run in the same order and in one read transaction as the store runs them, and the row
becomes a ``ModelVersion`` through the store's own ``version_rows.model_version``.
``tests/registry/test_sqlite_lookup.py`` records what both send to SQLite and fails when they
differ: change the store's statements, then paste its new text here.

Anything else — another database, an older or newer schema, a name or alias that is not there —
returns ``None`` and the caller takes the full store, which also gives the errors with their hints:
this path only ever answers the question it is sure of.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from loopline.locations import sqlite_path
from loopline.metadata.revision import HEAD_REVISION
from loopline.registry.types import ModelVersion
from loopline.registry.version_rows import model_version

# The store's statements as SQLAlchemy compiles them for SQLite (its ``_model_row``, the alias
# lookup of ``get_model_version_by_alias``, ``_version_row`` and ``_versions`` for one version).
MODEL = (
    "SELECT registered_models.id, registered_models.workspace, registered_models.name, "
    "registered_models.description, registered_models.creation_time, registered_models.last_updated_time "
    "\nFROM registered_models \nWHERE registered_models.workspace = ? AND registered_models.name = ?"
)
ALIAS = (
    "SELECT model_aliases.version \nFROM model_aliases "
    "\nWHERE model_aliases.model = ? AND model_aliases.alias = ?"
)
VERSION = (
    "SELECT model_versions.model, model_versions.version, model_versions.creation_time, "
    "model_versions.last_updated_time, model_versions.description, model_versions.user_id, "
    "model_versions.current_stage, model_versions.source, model_versions.run_id, "
    "model_versions.model_id, model_versions.run_link, model_versions.status, "
    "model_versions.status_message, model_versions.digests \nFROM model_versions "
    "\nWHERE model_versions.model = ? AND model_versions.version = ?"
)
TAGS = (
    'SELECT model_version_tags.version, model_version_tags."key", model_version_tags.value '
    "\nFROM model_version_tags "
    "\nWHERE model_version_tags.model = ? AND model_version_tags.version IN (?)"
)
ALIASES = (
    "SELECT model_aliases.alias, model_aliases.version \nFROM model_aliases "
    "\nWHERE model_aliases.model = ? AND model_aliases.version IN (?) ORDER BY model_aliases.alias"
)


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    # A URI with mode=ro never creates the file; WAL readers still see committed writers' data.
    # Autocommit mode, so that the BEGIN below (the store's) is the only transaction control.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()  # ends the read transaction


def read_version(
    conn: sqlite3.Connection, workspace: str, name: str, *, version: int | None, alias: str | None
) -> ModelVersion | None:
    """Version ``version`` (or the one ``alias`` points to) of ``name``, read with the store's
    statements, or None where the store would raise ``NotFound``."""
    db = conn.cursor()
    db.row_factory = sqlite3.Row  # columns by name, as the store reads them
    model = db.execute(MODEL, (workspace, name)).fetchone()
    if model is None:
        return None
    if alias is not None:
        found = db.execute(ALIAS, (model["id"], alias)).fetchone()
        if found is None:
            return None
        version = found["version"]
    row = db.execute(VERSION, (model["id"], version)).fetchone()
    if row is None:
        return None
    tags = {t["key"]: t["value"] for t in db.execute(TAGS, (model["id"], version)).fetchall()}
    aliases = [a["alias"] for a in db.execute(ALIASES, (model["id"], version)).fetchall()]
    return model_version(model["name"], row, tags, aliases)


def find_model_version(
    tracking_uri: str, workspace: str, name: str, *, version: int | None = None, alias: str | None = None
) -> ModelVersion | None:
    """Version ``version`` (or the one ``alias`` points to) of ``name``, or None when unsure."""
    path = sqlite_path(tracking_uri)
    if path is None or not path.is_file() or (version is None) == (alias is None):
        return None
    try:
        with _read_only(path) as conn:
            conn.execute("BEGIN")  # one snapshot for every read below, as the store's connection has
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            if revision is None or revision[0] != HEAD_REVISION:
                return None
            return read_version(conn, workspace, name, version=version, alias=alias)
    except (sqlite3.Error, OverflowError):  # locked past the timeout, damaged, an unknown schema, or
        return None  # a version number SQLite cannot hold (the store says which numbers are valid)
