"""A view's feature rows of one time window, in memory, for the in-memory point-in-time join.

The table has the view's join keys, ``__ts`` (event time, ``timestamp[us, UTC]``), ``__created``
when the source has a created timestamp, and the wanted features as ``__f0…``: the columns of the
SQL that :mod:`loopline.features.offline` writes for DuckDB, with the same rows.

A source that is one local Parquet file is read by Arrow's Parquet reader, skipping the row groups
whose time statistics fall outside the window: for a training set that is most of the work, and
a DuckDB connection, plan and Arrow export cost about as much again (measured in a fresh process
on the benchmark's 1M-row file: 22 ms of CPU against 70 ms). Every other source, and a Parquet
file whose time column is not a timestamp, is read through DuckDB. Either way, reading stops as
soon as the rows outgrow ``budget`` bytes (``None`` is returned and the caller uses DuckDB's
ASOF join, which spills).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInput
from loopline.features.definitions import FileSource, PushSource

if TYPE_CHECKING:
    import pyarrow as pa

    from loopline.features.retrieval import Fetch

READ_ROWS = 1 << 20  # rows per Arrow batch read from DuckDB
ROW_OVERHEAD = 40  # bytes per feature row the join adds to the Arrow data (five int64 arrays)
_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 1}  # ns: divided, below


def read_window(
    fetch: Fetch,
    lo_us: int,
    hi_us: int,
    budget: int,
    duckdb_sql: Callable[[], tuple[Any, str]],
) -> pa.Table | None:
    """The view's rows with ``lo_us - ttl <= time <= hi_us``, or None past ``budget`` bytes.

    ``duckdb_sql()`` gives a DuckDB connection and the view's SQL, for sources Arrow does not read.
    """
    path = _parquet_file(fetch)
    if path is not None:
        table = _read_parquet(path, fetch, lo_us, hi_us, budget)
        if table is not NotImplemented:
            return table
    con, sql = duckdb_sql()
    try:
        reader = con.sql(sql).to_arrow_reader(READ_ROWS)
    except Exception as e:
        raise InvalidInput(f"Reading the source of {fetch.view.name!r} failed: {e}") from e
    import pyarrow as pa

    batches = []
    size = 0
    for batch in _batches(reader):
        batches.append(batch)
        size += batch.nbytes + ROW_OVERHEAD * batch.num_rows
        if size > budget:
            reader.close()
            return None
    return pa.Table.from_batches(batches, reader.schema).combine_chunks()


def _batches(reader: Any) -> Iterator[Any]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def _parquet_file(fetch: Fetch) -> Path | None:
    src = fetch.view.source
    if isinstance(src, PushSource):
        src = src.batch_source
    if not isinstance(src, FileSource) or "://" in src.path or any(c in src.path for c in "*?["):
        return None
    path = Path(src.path)
    return path if path.suffix.lower() == ".parquet" and path.is_file() else None


def _read_parquet(path: Path, fetch: Fetch, lo_us: int, hi_us: int, budget: int) -> Any:
    """The window of one Parquet file, or NotImplemented when DuckDB should read it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopline.features.arrays import bool_array, numpy_of, valid_of

    view = fetch.view
    src = view.source.batch_source if isinstance(view.source, PushSource) else view.source
    ts, created = src.timestamp_field, src.created_timestamp_column
    try:
        # Mapped, the compressed pages are read from the page cache in place instead of being
        # copied into fresh memory first: half the kernel time of a first read (page faults).
        pf = pq.ParquetFile(path, memory_map=True)
    except Exception as e:
        raise InvalidInput(f"Cannot read the source {str(path)!r} of {view.name!r}: {e}") from e
    schema = pf.schema_arrow
    wanted = [*view.join_keys, ts, *fetch.features, *([created] if created else [])]
    missing = [c for c in dict.fromkeys(wanted) if c not in schema.names]
    if missing:
        raise InvalidInput(
            f"The source of feature view {view.name!r} has no column(s) {missing}.",
            hint=f"It has {sorted(schema.names)}. Fix the view's schema, join keys or timestamp_field.",
        )
    times = [schema.field(c).type for c in (ts, created) if c]
    if not all(pa.types.is_timestamp(t) or pa.types.is_date(t) for t in times):
        return NotImplemented  # times as text (or numbers): DuckDB's casts decide what they mean
    lo = None if view.ttl_us is None else lo_us - view.ttl_us
    groups = _row_groups(pf, ts, schema.field(ts).type, lo, hi_us)
    columns = list(dict.fromkeys(wanted))
    meta = pf.metadata
    leaf = {meta.schema.column(j).path.split(".")[0]: j for j in range(meta.num_columns)}
    size = sum(
        meta.row_group(g).column(leaf[c]).total_uncompressed_size + ROW_OVERHEAD * meta.row_group(g).num_rows
        for g in groups
        for c in columns
        if c in leaf
    )
    if size > budget:
        return None
    table = pf.read_row_groups(groups, columns=columns) if groups else schema.empty_table().select(columns)
    stamps = _utc(table.column(ts))
    t = numpy_of(stamps)
    keep = valid_of(stamps) & (t <= hi_us)
    if lo is not None:
        keep &= t >= lo
    out = {k: table.column(k) for k in view.join_keys}
    out["__ts"] = stamps
    if created:
        out["__created"] = _utc(table.column(created))
    for j, f in enumerate(fetch.features):
        out[f"__f{j}"] = table.column(f)
    result = pa.table(out)
    if not keep.all():
        result = result.filter(bool_array(keep))
    return result.combine_chunks()


def _utc(column: Any) -> Any:
    """A timestamp or date column as ``timestamp[us, UTC]`` (naive times are UTC, as in DuckDB here)."""
    import pyarrow as pa

    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("us"))
    # A naive timestamp's value is its UTC instant: the cast only attaches the zone.
    return column.cast(pa.timestamp("us", tz="UTC"), safe=False)


def _row_groups(pf: Any, ts: str, ts_type: Any, lo: int | None, hi: int) -> list[int]:
    """The row groups whose time statistics overlap ``[lo, hi]`` (all of them without statistics)."""
    import pyarrow as pa

    meta = pf.metadata
    n = meta.num_row_groups
    j = next((k for k in range(meta.num_columns) if meta.schema.column(k).path == ts), None)
    if j is None or n == 1 or not pa.types.is_timestamp(ts_type):
        return list(range(n))
    unit = ts_type.unit
    keep = []
    for g in range(n):
        st = meta.row_group(g).column(j).statistics
        if st is None or not st.has_min_max or not isinstance(st.min_raw, int):
            keep.append(g)
            continue
        lo_g, hi_g = st.min_raw, st.max_raw
        if unit == "ns":
            lo_g, hi_g = lo_g // 1000, -(-hi_g // 1000)
        else:
            lo_g, hi_g = lo_g * _US[unit], hi_g * _US[unit]
        if hi_g >= (lo if lo is not None else hi_g) and lo_g <= hi:
            keep.append(g)
    return keep
