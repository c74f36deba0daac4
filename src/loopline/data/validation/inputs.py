"""What a suite can run against: frames, Arrow tables and datasets, files and dataset URIs.

Each input becomes a :class:`Source`: its schema first (so that a suite naming a missing column
fails before any data is read), then the columns the suite needs, and only those where the
format allows (Parquet files and dataset versions are read column by column).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.data.profile import to_polars
from loopline.errors import InvalidInput, NotFound, require

if TYPE_CHECKING:
    import polars as pl

_PARQUET = (".parquet", ".pq")


@dataclass(frozen=True)
class Source:
    """A table to validate: ``label`` names it in reports; ``uri`` is set for dataset versions."""

    label: str
    schema: dict[str, Any]  # column -> polars dtype
    read: Callable[[list[str] | None], Any]  # columns (None: all) -> polars DataFrame
    uri: str | None = None

    def load(self, columns: list[str] | None = None) -> Any:
        """The data as a polars DataFrame, with only ``columns`` when given."""
        frame = self.read(columns)
        return frame if columns is None else frame.select(columns)


def open_source(data: Any, *, label: str | None = None, client: Any = None) -> Source:
    """A :class:`Source` over ``data``: a path, a ``datasets:/`` URI, a frame, or an Arrow table/dataset.

    ``client`` (a ``loopline.data.DataClient``) resolves dataset URIs; default: the environment's.
    """
    require("polars", "data")
    import polars as pl

    if isinstance(data, str) and data.startswith("datasets:"):
        return _dataset_version(data, client)
    if isinstance(data, str | Path):
        return _file(Path(data), label)
    if (
        type(data).__module__.startswith("pyarrow")
        and hasattr(data, "to_batches")
        and hasattr(data, "count_rows")
    ):
        return _arrow_dataset(data, label or "pyarrow dataset")
    if isinstance(data, pl.LazyFrame):
        schema = dict(data.collect_schema())
        return Source(
            label or "polars LazyFrame", schema, lambda cols: data.select(cols or pl.all()).collect()
        )
    frame = to_polars(data)
    return Source(
        label or f"{type(data).__module__.split('.')[0]} {type(data).__name__}",
        dict(frame.schema),
        lambda cols: frame,
    )


def _dataset_version(uri: str, client: Any) -> Source:
    try:
        from loopline.data import get_dataset_version, scan_dataset
    except ImportError:  # pragma: no cover - while data versioning is being built
        raise InvalidInput(
            f"Cannot read {uri}: this Loopline has no data versioning.", hint="Validate a file instead."
        ) from None
    version = get_dataset_version(uri, client=client)
    return _arrow_dataset(scan_dataset(version.uri, client=client), version.uri, uri=version.uri)


def _arrow_dataset(ds: Any, label: str, uri: str | None = None) -> Source:
    import polars as pl

    schema = dict(_frame(pl.from_arrow(ds.schema.empty_table())).schema)
    return Source(label, schema, lambda cols: pl.from_arrow(ds.to_table(columns=cols)), uri=uri)


def _file(path: Path, label: str | None) -> Source:
    import polars as pl

    if not path.exists():
        raise NotFound(f"No file or folder at {str(path)!r}.", hint="Check the path.")
    files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
    name = label or str(path)
    if files and all(f.suffix.lower() in _PARQUET for f in files):
        # Polars reads Parquet natively and only the columns asked for.
        try:
            lf = pl.scan_parquet([str(f) for f in sorted(files)])
            schema = dict(lf.collect_schema())
        except (pl.exceptions.PolarsError, OSError) as e:
            raise InvalidInput(
                f"Could not read {str(path)!r}: {e}", hint="Check that it is valid Parquet."
            ) from None

        def read(cols: list[str] | None) -> Any:
            try:
                return lf.select(cols if cols is not None else pl.all()).collect()
            except (pl.exceptions.PolarsError, OSError) as e:
                raise InvalidInput(
                    f"Could not read {str(path)!r}: {e}", hint="Check that it is valid Parquet."
                ) from None

        return Source(name, schema, read)
    from loopline.data import read_table

    frame = _frame(pl.from_arrow(read_table(path)))
    return Source(name, dict(frame.schema), lambda cols: frame)


def reference_values(dataset: str, column: str, *, client: Any = None) -> Any:
    """The distinct non-null values of ``column`` in ``dataset`` (a file or a dataset URI)."""
    source = open_source(dataset, client=client)
    if column not in source.schema:
        raise InvalidInput(
            f"The referenced dataset {dataset} has no column {column!r}.",
            hint=f"Its columns are: {', '.join(source.schema)}.",
        )
    return source.load([column]).get_column(column).drop_nulls().unique()


def _frame(converted: pl.DataFrame | pl.Series) -> pl.DataFrame:
    """``pl.from_arrow`` of a table: a frame (its type also allows the Series an array gives)."""
    import polars as pl

    assert isinstance(converted, pl.DataFrame)
    return converted
