"""Materialisation: the latest row per entity of a time window, streamed into the online store.

DuckDB computes ``arg_max(row, event time)`` per entity key (a hash aggregate: ~0.09 s for 1M rows
over 100k keys, against 0.6 s for ``row_number() OVER (…)`` or ``DISTINCT ON``), sorted by key,
and hands the result over in record batches of ``batch_rows``: Python never holds more than one
batch, DuckDB spills past its ``memory_limit``. That is the whole difference from materialisers
that load the window into one DataFrame (Feast's most-reported failure).

Each committed batch records the last key written in the metadata store; a job that dies is
resumed by running the same window again: the query restarts after that key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from loopline.features.definitions import FeatureView
from loopline.features.online import OnlineStore
from loopline.features.online.codec import RowCodec, encode_key, key_part
from loopline.features.sources import ident, relation

if TYPE_CHECKING:
    import pyarrow as pa

    from loopline.config import Settings

BATCH_ROWS = 50_000


@dataclass(frozen=True)
class MaterializeResult:
    """What one view's materialisation did."""

    view: str
    start_us: int
    end_us: int
    rows: int
    resumed_from: list[Any] | None = None


def codec_for(view: FeatureView) -> RowCodec:
    return RowCodec([f.dtype for f in view.schema])


def latest_rows_sql(
    con: Any,
    view: FeatureView,
    start_us: int | None,
    end_us: int,
    cursor: Sequence[Any] | None,
    settings: Settings | None,
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) for the newest row of each key in ``[start_us, end_us]``, by key."""
    src = view.source
    ts = f"CAST({ident(src.timestamp_field)} AS TIMESTAMPTZ)"
    where = [f"{ts} <= make_timestamptz(?::BIGINT)"]
    params: list[Any] = [end_us]
    if start_us is not None:
        where.append(f"{ts} >= make_timestamptz(?::BIGINT)")
        params.append(start_us)
    keys = [ident(k) for k in view.join_keys]
    if cursor:  # resume after the last key a previous attempt committed (keys go out in order)
        where.append(f"({', '.join(keys)}) > ({', '.join('?' for _ in keys)})")
        params.extend(cursor)
    rel = relation(con, src, "__mat_src", settings)
    order_by: str = ts
    if src.created_timestamp_column:
        order_by = f"{{'t': {ts}, 'c': CAST({ident(src.created_timestamp_column)} AS TIMESTAMPTZ)}}"
    fields = ", ".join([f"'__ts': {ts}", *(f"'{f}': {ident(f)}" for f in view.features)])
    inner = (
        f"SELECT {', '.join(keys)}, arg_max({{{fields}}}, {order_by}) AS __r FROM {rel} "
        f"WHERE {' AND '.join(where)} GROUP BY ALL"
    )
    out = ", ".join([*keys, "__r.__ts AS __ts", *(f"__r.{ident(f)} AS {ident(f)}" for f in view.features)])
    return f"SELECT {out} FROM ({inner}) ORDER BY {', '.join(keys)}", params


def encode_keys(columns: Sequence[Any]) -> list[str]:
    """Join-key columns as the online store's text keys (see :mod:`~loopline.features.online.codec`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(columns) == 1 and (pa.types.is_integer(columns[0].type) or pa.types.is_string(columns[0].type)):
        return list(pc.cast(columns[0], pa.string()).to_pylist())
    lists = [c.to_pylist() for c in columns]
    if len(columns) == 1:
        return [key_part(v) for v in lists[0]]
    return [encode_key(vals) for vals in zip(*lists, strict=True)]


class RowBatch(Sequence[tuple[str, int, bytes]]):
    """Online rows ``(key, ts_us, payload)`` kept as three lists, zipped only while they are written.

    A list of 100k tuples is 100k objects for the garbage collector to track, and its collections
    cost a fifth of a materialisation; ``zip`` hands ``executemany`` one reused tuple instead.
    """

    __slots__ = ("keys", "micros", "payloads")

    def __init__(self, keys: list[str], micros: list[int], payloads: list[bytes]) -> None:
        self.keys, self.micros, self.payloads = keys, micros, payloads

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[tuple[str, int, bytes]]:
        return zip(self.keys, self.micros, self.payloads, strict=True)

    @overload
    def __getitem__(self, i: int) -> tuple[str, int, bytes]: ...
    @overload
    def __getitem__(self, i: slice) -> RowBatch: ...
    def __getitem__(self, i: int | slice) -> tuple[str, int, bytes] | RowBatch:
        if isinstance(i, slice):
            return RowBatch(self.keys[i], self.micros[i], self.payloads[i])
        return self.keys[i], self.micros[i], self.payloads[i]


def encode_rows(keys: list[str], ts: Any, values: Sequence[Any], codec: RowCodec) -> RowBatch:
    """Online rows ``(key, ts_us, payload)`` from keys, an Arrow timestamp column and feature columns."""
    import pyarrow as pa

    from loopline.features.arrays import numpy_of

    micros = numpy_of(ts.cast(pa.timestamp("us", tz="UTC"))).tolist()
    payloads = codec.encode_columns(values)
    if not len(keys) == len(micros) == len(payloads):
        raise ValueError("keys, times and values differ in length")
    return RowBatch(keys, micros, payloads)


def stream_view(
    con: Any,
    view: FeatureView,
    online: OnlineStore,
    *,
    start_us: int | None,
    end_us: int,
    cursor: Sequence[Any] | None = None,
    settings: Settings | None = None,
    batch_rows: int = BATCH_ROWS,
    on_batch: Callable[[int, list[Any]], None] | None = None,
) -> int:
    """Write the window's latest rows of ``view`` into ``online``; returns the rows written.

    ``on_batch(rows_so_far, last_key)`` runs after each batch is committed (progress, resumption).
    """
    sql, params = latest_rows_sql(con, view, start_us, end_us, cursor, settings)
    codec = codec_for(view)
    reader = con.sql(sql, params=params).to_arrow_reader(batch_rows)
    total = 0
    width = len(view.features)
    nkeys = len(view.join_keys)
    for batch in _batches(reader):
        if batch.num_rows == 0:
            continue
        keys = encode_keys([batch.column(i) for i in range(nkeys)])
        values = [batch.column(nkeys + 1 + j) for j in range(width)]
        total += online.write(view.name, encode_rows(keys, batch.column(nkeys), values, codec))
        if on_batch is not None:
            on_batch(total, [batch.column(i)[batch.num_rows - 1].as_py() for i in range(nkeys)])
    return total


def _batches(reader: Any) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
