"""Dataset versions read and written with the standard library's sqlite3, for `loopline data add`.

``loopline data add`` is a command users run in loops and scripts, and on SQLite most of its
start-up went to importing SQLAlchemy (~0.2 s of CPU, more than hashing a 1 GiB file on every
core). For the two calls an add makes — the latest version, and create-if-changed — this module
issues the same statements as ``loopline.data.sql_store.SqlDataStore`` with the same guarantees:
the version number is handed out under ``BEGIN IMMEDIATE`` after comparing with the latest
digest, and the row, the dataset's timestamp and the audit events commit in one transaction.

It only takes a database whose schema is at this code's head revision (the statements below are
checked against ``SqlDataStore`` by the tests). Anything else — no database yet,
an older or newer schema, PostgreSQL, a server URI — goes through ``SqlDataStore``, which also
migrates.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from typing import Any

from loopline.clock import now_ms
from loopline.data.types import DatasetVersion
from loopline.errors import BackendUnavailable, NotFound
from loopline.locations import sqlite_path
from loopline.metadata.revision import HEAD_REVISION
from loopline.names import check_name

_BUSY_TIMEOUT_S = 60
_COLUMNS = (
    "version, digest, manifest_digest, format, source, num_files, size_bytes, num_rows, schema, "
    "profile, description, created_by, creation_time"
)


class SqliteVersions:
    """The latest version of a dataset and create-if-changed, on one SQLite database file."""

    def __init__(self, db: sqlite3.Connection, *, workspace: str, actor: str) -> None:
        self._db = db
        self._lock = threading.Lock()  # one connection; a client may be used from several threads
        self.workspace = workspace
        self.actor = actor

    @classmethod
    def open(cls, tracking_uri: str, *, workspace: str, actor: str) -> SqliteVersions | None:
        """The database ``tracking_uri`` names, if it is an existing SQLite file at the head revision."""
        path = sqlite_path(tracking_uri)
        if path is None or "?" in tracking_uri or not path.is_file():
            return None
        try:
            db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return None
        try:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            row = None
        if row is None or row[0] != HEAD_REVISION:
            db.close()
            return None
        # The pragmas loopline.metadata.engine sets on every connection.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA case_sensitive_like=ON")
        return cls(db, workspace=workspace, actor=actor)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get_version(self, name: str) -> DatasetVersion:
        """The latest version of ``name``."""
        with self._lock:
            return self._latest(name)

    def _latest(self, name: str) -> DatasetVersion:
        db = self._db
        ds = self._dataset_id(name)
        if ds is None:
            raise NotFound(
                f"No dataset named {name!r}.", hint="`loopline data list` shows the datasets there are."
            )
        row = db.execute(
            f"SELECT {_COLUMNS} FROM dataset_versions WHERE dataset = ? ORDER BY version DESC LIMIT 1", (ds,)
        ).fetchone()
        if row is None:
            raise NotFound(
                f"Dataset {name!r} is empty.", hint=f"`loopline data log {name}` lists its versions."
            )
        return self._version(name, ds, row)

    def create_version(
        self,
        name: str,
        *,
        digest: str,
        format: str,
        source: str,
        num_files: int,
        size_bytes: int,
        num_rows: int | None,
        schema: Mapping[str, str],
        profile: Mapping[str, Any],
        description: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """The new version, or the latest one if its content is the same; and whether it is new."""
        name = check_name("dataset", name)
        with self._lock:
            return self._create(
                name, digest=digest, format=format, source=source, num_files=num_files,
                size_bytes=size_bytes, num_rows=num_rows, schema=schema, profile=profile,
                description=description,
            )  # fmt: skip

    def _create(
        self,
        name: str,
        *,
        digest: str,
        format: str,
        source: str,
        num_files: int,
        size_bytes: int,
        num_rows: int | None,
        schema: Mapping[str, str],
        profile: Mapping[str, Any],
        description: str,
    ) -> tuple[DatasetVersion, bool]:
        now = now_ms()
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise BackendUnavailable(
                f"The metadata store did not answer: {e}",
                hint="Check that the database is reachable and not locked by a stuck process.",
            ) from e
        try:
            ds = self._dataset_id(name)
            if ds is None:
                cur = db.execute(
                    "INSERT INTO versioned_datasets (workspace, name, description, creation_time,"
                    " last_updated_time) VALUES (?, ?, '', ?, ?)",
                    (self.workspace, name, now, now),
                )
                ds = int(cur.lastrowid or 0)
                self._event("dataset.created", f"datasets:/{name}", {})
            latest = db.execute(
                "SELECT version, digest FROM dataset_versions WHERE dataset = ?"
                " ORDER BY version DESC LIMIT 1",
                (ds,),
            ).fetchone()
            if latest is not None and latest[1] == digest:
                version = self._read(name, ds, int(latest[0]))
                db.execute("COMMIT")
                return version, False
            number = (int(latest[0]) if latest is not None else 0) + 1
            db.execute(
                f"INSERT INTO dataset_versions (dataset, {_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ds, number, digest, digest, format, source, num_files, size_bytes, num_rows,
                    json.dumps(dict(schema)), json.dumps(dict(profile), allow_nan=False), description,
                    self.actor, now,
                ),
            )  # fmt: skip
            db.execute("UPDATE versioned_datasets SET last_updated_time = ? WHERE id = ?", (now, ds))
            uri = f"datasets:/{name}/{number}"
            self._event(
                "dataset.version_created", uri, {"digest": digest, "source": source, "rows": num_rows}
            )
            version = self._read(name, ds, number)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return version, True

    # ---- helpers ---------------------------------------------------------------------------

    def _dataset_id(self, name: str) -> int | None:
        row = self._db.execute(
            "SELECT id FROM versioned_datasets WHERE workspace = ? AND name = ?", (self.workspace, name)
        ).fetchone()
        return None if row is None else int(row[0])

    def _event(self, action: str, uri: str, payload: Mapping[str, object]) -> None:
        self._db.execute(
            "INSERT INTO events (workspace, time_ms, actor, action, object_uri, payload, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, '')",
            (
                self.workspace, now_ms(), self.actor, action, uri,
                json.dumps(dict(payload), default=str),
            ),
        )  # fmt: skip

    def _read(self, name: str, ds: int, number: int) -> DatasetVersion:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM dataset_versions WHERE dataset = ? AND version = ?", (ds, number)
        ).fetchone()
        return self._version(name, ds, row)

    def _version(self, name: str, ds: int, row: tuple[Any, ...]) -> DatasetVersion:
        (version, digest, manifest_digest, fmt, source, num_files, size_bytes, num_rows, schema, profile,
         description, created_by, creation_time) = row  # fmt: skip
        aliases = self._db.execute(
            "SELECT alias FROM dataset_aliases WHERE dataset = ? AND version = ?", (ds, version)
        ).fetchall()
        return DatasetVersion(
            name=name,
            version=int(version),
            digest=digest,
            manifest_digest=manifest_digest,
            format=fmt,
            source=source,
            num_files=int(num_files),
            size_bytes=int(size_bytes),
            num_rows=None if num_rows is None else int(num_rows),
            schema=json.loads(schema),
            profile=json.loads(profile),
            description=description,
            created_by=created_by,
            creation_time=int(creation_time),
            aliases=tuple(sorted(a for (a,) in aliases)),
        )


__all__ = ["SqliteVersions"]
