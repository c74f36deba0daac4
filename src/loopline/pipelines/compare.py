"""Whether two runs of a step produced the same output, by content: what ``rerun`` reports.

Equal digests settle it. Otherwise both outputs are read back and compared by what they hold: JSON
by value; tables (pandas, polars, Arrow: stored as Parquet) as Arrow tables, so the file's own
metadata does not count; arrays by dtype, shape and values; a model by its parameters, its fitted
state and its predictions on the step's own tabular inputs. A model's bytes cannot decide: two
saves of the same fitted model differ (MLmodel records when and under which id it was saved, a
skops archive holds object ids), so comparing them called every model step irreproducible.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from typing import Any

from loopline.artifacts import ArtifactStore
from loopline.pipelines import serializers
from loopline.pipelines.types import StepRecord

SAMPLE_ROWS = 1000  # rows of each input a model predicts on: enough to see a difference, cheap
_TABLES = ("pandas", "polars", "arrow")
_DEPTH = 40


def difference(
    old: StepRecord, new: StepRecord, store: ArtifactStore, inputs: Mapping[str, StepRecord] | None = None
) -> str:
    """ "" when ``old`` and ``new`` (the same node in two runs) hold the same output; else what
    differs, in a few words. ``inputs`` are the step's upstream outputs (by node) a model predicts on."""
    if old.output_digest == new.output_digest:
        return ""
    if old.serializer != new.serializer:
        return f"stored as {new.serializer} instead of {old.serializer}"
    if old.serializer in _TABLES:
        return _table_difference(_arrow(old, store), _arrow(new, store))
    a, b = _load(old, store), _load(new, store)
    if old.serializer == "model":
        tables = {n: r for n, r in (inputs or {}).items() if r.serializer in (*_TABLES, "numpy")}
        return _model_difference(a, b, {n: _load(r, store) for n, r in tables.items()})
    where = _first_difference(a, b)
    return "" if where is None else f"the values differ{f' at {where}' if where else ''}"


def _load(rec: StepRecord, store: ArtifactStore) -> Any:
    return serializers.load(rec.serializer, store, rec.output_path, rec.output_inline, dict(rec.output_meta))


def _arrow(rec: StepRecord, store: ArtifactStore) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with store.open(rec.output_path) as f:
        return pq.ParquetFile(pa.BufferReader(f.read())).read()


def _table_difference(a: Any, b: Any) -> str:
    if a.equals(b):  # schema and values; not the Parquet file's metadata
        return ""
    if a.schema.names != b.schema.names:
        return f"the columns differ: {b.schema.names} instead of {a.schema.names}"
    if a.num_rows != b.num_rows:
        return f"{b.num_rows} rows instead of {a.num_rows}"
    changed = [n for n in a.schema.names if not a.column(n).equals(b.column(n))]
    return f"column(s) {', '.join(changed)} differ" if changed else "the table metadata differs"


# ---- models ---------------------------------------------------------------------------------


def _model_difference(a: Any, b: Any, inputs: Mapping[str, Any]) -> str:
    if type(a) is not type(b):
        return f"a {_name(b)} instead of a {_name(a)}"
    found = []
    params = _params(a)
    if params is not None:
        changed = _changed(params, _params(b) or {})
        if changed:
            found.append(f"parameters differ: {', '.join(changed)}")
    state_a, state_b = _state(a), _state(b)
    if isinstance(state_a, Mapping) and isinstance(state_b, Mapping):
        fitted = [k for k in _changed(state_a, state_b) if params is None or k not in params]
        if fitted:
            found.append(f"fitted attributes differ: {', '.join(fitted)}")
    elif _first_difference(state_a, state_b) is not None:
        found.append("its fitted state differs")
    for node, value in inputs.items():
        rows = _predictions_differ(a, b, value)
        if rows:
            found.append(f"predictions differ on {rows} of {node}'s output")
    return "; ".join(found)


def _name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _params(model: Any) -> dict[str, Any] | None:
    get = getattr(model, "get_params", None)
    if not callable(get):
        return None
    try:
        params = get(deep=False)
    except Exception:
        return None
    return dict(params) if isinstance(params, Mapping) else None


def _changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(str(k) for k in set(a) | set(b) if k not in a or k not in b or not _same(a[k], b[k], 0))


def _predictions_differ(a: Any, b: Any, value: Any) -> str:
    """ "" when ``a`` and ``b`` predict the same on (a sample of) ``value``, or it is not their input;
    else "k of n rows"."""
    import numpy as np

    x = _features(a, value)
    if x is None:
        return ""
    for method in ("predict", "predict_proba"):
        if not callable(getattr(a, method, None)):
            continue
        try:
            pa, pb = np.asarray(getattr(a, method)(x)), np.asarray(getattr(b, method)(x))
        except Exception:
            continue  # not this model's input (another table the step took, a label column)
        if pa.shape != pb.shape or pa.dtype != pb.dtype:
            return f"all {len(x)} rows"
        if not _same(pa, pb, 0):
            per_row = pa.reshape(len(pa), -1) if pa.ndim else pa.reshape(1, 1)
            other = pb.reshape(per_row.shape)
            same = (per_row == other) | (_isnan(per_row) & _isnan(other))
            return f"{int((~same.all(axis=1)).sum())} of {len(per_row)} rows"
    return ""


def _isnan(values: Any) -> Any:
    import numpy as np

    return np.isnan(values) if values.dtype.kind in "fc" else np.zeros(values.shape, dtype=bool)


def _features(model: Any, value: Any) -> Any:
    """The first ``SAMPLE_ROWS`` rows of ``value`` as the model takes them (its named columns), or None."""
    kind = type(value).__module__.split(".", 1)[0]
    if kind in ("polars", "pyarrow"):
        value = value.to_pandas()
    value = value[:SAMPLE_ROWS]
    names = getattr(model, "feature_names_in_", None)
    if names is not None and hasattr(value, "columns"):
        wanted = [str(n) for n in names]
        if not set(wanted) <= {str(c) for c in value.columns}:
            return None
        return value[wanted]
    return value if len(value) else None


# ---- values ---------------------------------------------------------------------------------


def _state(value: Any) -> Any:
    """What an object holds: what it pickles (``__getstate__``; sklearn estimators, NumPy random
    states, XGBoost and LightGBM boosters define it), else its ``__dict__``."""
    getstate = getattr(type(value), "__getstate__", None)
    if getstate is not None and getstate is not getattr(object, "__getstate__", None):
        try:
            return value.__getstate__()
        except Exception:
            pass
    return vars(value) if hasattr(value, "__dict__") else value


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """None when ``a`` and ``b`` hold the same; else where they first differ ("" at the top)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping) and type(a) is type(b):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f"{path}.{k}" if path else str(k)
            where = _first_difference(a[k], b[k], f"{path}.{k}" if path else str(k))
            if where is not None:
                return where
        return None
    if (
        isinstance(a, list | tuple)
        and isinstance(b, list | tuple)
        and type(a) is type(b)
        and len(a) == len(b)
    ):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            where = _first_difference(x, y, f"{path}[{i}]")
            if where is not None:
                return where
        return None
    return None if _same(a, b, 0) else path


def _same(a: Any, b: Any, depth: int) -> bool:
    """Whether ``a`` and ``b`` hold the same values, NaN equal to NaN, objects by their state."""
    if a is b:
        return True
    if type(a) is not type(b) or depth > _DEPTH:
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if a is None or isinstance(a, bool | int | complex | str | bytes | bytearray | range):
        return bool(a == b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, set | frozenset):
        return bool(a == b)
    module = type(a).__module__.split(".", 1)[0]
    if module == "numpy" and hasattr(a, "dtype") and hasattr(a, "shape"):
        return _same_array(a, b, depth)
    if module == "pandas" and hasattr(a, "equals"):
        return bool(a.equals(b))
    if hasattr(a, "__array__") and module not in ("builtins",):  # tensors and other array types
        import numpy as np

        try:
            return _same_array(np.asarray(a), np.asarray(b), depth)
        except Exception:
            pass
    state_a, state_b = _state(a), _state(b)
    if state_a is not a or state_b is not b:
        return _same(state_a, state_b, depth + 1)
    try:
        return bool(a == b) or pickle.dumps(a) == pickle.dumps(b)
    except Exception:
        return False


def _same_array(a: Any, b: Any, depth: int) -> bool:
    import numpy as np

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "O":  # object arrays: element by element (estimators in a forest, strings)
        return all(_same(x, y, depth + 1) for x, y in zip(a.ravel(), b.ravel(), strict=True))
    if a.dtype.names:  # structured arrays (a tree's nodes): field by field
        return all(_same_array(a[n], b[n], depth + 1) for n in a.dtype.names)
    if a.dtype.kind == "V":
        return bool(a.tobytes() == b.tobytes())
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
