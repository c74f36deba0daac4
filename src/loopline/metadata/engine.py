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
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from loopline.errors import BackendUnavailable, InvalidInput, MissingExtra, NotFound, first_line, translate
from loopline.metadata.revision import HEAD_REVISION as HEAD_REVISION  # re-exported: cli db, tests
from loopline.metadata.sqlite_setup import BUSY_TIMEOUT_S, configure

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


def create_store_engine(uri: str, *, create: bool = True) -> Engine:
    """Make an engine for ``uri`` with the right pragmas and pool, and bring its schema to head.

    ``create=False`` (read-only commands) refuses a SQLite file that does not exist yet instead of
    making it and its folders: a typo in a path is an error naming it, not a new empty store.
    PostgreSQL never creates a database; one that does not exist is a ``NotFound`` either way.
    """
    try:
        url = make_url(uri)
    except ArgumentError as e:
        raise InvalidInput(
            f"Not a database URI: {uri!r}.",
            hint="Use sqlite:///path/to/loopline.db or postgresql+psycopg://user@host/db.",
        ) from e
    if url.get_backend_name() == "sqlite":
        if not create:
            _require_sqlite_file(url.database)
        engine = _sqlite_engine(uri, url.database)
    elif url.get_backend_name() == "postgresql":
        try:
            engine = create_engine(uri, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except (NoSuchModuleError, ModuleNotFoundError) as e:
            raise MissingExtra("psycopg", "postgres") from e
        event.listen(engine, "handle_error", _flag_ended_sessions)
    else:
        raise InvalidInput(
            f"Unsupported metadata store {url.get_backend_name()!r}.",
            hint="Loopline stores metadata in SQLite (sqlite:///…) or PostgreSQL (postgresql://…).",
        )
    try:
        upgrade(engine)
    except (OperationalError, DatabaseError) as e:
        engine.dispose()
        found = translate(e)
        assert found is not None  # every DatabaseError has a translation
        shown = url.render_as_string(hide_password=True)
        raise type(found)(f"{shown}: {found.message}", hint=found.hint) from e
    return engine


def _require_sqlite_file(database: str | None) -> None:
    if not database or database == ":memory:" or Path(database).expanduser().is_file():
        return
    path = Path(database).expanduser()
    hint = "Read commands never create a store: check the path, or pass the store you meant with " + (
        "--tracking-uri (or LOOPLINE_TRACKING_URI)."
    )
    near = closest_existing(path)
    if near is not None:
        hint = f"Did you mean {near}? " + hint
    raise NotFound(f"No Loopline store at {path}.", hint=hint)


def closest_existing(path: Path) -> Path | None:
    """The existing path nearest to ``path``: its first missing part replaced by the most similar
    name in the deepest folder that exists (``./.looplin/loopline.db`` → ``.loopline/loopline.db``)."""
    import difflib

    missing: list[str] = []
    folder = path
    while not folder.exists():
        if folder.parent == folder:
            return None
        missing.insert(0, folder.name)
        folder = folder.parent
    if not folder.is_dir():
        return None
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return None
    match = difflib.get_close_matches(missing[0], names, n=1, cutoff=0.6)
    if not match:
        return None
    candidate = folder.joinpath(match[0], *missing[1:])
    if candidate.exists():
        return candidate
    db = folder / match[0] / "loopline.db"  # a folder store named by its folder
    return db if len(missing) <= 2 and db.is_file() else None


def _sqlite_engine(uri: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(uri, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        configure(dbapi_conn)  # autocommit at the driver: the "begin" hook below issues BEGIN itself

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("loopline_write", False)
        # Straight to the driver: through exec_driver_sql, SQLAlchemy's statement machinery cost
        # more CPU than SQLite's BEGIN itself, once per transaction (every server request has one).
        driver = conn.connection.driver_connection
        assert driver is not None  # an open connection's sqlite3.Connection
        driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


# SQLSTATE classes of a session the server ended: connection exceptions (08…) and operator intervention
# (57P01 admin_shutdown, i.e. pg_terminate_backend, 57P02 crash_shutdown, 57P03 cannot_connect_now).
_ENDED = ("08", "57P")


def session_ended(exc: BaseException) -> bool:
    """Whether the server ended the session under ``exc``, as its SQLSTATE, or that of the error it
    was raised while handling, says. psycopg's pipeline (``executemany``) reports a session ended
    mid-batch as "cannot exit pipeline mode while busy", which its dialect's ``is_disconnect`` does not
    know; the connection is dead all the same, and a rollback on it fails."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error, what it was raised from or while handling, and so on
        if seen is None:
            return False
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_ENDED):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _flag_ended_sessions(context: Any) -> None:
    """SQLAlchemy's ``handle_error`` hook: a session the server ended is a disconnect, so the connection
    is invalidated (and the pool replaced) rather than rolled back and returned broken."""
    if not context.is_disconnect and session_ended(context.original_exception):
        context.is_disconnect = True


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means "not now" (the database out, a connection dropped, SQLite locked
    past its busy timeout) rather than a statement or a value it refused."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: IMMEDIATE on SQLite, plain on PostgreSQL; commits or rolls back.
    An outage (``is_outage``) is raised as ``BackendUnavailable``."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**WRITE)
            with conn.begin():
                yield conn
    except DBAPIError as e:
        if not is_outage(e):
            raise
        raise BackendUnavailable(
            f"The metadata store did not answer: {first_line(e)}",
            hint="Check that the database is reachable and not locked by a stuck process.",
        ) from e


Args = Sequence[Any] | Mapping[str, Any]  # positional (param_mark) or named (for_driver)


def driver_execute(conn: Connection, sql: str, args: Args = (), *, many: bool = False) -> int:
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


def driver_rows(conn: Connection, sql: str, args: Args = ()) -> list[tuple[Any, ...]]:
    """All rows of ``sql`` as the driver's tuples (see ``driver_execute``)."""
    with _driver_cursor(conn, sql, args, False) as cursor:
        return list(cursor.fetchall())


@contextlib.contextmanager
def _driver_cursor(conn: Connection, sql: str, args: Args, many: bool) -> Iterator[Any]:
    if not conn.in_transaction():
        conn.begin()  # as Connection.execute would (autobegin): statements of one read see one snapshot
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        try:
            if many:
                assert not isinstance(args, Mapping)  # a sequence of rows
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
            yield cursor
        except dbapi_error as e:
            # As Connection.execute does: a connection the database dropped is invalidated (the pool
            # replaces it) and the error says so, for the server to retry a read or answer 503.
            gone = conn.dialect.is_disconnect(e, conn.connection.dbapi_connection, cursor) or session_ended(e)
            if gone:
                conn.invalidate(e)
            raise DBAPIError.instance(
                sql, args, e, dbapi_error, connection_invalidated=gone, dialect=conn.dialect
            ) from e
    finally:
        cursor.close()


@functools.cache
def insert_sql(table: str, columns: tuple[str, ...], mark: str) -> str:
    """``INSERT INTO table (columns) VALUES (…)`` for ``driver_execute``, with ``mark`` placeholders."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def for_driver(conn: Connection, sql: str) -> str:
    """``sql`` written with named parameters (``:name``, as ``text()`` and sqlite3 take them) in the
    paramstyle of ``conn``'s driver: unchanged for sqlite3, ``%(name)s`` for psycopg. One SQL text
    then serves SQLAlchemy, the lean sqlite3 paths and the driver's cursor alike."""
    return sql if conn.dialect.name == "sqlite" else _pyformat(sql)


@functools.cache
def _pyformat(sql: str) -> str:
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))


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
