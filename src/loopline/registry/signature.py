"""Model signatures in MLflow's format, inferred from an input example and enforced on predict.

A signature is a list of column specs (``{"type": "double", "name": "age", "required": true}``)
for tabular models, or one tensor spec (``{"type": "tensor", "tensor-spec": {"dtype": "float32",
"shape": [-1, 20]}}``) for array models. Enforcement names the column and the expected type in
every error, and only makes conversions that lose nothing (int → double, float32 → float64).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput

# MLflow column type -> numpy dtype kind(s) accepted without loss.
_COL_TYPES: dict[str, str] = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}
_SAFE_CASTS: dict[str, set[str]] = {
    "boolean": {"b"},
    "integer": {"i", "u", "b"},
    "long": {"i", "u", "b"},
    "float": {"f", "i", "u", "b"},
    "double": {"f", "i", "u", "b"},
    "string": {"O", "U", "S", "T"},
    "binary": {"O", "S"},
    "datetime": {"M"},
}


def _column_type(dtype: Any) -> str:
    kind = dtype.kind
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "long" if dtype.itemsize >= 8 or kind == "u" else "integer"
    if kind == "f":
        return "double" if dtype.itemsize >= 8 else "float"
    if kind == "M":
        return "datetime"
    if kind == "S":
        return "binary"
    return "string"


@dataclass(frozen=True, slots=True)
class ColSpec:
    type: str
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out


@dataclass(frozen=True, slots=True)
class TensorSpec:
    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)},
        }
        if self.name is not None:
            out["name"] = self.name
        return out


Spec = ColSpec | TensorSpec


def _parse_specs(raw: str | Sequence[Mapping[str, Any]] | None) -> tuple[Spec, ...]:
    if raw is None:
        return ()
    items = json.loads(raw) if isinstance(raw, str) else raw
    out: list[Spec] = []
    for item in items:
        if item.get("type") == "tensor":
            ts = item["tensor-spec"]
            out.append(TensorSpec(ts["dtype"], tuple(int(d) for d in ts["shape"]), item.get("name")))
        else:
            out.append(ColSpec(item["type"], item.get("name"), bool(item.get("required", True))))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes and returns."""

    inputs: tuple[Spec, ...] = ()
    outputs: tuple[Spec, ...] = field(default=())

    def to_mlmodel(self) -> dict[str, Any]:
        """The ``signature:`` block of an MLmodel file (JSON strings, as MLflow writes them)."""
        return {
            "inputs": json.dumps([s.to_dict() for s in self.inputs]) if self.inputs else None,
            "outputs": json.dumps([s.to_dict() for s in self.outputs]) if self.outputs else None,
            "params": None,
        }

    @classmethod
    def from_mlmodel(cls, block: Mapping[str, Any] | None) -> Signature | None:
        if not block:
            return None
        return cls(_parse_specs(block.get("inputs")), _parse_specs(block.get("outputs")))

    @property
    def columns(self) -> list[ColSpec]:
        return [s for s in self.inputs if isinstance(s, ColSpec)]

    @property
    def tensor(self) -> TensorSpec | None:
        return next((s for s in self.inputs if isinstance(s, TensorSpec)), None)


def _dtype(dt: Any) -> Any:
    import numpy as np

    try:
        return np.dtype(dt)
    except TypeError:  # pandas extension dtypes (string, category, nullable ints) read as objects
        return np.dtype("O")


def _specs_of(data: Any) -> tuple[Spec, ...]:
    import numpy as np

    if hasattr(data, "dtypes") and hasattr(data, "columns"):  # a pandas DataFrame
        return tuple(ColSpec(_column_type(_dtype(dt)), str(c)) for c, dt in data.dtypes.items())
    arr = np.asarray(data)
    if arr.ndim <= 1:  # one value per row: a column, as MLflow writes predictions
        return (ColSpec(_column_type(arr.dtype)),)
    return (TensorSpec(str(arr.dtype), (-1, *arr.shape[1:])),)


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """A signature from an input example (and, if given, the model's output on it)."""
    return Signature(_specs_of(model_input), _specs_of(model_output) if model_output is not None else ())


# Integer column types: their range. Beyond 2**53 a double is not every integer, so a float there is
# refused for a long rather than taken for a neighbouring value.
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_EXACT_FLOAT = 2**53


def _in_range(c: ColSpec, col: Any) -> str:
    """The dtype ``col`` is cast to for ``c``, once its values are known to fit: numpy's casts wrap
    integers (2**63 as int64 is -2**63) and make too large floats inf without a word."""
    import numpy as np

    values = col.to_numpy()
    target = _COL_TYPES[c.type]
    if c.type in _INT_RANGES and len(values) and values.dtype.kind != "b":
        lo, hi = _INT_RANGES[c.type]
        if values.dtype.kind == "f":
            lo, hi = max(lo, -_EXACT_FLOAT), min(hi, _EXACT_FLOAT)
        bad = (values < lo) | (values > hi) if values.dtype.kind in "iuf" else np.ones(len(values), bool)
        if bad.any():
            raise InvalidInput(
                f"Column {c.name!r} must be {c.type}; got {values[bad][0]!r}, outside its range.",
                hint=f"A {c.type} is a whole number from {lo} to {hi}"
                + (" (floats are exact integers only up to 2**53)." if values.dtype.kind == "f" else "."),
            )
    elif c.type == "float" and values.dtype.kind == "f" and values.dtype.itemsize > 4:
        with np.errstate(over="ignore"):
            bad = np.isinf(values.astype(np.float32)) & np.isfinite(values)
        if bad.any():
            raise InvalidInput(
                f"Column {c.name!r} must be float; {values[bad][0]!r} does not fit in 32 bits."
            )
    return target


def enforce(signature: Signature | None, data: Any) -> Any:
    """Check ``data`` against ``signature`` and return it in the form the model expects."""
    if signature is None or not signature.inputs:
        return data
    import numpy as np

    if signature.tensor is not None:
        spec = signature.tensor
        if hasattr(data, "to_numpy"):
            data = data.to_numpy()
        arr = np.asarray(data)
        if arr.ndim != len(spec.shape) or any(
            w not in (-1, g) for w, g in zip(spec.shape, arr.shape, strict=False)
        ):
            raise InvalidInput(
                f"Input has shape {list(arr.shape)}; the model expects {list(spec.shape)} (-1 = any size)."
            )
        want = np.dtype(spec.dtype)
        if arr.dtype != want:
            if not np.can_cast(arr.dtype, want, casting="same_kind") or (
                arr.dtype.kind == "f" and want.kind in "iu"
            ):
                raise InvalidInput(f"Input has dtype {arr.dtype}; the model expects {want}.")
            arr = arr.astype(want)
        return arr

    import pandas as pd

    cols = signature.columns
    named = [c for c in cols if c.name is not None]
    if not named:  # unnamed column specs: a single column or plain array
        return data
    if not isinstance(data, pd.DataFrame):
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != len(named):
            raise InvalidInput(
                f"Input has {arr.shape[-1] if arr.ndim else 0} columns; the model expects {len(named)}: "
                + ", ".join(str(c.name) for c in named)
                + "."
            )
        data = pd.DataFrame(arr, columns=[c.name for c in named])
    missing = [c.name for c in named if c.required and c.name not in data.columns]
    if missing:
        raise InvalidInput(
            f"Input is missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}.",
            hint="Expected columns: " + ", ".join(f"{c.name} ({c.type})" for c in named) + ".",
        )
    out = {}
    for c in named:
        if c.name not in data.columns:
            continue
        col = data[c.name]
        kind = col.dtype.kind if hasattr(col.dtype, "kind") else "O"
        if c.type == "boolean" and kind in "iuf" and bool(np.isin(col.to_numpy(), (0, 1)).all()):
            col, kind = col.astype(bool), "b"  # 0 and 1 are false and true, as JSON clients send them
        integral = (
            c.type in ("long", "integer") and kind == "f" and bool(np.all(np.mod(col.to_numpy(), 1) == 0))
        )
        if kind not in _SAFE_CASTS[c.type] and not integral:  # whole floats (from a plain array) are fine
            if kind == "O" and c.type in ("double", "float", "long", "integer"):
                try:
                    col = pd.to_numeric(col)
                except (TypeError, ValueError):
                    raise InvalidInput(
                        f"Column {c.name!r} must be {c.type}; got values such as {col.iloc[0]!r}."
                    ) from None
            else:
                raise InvalidInput(f"Column {c.name!r} must be {c.type}; got {col.dtype}.")
        if c.type in ("double", "float", "long", "integer") and col.dtype != np.dtype(_COL_TYPES[c.type]):
            col = col.astype(_in_range(c, col))
        out[c.name] = col
    return pd.DataFrame(out, index=data.index)
