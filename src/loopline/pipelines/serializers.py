"""How step outputs are stored and read back, chosen by the output's type.

=============  ======================================  ===========================================
serializer     outputs                                 stored as
=============  ======================================  ===========================================
``json``       None, bool, int, float, str, and lists,  JSON; up to 64 KiB inline in the step's
               tuples and str-keyed dicts of them      row, beyond that in the artifact store
``pandas``     ``pandas.DataFrame``                    Parquet (the index kept)
``polars``     ``polars.DataFrame``                    Parquet
``arrow``      ``pyarrow.Table``                       Parquet
``numpy``      ``numpy.ndarray`` (not of objects)      ``.npy``, without pickle
``model``      anything a registry flavor saves         MLflow's model layout (``loopline.registry``)
               (scikit-learn, XGBoost, LightGBM, …,
               any object with ``predict``)
``pickle``     anything picklable, only when a step    pickle
               asks for it (``@step(serializer=…)``)
=============  ======================================  ===========================================

Every output's digest is the BLAKE3 of its bytes (of its files' digests for a model): that is
what a downstream step's cache key sees. Outputs live under ``pipelines/<name>/<run>/<node>/…`` in
the artifact store; only the step's row in the metadata store makes one count (see
``loopline.pipelines.store``).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.artifacts import ArtifactStore
from loopline.errors import InvalidInput

INLINE_LIMIT = 64 * 1024
_EXT = {"json": "json", "pandas": "parquet", "polars": "parquet", "arrow": "parquet", "numpy": "npy"}


@dataclass
class Serialized:
    serializer: str
    digest: str
    size: int
    path: str = ""  # artifact path ("" when inline)
    inline: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _blake3(data: bytes) -> str:
    import blake3

    return str(blake3.blake3(data).hexdigest())


def _type_name(value: Any) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


def is_plain(value: Any, depth: int = 0) -> bool:
    """True for JSON data that reads back equal (tuples read back as lists)."""
    if depth > 64:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(is_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v, depth + 1) for k, v in value.items())
    return False


def kind_of(value: Any) -> str:
    """The serializer for ``value`` (no library is imported to decide)."""
    t = type(value)
    root, cls = t.__module__.split(".", 1)[0], t.__qualname__
    if (root, cls) == ("pandas", "DataFrame"):
        return "pandas"
    if (root, cls) == ("polars", "DataFrame"):
        return "polars"
    if (root, cls) == ("pyarrow", "Table"):
        return "arrow"
    if (root, cls) == ("numpy", "ndarray"):
        return "numpy"
    if is_plain(value):
        return "json"
    return "model"


def dump(
    value: Any, store: ArtifactStore, prefix: str, *, step: str, forced: str | None = None
) -> Serialized:
    """Store ``value`` under ``prefix``; raise ``InvalidInput`` naming ``step`` when it cannot be stored."""
    kind = forced or kind_of(value)
    try:
        if kind == "json":
            if not is_plain(value):
                raise TypeError(f"{_type_name(value)} is not JSON data")
            text = json.dumps(value, sort_keys=True, separators=(",", ":"))
            data = text.encode()
            if len(data) <= INLINE_LIMIT:
                return Serialized("json", _blake3(data), len(data), inline=text)
            return _put(store, data, f"{prefix}/output.json", "json")
        if kind == "model":
            return _dump_model(value, store, prefix, step)
        if kind == "pickle":
            return _put(
                store, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), f"{prefix}/output.pkl", kind
            )
        buf = io.BytesIO()
        meta: dict[str, Any] = {}
        if kind == "pandas":
            value.to_parquet(buf, engine="pyarrow")
            meta = {"rows": len(value), "columns": [str(c) for c in value.columns]}
        elif kind == "polars":
            value.write_parquet(buf)
            meta = {"rows": value.height, "columns": list(value.columns)}
        elif kind == "arrow":
            import pyarrow.parquet as pq

            pq.write_table(value, buf)
            meta = {"rows": value.num_rows, "columns": list(value.column_names)}
        elif kind == "numpy":
            import numpy as np

            np.save(buf, value, allow_pickle=False)
            meta = {"shape": list(value.shape), "dtype": str(value.dtype)}
        else:
            raise InvalidInput(f"Unknown serializer {kind!r} for step {step!r}.")
        out = _put(store, buf.getvalue(), f"{prefix}/output.{_EXT[kind]}", kind)
        out.meta = meta
        return out
    except InvalidInput:
        raise
    except Exception as e:
        raise InvalidInput(
            f"Step {step!r} returned a {_type_name(value)} that cannot be stored as {kind}: {e}.",
            hint="Return a DataFrame, Arrow table, NumPy array, JSON data or a model; or opt in to "
            "pickling with @step(serializer='pickle').",
        ) from None


def _put(store: ArtifactStore, data: bytes, path: str, kind: str) -> Serialized:
    info = store.put_bytes(data, path)
    return Serialized(kind, info.digest or _blake3(data), len(data), path=path)


def _dump_model(value: Any, store: ArtifactStore, prefix: str, step: str) -> Serialized:
    from loopline.registry import flavors
    from loopline.registry.models import digests_of, save_model

    try:
        flavors.for_model(value)
    except InvalidInput:
        raise InvalidInput(
            f"Step {step!r} returned a {_type_name(value)}, which Loopline cannot serialise.",
            hint="Return a DataFrame, Arrow table, NumPy array, JSON data (str-keyed dicts, lists, "
            "numbers, strings) or a model with predict(); or opt in to pickling with "
            "@step(serializer='pickle').",
        ) from None
    with tempfile.TemporaryDirectory(prefix="loopline-step-") as tmp:
        directory = Path(tmp) / "model"
        meta = save_model(value, directory)
        files = digests_of(directory)
        path = f"{prefix}/model"
        size = 0
        for rel in sorted(files):
            size += os.path.getsize(directory / rel)
            store.put_file(directory / rel, f"{path}/{rel}")
    digest = _blake3(json.dumps(files, sort_keys=True).encode())
    flavor = next((k for k in meta.flavors if k != "python_function"), "")
    return Serialized("model", digest, size, path=path, meta={"files": files, "flavor": flavor})


def load(
    serializer: str, store: ArtifactStore, path: str, inline: str | None, meta: dict[str, Any] | None = None
) -> Any:
    """Read back an output written by :func:`dump`."""
    if inline is not None:
        return json.loads(inline)
    if serializer == "model":
        return _load_model(store, path, (meta or {}).get("files", {}))
    with store.open(path) as f:
        data = f.read()
    if serializer == "json":
        return json.loads(data)
    if serializer == "pickle":
        return pickle.loads(data)
    if serializer == "numpy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if serializer == "pandas":
        import pyarrow as pa
        import pyarrow.parquet as pq

        # ParquetFile reads in this thread (see serving's read_log: an async read can abort at exit).
        return pq.ParquetFile(pa.BufferReader(data)).read().to_pandas()
    if serializer == "polars":
        import polars as pl

        return pl.read_parquet(io.BytesIO(data))
    if serializer == "arrow":
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.ParquetFile(pa.BufferReader(data)).read()
    raise InvalidInput(f"Unknown serializer {serializer!r} at {path!r}.")


def _load_model(store: ArtifactStore, path: str, files: dict[str, str]) -> Any:
    from loopline.registry.models import fetch, load_from_directory, verify

    with tempfile.TemporaryDirectory(prefix="loopline-step-") as tmp:
        directory = Path(tmp)
        fetch(store, path, directory)
        if files:
            verify(directory, files)  # the files are the ones this pipeline's step wrote
        return load_from_directory(directory, uri=path, verified=bool(files), allow_pickle=bool(files)).native


def read_dataset(source: Any, resolved: str, env: Mapping[str, str] | None = None) -> Any:
    """Load a dataset input: ``datasets:/…`` through ``loopline.data`` (on the stores ``env``'s
    ``LOOPLINE_*`` variables name, else the default ones), anything else as a local file."""
    import importlib

    if resolved.startswith("datasets:/"):
        data = importlib.import_module("loopline.data")
        client = None
        if env:
            from loopline.config import Settings

            client = data.DataClient(Settings.from_env(env))
        return data.load_dataset(resolved, format=source.format, client=client)
    table = _read_file(resolved)
    if source.format == "arrow":
        return table
    if source.format == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table.to_pandas()


def _read_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise InvalidInput(
            f"No dataset file {path!r}.", hint="Pass a Parquet, CSV or JSON file, or datasets:/name/N."
        )
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if lower.endswith(".csv"):
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path)
    if lower.endswith((".json", ".jsonl", ".ndjson")):
        import pyarrow.json as pjson

        return pjson.read_json(path)
    raise InvalidInput(f"Cannot read {path!r}: unknown file type.", hint="Use .parquet, .csv or .json(l).")
