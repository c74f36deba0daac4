"""Reading tabular data: format detection, Arrow datasets over files or blobs, clear errors.

Everything tabular goes through Arrow: Parquet, CSV and (newline-delimited or array) JSON are
read by pyarrow, streamed as a ``pyarrow.dataset.Dataset`` where the format allows, and handed
to pandas or polars only at the edge, when the caller asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopline.errors import InvalidInput, MissingExtra

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

Format = Literal["parquet", "csv", "json", "files"]
OutputFormat = Literal["pandas", "polars", "arrow"]
_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


def format_of(paths: Sequence[str]) -> Format:
    """The tabular format all ``paths`` share by suffix, or ``files`` (any bytes)."""
    kinds = {_SUFFIXES.get(os.path.splitext(p)[1].lower()) for p in paths}  # pathlib: 10x slower
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is not None:
            return kind
    return "files"


def dataset(paths: Sequence[str], fmt: Format, *, filesystem: Any = None) -> pads.Dataset:
    """An Arrow dataset over ``paths`` (local files, or keys of ``filesystem``), read lazily."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    if fmt == "files":
        raise InvalidInput(
            "This data is not tabular (it is a set of files).", hint="Use `loopline data get` instead."
        )
    try:
        if fmt == "parquet":
            return pads.dataset(list(paths), format="parquet", filesystem=filesystem)
        if fmt == "csv":
            return pads.dataset(list(paths), format=_csv_format(paths), filesystem=filesystem)
        return pads.dataset([_read_json(p, filesystem) for p in paths])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, ValueError) as e:
        raise InvalidInput(
            f"Could not read {fmt} data from {_name(paths)}: {e}",
            hint=f"Check that the file is valid {fmt}.",
        ) from None


def _csv_format(paths: Sequence[str]) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.dataset as pads

    delimiter = "\t" if all(str(p).lower().endswith(".tsv") for p in paths) else ","
    return pads.CsvFileFormat(parse_options=pacsv.ParseOptions(delimiter=delimiter))


def _read_json(path: str, filesystem: Any) -> pa.Table:
    """Newline-delimited JSON via Arrow; a JSON array of records via orjson."""
    import orjson
    import pyarrow as pa
    import pyarrow.json as pajson

    opener = filesystem.open_input_file if filesystem is not None else (lambda p: open(p, "rb"))  # noqa: SIM115
    with opener(path) as f:
        head = f.read(1 << 16).lstrip()
    if head.startswith(b"["):
        with opener(path) as f:
            records = orjson.loads(f.read())
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError("a JSON file must hold an array of objects, or one object per line")
        return pa.Table.from_pylist(records)
    with opener(path) as f:
        return pajson.read_json(f)


def read_file(path: str | Path) -> pa.Table:
    """A whole Parquet/CSV/JSON file (or a folder of one of them) as an Arrow table."""
    import pyarrow as pa

    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"No file at {str(p)!r}.", hint="Check the path.")
    files = sorted(str(f) for f in p.rglob("*") if f.is_file()) if p.is_dir() else [str(p)]
    fmt = format_of(files)
    if fmt == "files":
        raise InvalidInput(
            f"Cannot tell the format of {str(p)!r}.", hint="Use a .parquet, .csv, .tsv, .json or .jsonl file."
        )
    try:
        return dataset(files, fmt).to_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise InvalidInput(f"Could not read {str(p)!r}: {e}", hint=f"Check that it is valid {fmt}.") from None


def convert(table: pa.Table, fmt: OutputFormat) -> Any:
    """``table`` as pandas, polars or Arrow."""
    if fmt == "arrow":
        return table
    if fmt == "pandas":
        try:
            return table.to_pandas()
        except ModuleNotFoundError as e:
            raise MissingExtra("pandas", "sklearn") from e
    if fmt == "polars":
        try:
            import polars as pl
        except ModuleNotFoundError as e:
            raise MissingExtra("polars", "data") from e
        return pl.from_arrow(table)
    raise InvalidInput(f"Unknown output format {fmt!r}.", hint="Use 'pandas', 'polars' or 'arrow'.")


def to_arrow(data: Any) -> pa.Table:
    """A pandas/polars frame or an Arrow table (or record batch) as an Arrow table."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return data.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InvalidInput(
        f"Cannot version a {type(data).__name__}.",
        hint="Pass a path, a pandas or polars DataFrame, or a pyarrow Table.",
    )


def _name(paths: Sequence[str]) -> str:
    return repr(str(paths[0])) if len(paths) == 1 else f"{len(paths)} files"
