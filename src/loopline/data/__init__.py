"""Data versioning: content-addressed dataset versions, their profiles, lineage and validation.

A dataset version (``datasets:/customers/3``, ``datasets:/customers@prod``) is an immutable
manifest of BLAKE3-addressed files plus what was learnt reading them (schema, rows, a column
profile). Adding unchanged content creates no version; changing one file of many stores only
that file. Versions move between machines with ``push``/``pull``.

>>> import loopline.data as data                                  # doctest: +SKIP
>>> v = data.log_dataset("customers.parquet", name="customers")   # doctest: +SKIP
>>> df = data.load_dataset(v.uri)                                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

from loopline.lazy import lazy_names

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (`data status` is lean)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    import pyarrow as pa
    import pyarrow.dataset as pads

    from loopline.data.client import AddResult, DataClient
    from loopline.data.io import OutputFormat
    from loopline.data.profile import diff_profiles, profile_table
    from loopline.data.types import DatasetVersion
    from loopline.data.validation import Suite, expect, infer_suite, validate

# Loaded on first use, so `import loopline.data.validation` does not pay for SQLAlchemy, nor
# `loopline data status` for anything it does not use.
_LAZY = {
    "AddResult": "loopline.data.client",
    "DataClient": "loopline.data.client",
    "DatasetVersion": "loopline.tracking.types",
    "Suite": "loopline.data.validation",
    "diff_profiles": "loopline.data.profile",
    "expect": "loopline.data.validation",
    "infer_suite": "loopline.data.validation",
    "profile_table": "loopline.data.profile",
    "validate": "loopline.data.validation",
}


__getattr__ = lazy_names(__name__, _LAZY)


def _client(client: DataClient | None) -> DataClient:
    """The given client, or one on the same stores as ``loopline.set_tracking_uri`` chose."""
    if client is not None:
        return client
    from loopline.data.client import DataClient
    from loopline.tracking.fluent import default_client

    return DataClient(context=default_client().context)  # its database engine or HTTP client, shared


def log_dataset(
    data: str | Path | Any,
    name: str | None = None,
    *,
    description: str = "",
    context: str = "",
    client: DataClient | None = None,
) -> DatasetVersion:
    """Version ``data`` (a path, or a pandas/polars/Arrow frame) as ``name``; inside an active run,
    record the version as the run's input (``context``: e.g. "training").

    ``data`` may also name an existing version (``datasets:/customers@prod``): nothing is added,
    and the active run records that version as its input.

    Example:
        >>> v = loopline.log_dataset(df, name="customers")   # doctest: +SKIP
        >>> v.uri
        'datasets:/customers/1'
    """
    from loopline.errors import InvalidInput
    from loopline.tracking.fluent import active_run

    client = _client(client)
    if isinstance(data, str) and data.startswith("datasets:/"):
        version = client.get_version(data)
    elif name is None:
        raise InvalidInput("log_dataset needs a name for new data.", hint='Pass name="customers".')
    else:
        version = client.add(data, name, description=description).version
    run = active_run()
    if run is not None:
        client.link_to_run(version, run.info.run_id, context)
    return version


def get_dataset_version(uri: str, *, client: DataClient | None = None) -> DatasetVersion:
    """The version ``uri`` names (``datasets:/name/3``, ``datasets:/name@alias``, ``datasets:/name``)."""
    return _client(client).get_version(uri)


def load_dataset(uri: str, format: OutputFormat = "pandas", *, client: DataClient | None = None) -> Any:
    """A tabular version as a pandas or polars DataFrame or an Arrow table."""
    return _client(client).load(uri, format)


def scan_dataset(uri: str, *, client: DataClient | None = None) -> pads.Dataset:
    """A tabular version as a lazily read ``pyarrow.dataset.Dataset`` (for data bigger than memory)."""
    return _client(client).scan(uri)


def read_table(source: str | Path, *, client: DataClient | None = None) -> pa.Table:
    """A dataset URI or a Parquet/CSV/JSON file as an Arrow table, with clear errors."""
    if isinstance(source, str) and source.startswith("datasets:/"):
        return _client(client).read_table(source)
    from loopline.data.io import read_file

    return read_file(source)


def record_validation(uri: str, result: Mapping[str, Any], *, client: DataClient | None = None) -> int:
    """Store a validation result with the version ``uri`` names."""
    return _client(client).record_validation(uri, result)


__all__ = [
    "AddResult",
    "DataClient",
    "DatasetVersion",
    "Suite",
    "diff_profiles",
    "expect",
    "get_dataset_version",
    "infer_suite",
    "load_dataset",
    "log_dataset",
    "profile_table",
    "read_table",
    "record_validation",
    "scan_dataset",
    "validate",
]
