"""The default online store: one SQLite file, one ``WITHOUT ROWID`` table per feature view.

Reads go through the connection's statement cache (the same SQL text reuses the prepared
statement) on a cursor kept per thread: a single key is one primary-key probe, n keys one
``IN (…)`` query per view. Each
thread gets its own connection, so a server's worker threads never share a cursor. WAL mode lets
a materialisation write while servers read.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from loopline.errors import BackendUnavailable

_CHUNK = 900  # keys per IN (...) query: far under SQLite's bound-parameter limit


class SqliteOnlineStore:
    """:class:`~loopline.features.online.OnlineStore` on a local SQLite file."""

    def __init__(self, path: Path, *, namespace: str = "default") -> None:
        self.path = Path(path)
        self.namespace = namespace
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._sql: dict[tuple[str, int], str] = {}
        self._one: dict[str, str] = {}  # view -> its single-key statement
        self._connect()  # fail early (and create the file) if the folder is not writable

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, cached_statements=512)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "PRAGMA mmap_size=268435456"
                )  # reads map the file: no copy through the page cache
                conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: bulk upserts stay in memory until commit
            except sqlite3.Error as e:
                raise BackendUnavailable(f"Cannot open the online store {self.path}: {e}.") from e
            self._local.conn = conn
        return conn

    def _table(self, view: str) -> str:
        return f'"{self.namespace}__{view}"'

    def write(self, view: str, rows: Sequence[tuple[str, int, bytes]]) -> int:
        if not rows:
            return 0
        conn = self._connect()
        table = self._table(view)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(k TEXT PRIMARY KEY, ts INTEGER NOT NULL, v BLOB) WITHOUT ROWID"
        )
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f"INSERT INTO {table} (k, ts, v) VALUES (?, ?, ?) "
                "ON CONFLICT (k) DO UPDATE SET ts = excluded.ts, v = excluded.v "
                f"WHERE excluded.ts >= {table}.ts",
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        n = len(keys)
        try:
            cursor = self._local.cursor
        except AttributeError:
            cursor = self._local.cursor = self._connect().cursor()
        try:
            if n == 1:  # the hot path: a cached statement on a kept cursor, one primary-key probe
                sql = self._one.get(view) or self._statement(view, 1)
                # fetchall, not fetchone: stepping to the end resets the statement, so the kept
                # cursor holds no read snapshot between calls (it would pin the WAL)
                rows = cursor.execute(sql, keys).fetchall()
                return [rows[0][0] if rows else None]
            found: dict[str, bytes] = {}
            for i in range(0, n, _CHUNK):
                part = keys[i : i + _CHUNK]
                found.update(cursor.execute(self._statement(view, len(part)), part).fetchall())
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):  # nothing materialised for this view yet
                return [None] * n
            raise BackendUnavailable(f"The online store {self.path} did not answer: {e}.") from e
        return [found.get(k) for k in keys]

    def _statement(self, view: str, n: int) -> str:
        sql = self._sql.get((view, n))
        if sql is None:
            table = self._table(view)
            if n == 1:
                sql = self._one[view] = f"SELECT v FROM {table} WHERE k = ?"
            else:
                sql = f"SELECT k, v FROM {table} WHERE k IN ({','.join('?' * n)})"
            self._sql[(view, n)] = sql
        return sql

    def drop(self, view: str) -> None:
        self._connect().execute(f"DROP TABLE IF EXISTS {self._table(view)}")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.__dict__.pop("cursor", None)
