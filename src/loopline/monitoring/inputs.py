"""What ``drift`` accepts, turned into Arrow tables and NumPy columns, with errors that name the culprit.

Inputs: a path to a Parquet, CSV, JSON-lines, Feather/Arrow file or a folder of Parquet files; a dataset
URI (``datasets:/customers/3``, read by ``loopline.data.read_table``); a ``pyarrow.Table``; a pandas or
polars DataFrame (or LazyFrame); a mapping of column name → values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from loopline.errors import InvalidInput, NotFound

Kind = Literal["numerical", "categorical"]
_READERS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".feather": "feather",
    ".arrow": "feather",
    ".ipc": "feather",
}


def describe(data: Any) -> str:
    """How an input is named in messages: its path or URI, else its type."""
    if isinstance(data, str | os.PathLike):
        return str(data)
    return type(data).__name__


def _read_file(path: Path) -> Any:
    import pyarrow as pa

    if path.is_dir():
        import pyarrow.dataset as ds

        return ds.dataset(path, format="parquet").to_table()
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"Cannot tell the format of {path}: unknown extension {path.suffix or '(none)'}.",
            hint="Use a .parquet, .csv, .jsonl or .feather file, or a datasets:/ URI.",
        )
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if kind == "csv":
        from pyarrow import csv

        opts = csv.ParseOptions(delimiter="\t") if path.suffix.lower() == ".tsv" else None
        return csv.read_csv(path, parse_options=opts)
    if kind == "json":
        from pyarrow import json

        return json.read_json(path)
    import pyarrow.feather as feather

    table: pa.Table = feather.read_table(path)
    return table


def read_path(source: str | os.PathLike[str], settings: Any = None) -> Any:
    """A file, a folder of Parquet files or a ``datasets:/`` URI as a ``pyarrow.Table``.

    Dataset URIs are read by ``loopline.data`` on the stores ``settings`` name (default: the
    environment's).
    """
    text = str(source)
    if text.startswith("datasets:/"):
        try:
            from loopline import data
        except ImportError:
            raise InvalidInput(
                f"Cannot read {text}: dataset versioning is not available in this installation.",
                hint="Pass a Parquet or CSV file instead.",
            ) from None
        client = data.DataClient(settings) if settings is not None else None
        return data.read_table(text, client=client)
    path = Path(text).expanduser()
    if not path.exists():
        raise NotFound(f"No such file: {path}.", hint="Check the path, or pass a datasets:/name/version URI.")
    try:
        return _read_file(path)
    except InvalidInput:
        raise
    except Exception as e:  # pyarrow's own errors, worded for a person
        raise InvalidInput(
            f"Could not read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}.",
            hint="Check that the file is complete and in the format its extension says.",
        ) from None


class Columns:
    """A table whose columns are read when asked for: a Parquet file one column at a time, else in memory.

    A drift check needs each column once, so a Parquet file is read column by column (string columns
    as dictionaries: their codes are counted, the strings never decoded row by row), in the threads
    that test the columns, with one column per thread in memory instead of the whole table.
    """

    def __init__(self, names: list[str], types: dict[str, Any], num_rows: int, read: Any) -> None:
        self.column_names = names
        self.types = types  # name -> Arrow type as stored (a string column stays ``string`` here)
        self.num_rows = num_rows
        self._read = read

    def column(self, name: str) -> Any:
        """The column as a ``pyarrow.ChunkedArray`` (string Parquet columns come dictionary-encoded)."""
        return self._read(name)

    @classmethod
    def of_table(cls, table: Any) -> Columns:
        names = list(table.column_names)
        return cls(names, {f.name: f.type for f in table.schema}, table.num_rows, table.column)


def _is_stringlike(arrow_type: Any) -> bool:
    import pyarrow as pa

    t = arrow_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _parquet_columns(path: Path) -> Columns:
    import pyarrow.parquet as pq

    def unreadable(e: Exception) -> InvalidInput:
        return InvalidInput(
            f"Could not read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}.",
            hint="Check that the file is complete and in the format its extension says.",
        )

    try:
        with pq.ParquetFile(path) as f:  # the footer only: row count, schema, where each column is
            meta = f.metadata
        schema = meta.schema.to_arrow_schema()
    except Exception as e:  # pyarrow's own errors, worded for a person
        raise unreadable(e) from None

    def read(name: str) -> Any:
        # A reader per call: threads read different columns at once, sharing the parsed footer.
        dictionary = [name] if _is_stringlike(schema.field(name).type) else None
        try:
            with pq.ParquetFile(path, metadata=meta, read_dictionary=dictionary) as f:
                return f.read(columns=[name], use_threads=False).column(0)
        except Exception as e:
            raise unreadable(e) from None

    return Columns(list(schema.names), {f.name: f.type for f in schema}, meta.num_rows, read)


def open_columns(data: Any, *, what: str, settings: Any = None) -> Columns:
    """Like :func:`to_table`, but a single Parquet file is read lazily, column by column."""
    if isinstance(data, str | os.PathLike) and not str(data).startswith("datasets:/"):
        path = Path(str(data)).expanduser()
        if path.is_file() and _READERS.get(path.suffix.lower()) == "parquet":
            cols = _parquet_columns(path)
            if not cols.column_names:
                raise InvalidInput(f"The {what} data ({describe(data)}) has no columns.")
            if cols.num_rows == 0:
                raise InvalidInput(
                    f"The {what} data ({describe(data)}) has no rows.", hint="Nothing to compare."
                )
            return cols
    return Columns.of_table(to_table(data, what=what, settings=settings))


def to_table(data: Any, *, what: str, settings: Any = None) -> Any:
    """Any supported input as a ``pyarrow.Table``; ``what`` ("reference", "current") names it in errors."""
    import pyarrow as pa

    if isinstance(data, str | os.PathLike):
        table = read_path(data, settings)
    elif isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif type(data).__module__.startswith("pandas"):
        table = pa.Table.from_pandas(data, preserve_index=False)
    elif type(data).__module__.startswith("polars"):
        table = (data.collect() if hasattr(data, "collect") else data).to_arrow()
    elif isinstance(data, Mapping):
        try:
            table = pa.table({str(k): v for k, v in data.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise InvalidInput(f"The {what} mapping is not a table of equal-length columns: {e}.") from None
    else:
        raise InvalidInput(
            f"Cannot use a {type(data).__name__} as the {what} data.",
            hint="Pass a file path, a datasets:/ URI, or a pandas, polars or Arrow table.",
        )
    if table.num_columns == 0:
        raise InvalidInput(f"The {what} data ({describe(data)}) has no columns.")
    if table.num_rows == 0:
        raise InvalidInput(f"The {what} data ({describe(data)}) has no rows.", hint="Nothing to compare.")
    return table


def kind_of(arrow_type: Any) -> Kind | None:
    """numerical for numbers, dates and times; categorical for strings, booleans, the rest; None for null."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_null(t):
        return None
    if pa.types.is_boolean(t):
        return "categorical"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_temporal(t):
        return "numerical"
    return "categorical"


@dataclass(frozen=True)
class NumericValues:
    """A numerical column split into its sorted finite values and what was left out."""

    values: NDArray[np.float64]  # finite values, sorted
    n_rows: int
    n_missing: int  # null or NaN
    n_infinite: int


def numeric_values(column: Any) -> NumericValues:
    """Sorted finite float64 values of an Arrow column; nulls and NaN counted as missing, ±inf apart."""
    import pyarrow as pa

    t = column.type
    if pa.types.is_null(t):
        return NumericValues(np.zeros(0), len(column), len(column), 0)
    if not (pa.types.is_floating(t) or pa.types.is_integer(t)):  # dates, times, decimals: cast by Arrow
        import pyarrow.compute as pc

        if pa.types.is_temporal(t):  # as their integer ticks (days, seconds, …: the unit is the type's)
            column = pc.cast(column, pa.int32() if t.bit_width == 32 else pa.int64())
        else:
            column = pc.cast(column, pa.float64())
    arr = np.empty(len(column), np.float64)  # our own copy: sorted in place below
    start = 0
    for chunk in column.chunks:
        part = arr[start : start + len(chunk)]
        part[:] = _primitive(chunk)
        valid = _validity(chunk)
        if valid is not None:
            part[~valid] = np.nan
        start += len(chunk)
    finite = np.isfinite(arr)
    n_finite = int(np.count_nonzero(finite))
    n_nan = int(np.count_nonzero(np.isnan(arr))) if n_finite < arr.size else 0
    values = arr[finite] if n_finite < arr.size else arr
    values.sort()
    return NumericValues(values, arr.size, n_nan, arr.size - n_finite - n_nan)


def _primitive(array: Any) -> NDArray[Any]:
    """The values of a numeric Arrow array as a NumPy view (slots under nulls are undefined).

    Read off the data buffer: ``Array.to_numpy`` would import pandas (~0.3 s in a fresh process).
    """
    import pyarrow as pa

    t = array.type
    code = "f" if pa.types.is_floating(t) else "i" if pa.types.is_signed_integer(t) else "u"
    dtype = np.dtype(f"{code}{t.bit_width // 8}")
    if len(array) == 0:
        return np.zeros(0, dtype)
    return np.frombuffer(array.buffers()[1], dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _validity(array: Any) -> NDArray[np.bool_] | None:
    """Which slots of an Arrow array hold a value; None when none is null."""
    if array.null_count == 0:
        return None
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].view(np.bool_)


def category_counts(column: Any) -> tuple[list[str], NDArray[np.int64], int]:
    """(categories, counts, missing) of an Arrow column, categories as strings, most frequent first."""
    import pyarrow as pa

    if pa.types.is_null(column.type):
        return [], np.zeros(0, np.int64), len(column)
    if pa.types.is_dictionary(column.type) and _is_stringlike(column.type.value_type):
        return _dictionary_counts(column)
    import pyarrow.compute as pc

    if not _is_stringlike(column.type):
        column = pc.cast(column, pa.string())
    vc = pc.value_counts(column)
    values = vc.field("values").to_pylist()
    counts = _primitive(vc.field("counts")).astype(np.int64)
    valid = np.array([v is not None for v in values], bool)
    missing = int(counts[~valid].sum())
    cats, ordered = _ordered([str(v) for v in values if v is not None], counts[valid])
    return cats, ordered, missing


def _ordered(names: list[str], counts: NDArray[np.int64]) -> tuple[list[str], NDArray[np.int64]]:
    """Most frequent first, ties by name."""
    if not names:
        return [], np.zeros(0, np.int64)
    order = np.lexsort((np.array(names, dtype=object).astype(str), -counts))
    return [names[i] for i in order], counts[order]


def _dictionary_counts(column: Any) -> tuple[list[str], NDArray[np.int64], int]:
    """``category_counts`` of a dictionary-encoded string column: a ``bincount`` of its codes per chunk.

    Chunks (Parquet row groups) may each carry their own dictionary, so counts are merged by value.
    """
    merged: dict[str, int] = {}
    missing = 0
    for chunk in column.chunks:
        codes = _primitive(chunk.indices)
        valid = _validity(chunk)
        if valid is not None:
            missing += chunk.null_count
            codes = codes[valid]
        counts = np.bincount(codes.astype(np.intp, copy=False), minlength=len(chunk.dictionary))
        names = chunk.dictionary.to_pylist()
        for i in np.flatnonzero(counts).tolist():
            if names[i] is None:  # a null inside the dictionary is missing too
                missing += int(counts[i])
            else:
                merged[names[i]] = merged.get(names[i], 0) + int(counts[i])
    cats, counts_out = _ordered(list(merged), np.fromiter(merged.values(), np.int64, len(merged)))
    return cats, counts_out, missing
