"""How every SQLite connection to a metadata store is set up; stdlib only.

``metadata.engine`` applies it to each connection SQLAlchemy opens, and the lean ``sqlite3``
readers and writers (``data.version_writes``' caller, ``registry.sqlite_lookup``) to theirs, so a
pragma changed here changes them all.
"""

from __future__ import annotations

import sqlite3

BUSY_TIMEOUT_S = 60  # a writer waits this long for the one write lock before "database is locked"

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # durable across process crashes in WAL mode
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA case_sensitive_like=ON",  # LIKE matches case as on PostgreSQL; ILIKE does not
)


def configure(conn: sqlite3.Connection) -> None:
    """Autocommit at the driver (the caller issues ``BEGIN [IMMEDIATE]`` itself) and the pragmas."""
    conn.isolation_level = None
    cur = conn.cursor()
    for pragma in PRAGMAS:
        cur.execute(pragma)
    cur.close()


__all__ = ["BUSY_TIMEOUT_S", "PRAGMAS", "configure"]
