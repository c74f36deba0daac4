"""Sources as DuckDB relations: what the offline join and materialisation read.

Files are scanned by DuckDB itself (Parquet with filter pushdown, CSV with type detection),
dataset versions through ``loopline.data.scan_dataset`` (a streaming Arrow dataset), SQL sources
as subqueries and PostgreSQL tables through the database driver, streamed in batches into a
DuckDB table (which spills to disk when it outgrows memory).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInput, MissingExtra, NotFound
from loopline.features.definitions import (
    DatasetSource,
    FeatureView,
    FileSource,
    PostgresSource,
    PushSource,
    Source,
    SqlSource,
)

if TYPE_CHECKING:
    from loopline.config import Settings

_PG_BATCH = 50_000


def connect(
    *, memory_limit: str | None = None, temp_dir: str | None = None, threads: int | None = None
) -> Any:
    """A DuckDB connection set up for point-in-time work: UTC, spilling to ``temp_dir``."""
    try:
        import duckdb
    except ImportError as e:
        raise MissingExtra("duckdb", "features") from e
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    # Row order is restored from a row number, so DuckDB may stream and spill in any order.
    con.execute("SET preserve_insertion_order = false")
    limit = memory_limit or os.environ.get("LOOPLINE_FEATURES_MEMORY_LIMIT")
    if limit:
        con.execute(f"SET memory_limit = '{limit}'")
    if temp_dir:
        con.execute(f"SET temp_directory = '{_quote(temp_dir)}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def relation(con: Any, source: Source, alias: str, settings: Settings | None = None, where: str = "") -> str:
    """SQL for a FROM clause reading ``source`` (registering Arrow objects on ``con`` as needed).

    ``where`` is a filter in the source's own columns, pushed into the PostgreSQL query so only the
    rows of the time window cross the wire.
    """
    if isinstance(source, PushSource):
        return relation(con, source.batch_source, alias, settings, where)
    if isinstance(source, FileSource):
        return _file_relation(source.path)
    if isinstance(source, SqlSource):
        return f"({source.query})"
    if isinstance(source, DatasetSource):
        try:
            from loopline.data import DataClient, scan_dataset
        except ImportError as e:
            raise MissingExtra("loopline.data", "data") from e
        con.register(
            alias, scan_dataset(source.uri, client=DataClient(settings) if settings is not None else None)
        )
        return ident(alias)
    if isinstance(source, PostgresSource):
        _load_postgres(con, source, alias, settings, where)
        return ident(alias)
    raise InvalidInput(f"Unsupported source {source!r}.")


def _file_relation(path: str) -> str:
    p = Path(path)
    if "://" not in path and not any(c in path for c in "*?[") and not p.exists():
        raise NotFound(f"The source file {path!r} does not exist.", hint="Fix the path in the FileSource.")
    target = path
    if p.is_dir():
        parquet = any(p.rglob("*.parquet"))
        target = str(p / "**" / ("*.parquet" if parquet else "*.csv"))
    lower = target.lower()
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return f"read_csv('{_quote(target)}', auto_detect = true)"
    if lower.endswith(".json") or lower.endswith(".jsonl"):
        return f"read_json_auto('{_quote(target)}')"
    return f"read_parquet('{_quote(target)}', union_by_name = true)"


def postgres_uri(source: PostgresSource, settings: Settings | None) -> str:
    uri = source.uri or os.environ.get("LOOPLINE_FEATURES_POSTGRES_URI")
    if not uri and settings is not None and settings.tracking_uri.startswith("postgresql"):
        uri = settings.tracking_uri
    if not uri:
        raise InvalidInput(
            f"PostgresSource {source.table or source.query!r} names no database.",
            hint="Give uri='postgresql://user@host/db' or set LOOPLINE_FEATURES_POSTGRES_URI.",
        )
    from loopline.config import normalize_store_uri

    return normalize_store_uri(uri)


def _load_postgres(
    con: Any, source: PostgresSource, alias: str, settings: Settings | None, where: str
) -> None:
    """Stream the table (window only) into a DuckDB table, ``_PG_BATCH`` rows at a time."""
    import pyarrow as pa
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_uri(source, settings))
    base = (
        f"SELECT * FROM {_pg_table(source.table)}" if source.table else f"SELECT * FROM ({source.query}) AS q"
    )
    sql = f"SELECT * FROM ({base}) AS s WHERE {where}" if where else base
    created = False
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, max_row_buffer=_PG_BATCH).execute(text(sql))
            names = list(result.keys())
            while True:
                rows = result.fetchmany(_PG_BATCH)
                if not rows and created:
                    break
                columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
                batch = pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)})
                con.register("__pg_batch", batch)
                if created:
                    con.execute(f"INSERT INTO {ident(alias)} SELECT * FROM __pg_batch")
                else:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(alias)} AS SELECT * FROM __pg_batch")
                    created = True
                con.unregister("__pg_batch")
                if not rows:
                    break
    except Exception as e:
        if isinstance(e, InvalidInput):
            raise
        raise InvalidInput(f"Cannot read the PostgreSQL source {source.table or source.query!r}: {e}") from e
    finally:
        engine.dispose()


def _pg_table(name: str | None) -> str:
    assert name is not None
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def columns(con: Any, rel: str) -> dict[str, str]:
    """Column name → DuckDB type of a relation (binds the query, reads no rows)."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()
    except Exception as e:
        raise InvalidInput(f"Cannot read the source {rel}: {e}") from e
    return {r[0]: r[1] for r in rows}


def type_family(duck_type: str) -> str:
    t = duck_type.upper()
    if any(x in t for x in ("INT", "HUGEINT")):
        return "integer"
    if any(x in t for x in ("DOUBLE", "FLOAT", "REAL", "DECIMAL")):
        return "float"
    if "TIMESTAMP" in t or t == "DATE":
        return "timestamp"
    if t in ("VARCHAR", "TEXT", "STRING") or t.startswith("VARCHAR"):
        return "string"
    if t == "BOOLEAN":
        return "bool"
    return t.lower()


def require_columns(view: FeatureView, src: Any, features: Sequence[str], have: Collection[str]) -> None:
    """Refuse a source that lacks a column ``view`` reads from it: its join keys, its timestamps and
    ``features`` (checked by ``apply`` before storing a view, and by every read of the source)."""
    need = [*view.join_keys, src.timestamp_field, *features]
    if src.created_timestamp_column:
        need.append(src.created_timestamp_column)
    missing = [c for c in need if c not in have]
    if missing:
        raise InvalidInput(
            f"The source of feature view {view.name!r} has no column(s) {missing}.",
            hint=f"It has {sorted(have)}. Fix the view's schema, the entities' join keys or timestamp_field.",
        )
