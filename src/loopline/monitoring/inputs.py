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
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    if path.is_dir():
        import pyarrow.dataset as ds  # type: ignore[import-untyped,unused-ignore]

        return ds.dataset(path, format="parquet").to_table()
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"Cannot tell the format of {path}: unknown extension {path.suffix or '(none)'}.",
            hint="Use a .parquet, .csv, .jsonl or .feather file, or a datasets:/ URI.",
        )
    if kind == "parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

        return pq.read_table(path)
    if kind == "csv":
        from pyarrow import csv

        opts = csv.ParseOptions(delimiter="\t") if path.suffix.lower() == ".tsv" else None
        return csv.read_csv(path, parse_options=opts)
    if kind == "json":
        from pyarrow import json

        return json.read_json(path)
    import pyarrow.feather as feather  # type: ignore[import-untyped,unused-ignore]

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


def to_table(data: Any, *, what: str, settings: Any = None) -> Any:
    """Any supported input as a ``pyarrow.Table``; ``what`` ("reference", "current") names it in errors."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

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
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

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
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    t = column.type
    if pa.types.is_null(t):
        return NumericValues(np.zeros(0), len(column), len(column), 0)
    if pa.types.is_temporal(t):
        column = pc.cast(column, pa.int64()) if not pa.types.is_timestamp(t) else column.cast(pa.int64())
    arr = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    finite = np.isfinite(arr)
    n_finite = int(np.count_nonzero(finite))
    n_nan = int(np.count_nonzero(np.isnan(arr))) if n_finite < arr.size else 0
    values = arr[finite] if n_finite < arr.size else arr.copy()
    values.sort()
    return NumericValues(values, arr.size, n_nan, arr.size - n_finite - n_nan)


def category_counts(column: Any) -> tuple[list[str], NDArray[np.int64], int]:
    """(categories, counts, missing) of an Arrow column, categories as strings, most frequent first."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    if pa.types.is_null(column.type):
        return [], np.zeros(0, np.int64), len(column)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    vc = pc.value_counts(column)
    values = vc.field("values")
    counts = np.asarray(vc.field("counts").to_numpy(zero_copy_only=False), np.int64)
    valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), bool)
    missing = int(counts[~valid].sum())
    names = [str(v) for v in values.filter(pa.array(valid)).to_pylist()]
    counts = counts[valid]
    order = np.lexsort((np.array(names, dtype=object).astype(str), -counts)) if names else np.zeros(0, int)
    return [names[i] for i in order], counts[order], missing
