"""The sqlite3 driver of ``data.version_writes``, for `loopline data add` on an embedded store.

``loopline data add`` is a command users run in loops and scripts, and on SQLite most of its
start-up went to importing SQLAlchemy (~0.2 s of CPU, more than hashing a 1 GiB file on every
core). So on an existing SQLite database at this code's schema revision, the two calls an add
makes — the latest version, and create-if-changed — run ``data.version_writes``' statements and
steps (the same ones ``SqlDataStore`` runs through SQLAlchemy) on a ``sqlite3`` connection set up
as the engine sets up its own (``metadata.sqlite_setup``). What this module adds is only the
driver: the connection, ``BEGIN IMMEDIATE`` and the commit.

Anything else — no database yet, an older or newer schema, PostgreSQL, a server URI — goes
through ``SqlDataStore``, which also migrates.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence

from loopline.data import version_writes
from loopline.data.types import DatasetVersion, VersionContent
from loopline.errors import BackendUnavailable
from loopline.locations import sqlite_path
from loopline.metadata.revision import HEAD_REVISION
from loopline.metadata.sqlite_setup import BUSY_TIMEOUT_S, configure


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
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            row = None
        if row is None or row[0] != HEAD_REVISION:
            db.close()
            return None
        configure(db)
        db.row_factory = sqlite3.Row  # columns by name, as version_writes reads them
        return cls(db, workspace=workspace, actor=actor)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: Mapping[str, object]) -> Sequence[sqlite3.Row]:
        return self._db.execute(sql, params).fetchall()

    def get_version(self, name: str) -> DatasetVersion:
        """The latest version of ``name``."""
        with self._lock:
            return version_writes.latest_version(self._run, self.workspace, name)

    def create_version(self, name: str, content: VersionContent) -> tuple[DatasetVersion, bool]:
        """``SqlDataStore.create_version``, in one ``BEGIN IMMEDIATE``."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise BackendUnavailable(
                    f"The metadata store did not answer: {e}",
                    hint="Check that the database is reachable and not locked by a stuck process.",
                ) from e
            try:
                result = version_writes.create_if_changed(
                    self._run, workspace=self.workspace, actor=self.actor, name=name, lock=False,
                    content=content,
                )  # fmt: skip
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result


__all__ = ["SqliteVersions"]
