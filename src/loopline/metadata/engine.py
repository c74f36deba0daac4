"""Engines for the metadata store: SQLite (embedded default) and PostgreSQL (scale-out).

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: a deferred transaction that later upgrades to a write lock can fail with
"database is locked" at once, without waiting; an immediate one queues behind the current writer.
That is what lets many processes log into one file at once.

Migrations (Alembic) run automatically when a store is opened and its schema is behind.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from loopline.errors import BackendUnavailable, InvalidInput, MissingExtra
from loopline.metadata.revision import HEAD_REVISION as HEAD_REVISION  # re-exported: cli db, tests

_BUSY_TIMEOUT_S = 60
_PG_MIGRATION_LOCK = 0x100_9_11E  # any constant: serialises concurrent migrators on PostgreSQL

WRITE = {"loopline_write": True}


def insert_for(dialect_name: str, table: Any) -> Any:
    """An INSERT with ``on_conflict_*`` in the dialect's syntax. PostgreSQL's dialect is imported only
    when used (~20 ms that an embedded SQLite process need not pay)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def create_store_engine(uri: str) -> Engine:
    """Make an engine for ``uri`` with the right pragmas and pool, and bring its schema to head."""
    try:
        url = make_url(uri)
    except ArgumentError as e:
        raise InvalidInput(
            f"Not a database URI: {uri!r}.",
            hint="Use sqlite:///path/to/loopline.db or postgresql+psycopg://user@host/db.",
        ) from e
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(uri, url.database)
    elif url.get_backend_name() == "postgresql":
        try:
            engine = create_engine(uri, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except (NoSuchModuleError, ModuleNotFoundError) as e:
            raise MissingExtra("psycopg", "postgres") from e
    else:
        raise InvalidInput(
            f"Unsupported metadata store {url.get_backend_name()!r}.",
            hint="Loopline stores metadata in SQLite (sqlite:///…) or PostgreSQL (postgresql://…).",
        )
    upgrade(engine)
    return engine


def _sqlite_engine(uri: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(uri, connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA case_sensitive_like=ON")  # LIKE matches case as on PostgreSQL; ILIKE does not
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("loopline_write", False)
        # Straight to the driver: through exec_driver_sql, SQLAlchemy's statement machinery cost
        # more CPU than SQLite's BEGIN itself, once per transaction (every server request has one).
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")  # type: ignore[union-attr]

    return engine


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: IMMEDIATE on SQLite, plain on PostgreSQL; commits or rolls back."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**WRITE)
            with conn.begin():
                yield conn
    except OperationalError as e:
        raise BackendUnavailable(
            f"The metadata store did not answer: {e.orig}",
            hint="Check that the database is reachable and not locked by a stuck process.",
        ) from e


def driver_execute(conn: Connection, sql: str, args: Sequence[Any] = (), *, many: bool = False) -> int:
    """Run ``sql`` (in the driver's paramstyle, see ``param_mark``) on ``conn``'s DB-API cursor,
    inside the transaction SQLAlchemy holds on ``conn``; ``many``: once per row of ``args``.
    Returns the driver's row count.

    For the statements every request runs and for big reads: SQLAlchemy's per-statement work
    (execution context, events, result set-up, ``Row`` objects) cost 3-4x what SQLite spends on a
    primary-key lookup or a one-row insert, and 3x the fetch on a 50,000-point metric history. The
    driver's errors are raised as SQLAlchemy's (``IntegrityError``, ``OperationalError`` …), as
    ``Connection.execute`` raises them; a connection not yet in a transaction begins one, as
    ``Connection.execute`` does."""
    with _driver_cursor(conn, sql, args, many) as cursor:
        return int(cursor.rowcount)


def driver_rows(conn: Connection, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of ``sql`` as the driver's tuples (see ``driver_execute``)."""
    with _driver_cursor(conn, sql, args, False) as cursor:
        return list(cursor.fetchall())


@contextlib.contextmanager
def _driver_cursor(conn: Connection, sql: str, args: Sequence[Any], many: bool) -> Iterator[Any]:
    if not conn.in_transaction():
        conn.begin()  # as Connection.execute would (autobegin): statements of one read see one snapshot
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        try:
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
            yield cursor
        except dbapi_error as e:
            raise DBAPIError.instance(sql, args, e, dbapi_error) from e
    finally:
        cursor.close()


@functools.cache
def insert_sql(table: str, columns: tuple[str, ...], mark: str) -> str:
    """``INSERT INTO table (columns) VALUES (…)`` for ``driver_execute``, with ``mark`` placeholders."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def param_mark(conn: Connection) -> str:
    """The driver's positional parameter marker: ``?`` (sqlite3) or ``%s`` (psycopg)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # no table yet: a new, empty database
        return None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply pending migrations, once, even when several processes open a new store at once."""
    with engine.connect() as probe:
        if revision == "head" and current_revision(probe) == HEAD_REVISION:
            return
    from alembic import command
    from alembic.config import Config

    with write_transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        if revision == "head" and current_revision(conn) == HEAD_REVISION:
            return  # another process migrated while we waited for the lock
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
