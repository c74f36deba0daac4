"""From wire formats to model input, checked against the signature once per request.

Each request's payload becomes :class:`Rows` — the request's part of a future batch — through an
:class:`InputSchema` compiled from the model signature. Checking happens here, per request, so a bad
request is refused with a message naming the field before it can share a batch with good ones;
the batch itself is only concatenated and predicted.

Three schemas:

* :class:`NumericColumns` — every column named and numeric or boolean (the common tabular model).
  A request becomes one float64 matrix in signature order with ``numpy.asarray`` (microseconds);
  a batch is ``np.concatenate`` plus one ``DataFrame`` with the signature's dtypes. Only when the
  fast conversion fails does it walk the values to say which column and row was wrong.
* :class:`TensorInput` — a tensor signature: an array of the signature's dtype and shape.
* :class:`FrameInput` — anything else (string or datetime columns, no signature): a ``DataFrame``
  per request, checked by the registry's ``enforce`` (no batching without a signature).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.errors import InvalidInput
from loopline.registry.signature import ColSpec, Signature, TensorSpec, enforce

_NUMERIC = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "boolean": "bool"}
_INTEGRAL = {"long", "integer"}
# OIP datatype <-> numpy dtype.
OIP_TO_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
NUMPY_TO_OIP = {v: k for k, v in OIP_TO_NUMPY.items()}
_COLUMN_TO_OIP = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


def oip_datatype(dtype: Any) -> str:
    dt = np.dtype(dtype)
    if dt.kind in "OUSaT":
        return "BYTES"
    return NUMPY_TO_OIP.get(dt.name, "BYTES")


@dataclass(slots=True)
class Rows:
    """One request's input: ``data`` holds ``n`` rows along its first axis."""

    data: Any
    n: int


@dataclass(frozen=True, slots=True)
class Tensor:
    """An OIP input tensor, already decoded to numpy (from JSON or the binary extension)."""

    name: str
    array: np.ndarray[Any, Any]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class InputSchema:
    """Turns each wire format into :class:`Rows`, and a list of them into one model input."""

    batchable = True
    names: tuple[str, ...] = ()

    @property
    def key(self) -> Any:
        """Equal for two schemas that take the same rows (a shadow model reuses the primary's)."""
        return (type(self), self.names)

    # -- the MLflow scoring formats ------------------------------------------------------------
    def from_split(self, columns: Any, data: Any) -> Rows:
        raise NotImplementedError

    def from_records(self, records: Any) -> Rows:
        raise NotImplementedError

    def from_columns(self, mapping: Mapping[str, Any]) -> Rows:
        raise NotImplementedError

    def from_array(self, data: Any, field: str) -> Rows:
        raise NotImplementedError

    def from_frame(self, frame: Any) -> Rows:
        raise NotImplementedError

    # -- OIP -----------------------------------------------------------------------------------
    def from_tensors(self, tensors: Sequence[Tensor]) -> Rows:
        raise NotImplementedError

    def metadata(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    # -- batches -------------------------------------------------------------------------------
    def join(self, parts: Sequence[Any]) -> Any:
        raise NotImplementedError

    def model_input(self, data: Any) -> Any:
        return data

    def split(self, rows: Rows, start: int, stop: int) -> Rows:
        return Rows(rows.data[start:stop], stop - start)

    def example(self, n: int) -> Rows:
        raise NotImplementedError

    def to_records(self, data: Any) -> Any:
        """A JSON-friendly view of one request's input, for the inference log."""
        return data


def _nonempty(n: int) -> int:
    if n == 0:
        raise InvalidInput("The input has no rows.", hint="Send at least one row.")
    return n


# ---- all-numeric named columns ------------------------------------------------------------------

# Beyond 2**53 a float64 no longer holds every integer: a ``long`` there is taken from the request's
# own value (an int is exact; a float, or an integer JSON could only read as one, is refused).
_EXACT = 2.0**53
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_LONG_HINT = "A long is a whole number from -2**63 to 2**63 - 1, sent as an integer (not a float)."

Value = Callable[[int, int], Any]  # the request's own value at (row, column in signature order)


@dataclass(slots=True)
class Exact:
    """The rows of a model with ``long`` columns: the float64 matrix (the other columns) and the
    ``long`` columns again as int64, since a double is not every 64-bit integer."""

    floats: np.ndarray[Any, Any]
    ints: np.ndarray[Any, Any]

    def __getitem__(self, rows: slice) -> Exact:
        return Exact(self.floats[rows], self.ints[rows])


class NumericColumns(InputSchema):
    """Named numeric/boolean columns, carried per request as one float64 matrix in signature order
    (with the ``long`` columns beside it as int64: :class:`Exact`)."""

    def __init__(self, cols: Sequence[ColSpec]) -> None:
        self.cols = tuple(cols)
        self.names = tuple(str(c.name) for c in cols)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.names_list = list(self.names)
        self.required = frozenset(str(c.name) for c in cols if c.required)
        self.integral = [i for i, c in enumerate(cols) if c.type in _INTEGRAL]
        self.int32 = [i for i, c in enumerate(cols) if c.type == "integer"]
        self.float32 = [i for i, c in enumerate(cols) if c.type == "float"]
        self.longs = [i for i, c in enumerate(cols) if c.type == "long"]
        self.boolean = [i for i, c in enumerate(cols) if c.type == "boolean"]
        self.dtypes = {str(c.name): _NUMERIC[c.type] for c in cols if c.type not in ("double", "long")}

    @property
    def key(self) -> Any:
        return (type(self), self.cols)

    def _expected(self) -> str:
        return ", ".join(f"{c.name} ({c.type})" for c in self.cols)

    def _diagnose(self, data: Any, order: Sequence[str]) -> InvalidInput:
        """Why ``data`` (a list of rows in ``order``) is not a numeric matrix: name the column and row."""
        if not isinstance(data, list):
            return InvalidInput(f"'data' must be a list of rows; got {type(data).__name__}.")
        for i, row in enumerate(data):
            if not isinstance(row, list | tuple):
                return InvalidInput(
                    f"Row {i} must be a list of {len(order)} values; got {_short(row)}.",
                    hint=f"Columns: {', '.join(order)}.",
                )
            if len(row) != len(order):
                return InvalidInput(
                    f"Row {i} has {len(row)} values; expected {len(order)} ({', '.join(order)})."
                )
            for name, value in zip(order, row, strict=True):
                if name not in self.index or value is None:
                    continue
                try:
                    float(value)
                except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond doubles
                    kind = self.cols[self.index[name]].type
                    return InvalidInput(f"Column {name!r} must be {kind}; got {_short(value)} in row {i}.")
        return InvalidInput("The input is not a table of numbers.", hint=f"Expected: {self._expected()}.")

    def _matrix(self, data: Any, order: Sequence[str]) -> np.ndarray[Any, Any]:
        if isinstance(data, list) and not data:
            _nonempty(0)
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise self._diagnose(data, order) from None
        if arr.ndim != 2 or arr.shape[1] != len(order):
            if arr.ndim == 2 and arr.shape[0] == 0:
                _nonempty(0)
            raise self._diagnose(data, order)
        return arr

    def _refuse(self, i: int, value: Any, row: int, hint: str = "") -> InvalidInput:
        return InvalidInput(
            f"Column {self.names[i]!r} must be {self.cols[i].type}; got {_short(value)} in row {row}.",
            hint=hint,
        )

    def _check(self, arr: np.ndarray[Any, Any], value: Value) -> Rows:
        """``arr`` (float64, signature order) checked against each column's type and range, as the
        rows to carry. ``value`` gives the request's own value where a double may not be exact."""
        n = _nonempty(arr.shape[0])
        for i in self.integral:
            col = arr[:, i]
            ok = np.isfinite(col) & (col == np.round(col))
            if not ok.all():
                bad = int(np.argmin(ok))
                raise self._refuse(i, value(bad, i), bad)
        for i in self.int32:
            col = arr[:, i]
            ok = (col >= _INT32[0]) & (col <= _INT32[1])
            if not ok.all():
                bad = int(np.argmin(ok))
                raise self._refuse(i, value(bad, i), bad, "An integer is 32 bits: -2**31 to 2**31 - 1.")
        for i in self.float32:
            col = arr[:, i]
            with np.errstate(over="ignore"):
                ok = np.isfinite(col.astype(np.float32)) | ~np.isfinite(col)
            if not ok.all():
                bad = int(np.argmin(ok))
                raise self._refuse(i, value(bad, i), bad, "It does not fit in a 32-bit float.")
        for i in self.boolean:
            col = arr[:, i]
            ok = (col == 0) | (col == 1)
            if not ok.all():
                bad = int(np.argmin(ok))
                raise self._refuse(i, value(bad, i), bad)
        if not self.longs:
            return Rows(arr, n)
        ints = np.empty((n, len(self.longs)), dtype=np.int64)
        for k, i in enumerate(self.longs):
            col = arr[:, i]
            big = np.abs(col) >= _EXACT
            if not big.any():  # the common case: every value an exact double
                ints[:, k] = col
                continue
            ints[:, k] = np.where(big, 0.0, col)
            for row in np.flatnonzero(big).tolist():
                ints[row, k] = self._long(i, value(row, i), row)
        return Rows(Exact(arr, ints), n)

    def _long(self, i: int, v: Any, row: int) -> int:
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = int(v.strip())
        exact = isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
        if exact and _INT64[0] <= int(v) <= _INT64[1]:
            return int(v)
        raise self._refuse(i, v, row, _LONG_HINT)

    def _missing(self, present: Any) -> None:
        missing = [n for n in self.names if n in self.required and n not in present]
        if missing:
            raise InvalidInput(
                f"Input is missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}.",
                hint=f"Expected columns: {self._expected()}.",
            )

    def from_split(self, columns: Any, data: Any) -> Rows:
        if columns is None:
            raise InvalidInput(
                "'dataframe_split' needs 'columns'.", hint=f"Expected columns: {self._expected()}."
            )
        if columns == self.names_list:  # the usual case: already in signature order
            arr = self._matrix(data, columns)
            return self._check(arr, lambda r, j: data[r][j])
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput("'columns' must be a list of column names.")
        self._missing(set(columns))
        if len(set(columns)) != len(columns):
            raise InvalidInput("'columns' names a column twice.")
        if not isinstance(data, list) or not all(
            isinstance(r, list | tuple) and len(r) == len(columns) for r in data
        ):
            raise self._diagnose(data, columns)
        where = {c: i for i, c in enumerate(columns)}
        picked = [[r[where[n]] if n in where else None for n in self.names] for r in data]
        arr = self._matrix(picked, self.names)
        return self._check(arr, lambda r, j: picked[r][j])

    def from_records(self, records: Any) -> Rows:
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInput("Records must be a list of JSON objects, one per row.")
        for i, rec in enumerate(records):
            missing = [n for n in self.names if n in self.required and n not in rec]
            if missing:
                raise InvalidInput(
                    f"Row {i} is missing column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(map(repr, missing))}.",
                    hint=f"Expected columns: {self._expected()}.",
                )
        rows = [[rec.get(n) for n in self.names] for rec in records]
        arr = self._matrix(rows, self.names)
        return self._check(arr, lambda r, j: rows[r][j])

    def from_columns(self, mapping: Mapping[str, Any]) -> Rows:
        self._missing(mapping)
        lengths = {n: len(v) if isinstance(v, list) else 1 for n, v in mapping.items() if n in self.index}
        n = next(iter(lengths.values()), 0)
        if any(v != n for v in lengths.values()):
            raise InvalidInput(
                "Every column must have the same number of values; got "
                + ", ".join(f"{k}: {v}" for k, v in lengths.items())
                + "."
            )
        cols = []
        for name in self.names:
            value = mapping.get(name)
            values = value if isinstance(value, list) else [value] * n
            cols.append(values)
        try:
            arr = np.asarray(cols, dtype=np.float64).T
        except (TypeError, ValueError, OverflowError):
            raise self._diagnose([list(r) for r in zip(*cols, strict=True)], self.names) from None
        if arr.ndim != 2:
            raise self._diagnose([list(r) for r in zip(*cols, strict=True)], self.names)
        return self._check(np.ascontiguousarray(arr), lambda r, j: cols[j][r])

    def from_array(self, data: Any, field: str) -> Rows:
        # MLflow refuses unnamed rows for a model with named columns: the order would be a guess.
        raise InvalidInput(
            f"'{field}' holds unnamed values, but this model takes named columns: {self._expected()}.",
            hint="Send 'dataframe_split' ({\"columns\": [...], \"data\": [[...]]}), 'dataframe_records', "
            "or 'inputs' as {column: values}.",
        )

    def from_frame(self, frame: Any) -> Rows:
        self._missing(set(map(str, frame.columns)))
        data = frame.reindex(columns=list(self.names))
        try:
            arr = data.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError, OverflowError):
            raise self._diagnose(data.to_numpy().tolist(), self.names) from None
        return self._check(arr, lambda r, j: data.iat[r, j])

    def _input_names(self) -> str:
        columns = ", ".join(self.names)
        return f"'input-0' (one [-1, {len(self.names)}] tensor) or one tensor per column ({columns})"

    def from_tensors(self, tensors: Sequence[Tensor]) -> Rows:
        by_name = {t.name: t.array for t in tensors}
        if all(t.name in self.index for t in tensors) and (len(tensors) > 1 or len(self.names) == 1):
            # One tensor per column (MLServer's pandas codec).
            self._missing(by_name)
            first = tensors[0].array
            n = first.shape[0] if first.ndim else -1
            cols: list[np.ndarray[Any, Any]] = []
            for name in self.names:
                arr = by_name.get(name)
                if arr is None:
                    cols.append(np.full(n, np.nan))
                    continue
                if arr.shape not in ((n,), (n, 1)):
                    raise InvalidInput(
                        f"Input {name!r} has shape {list(arr.shape)}; expected [{n}] like the other columns."
                    )
                cols.append(arr.reshape(n))
            floats = np.column_stack([_as_float(c, name) for c, name in zip(cols, self.names, strict=True)])
            return self._check(floats, lambda r, j: cols[j][r])
        unknown = [t.name for t in tensors if t.name not in self.index and t.name != "input-0"]
        if unknown:
            raise InvalidInput(
                f"This model has no input {unknown[0]!r}.", hint=f"Send {self._input_names()}."
            )
        if len(tensors) != 1:
            raise InvalidInput(f"Got inputs {sorted(by_name)}; send {self._input_names()}.")
        arr = tensors[0].array
        if arr.ndim == 1 and arr.shape[0] == len(self.names):
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != len(self.names):
            raise InvalidInput(
                f"Input {tensors[0].name!r} has shape {list(arr.shape)}; expected [-1, {len(self.names)}] "
                f"(columns {', '.join(self.names)}).",
            )
        return self._check(_as_float(arr, tensors[0].name), lambda r, j: arr[r, j])

    def metadata(self) -> list[dict[str, Any]]:
        types = {c.type for c in self.cols}
        if len(types) == 1:
            kind = next(iter(types))
            return [
                {
                    "name": "input-0",
                    "datatype": _COLUMN_TO_OIP[kind],
                    "shape": [-1, len(self.names)],
                    "parameters": {"columns": ",".join(self.names)},
                }
            ]
        return [{"name": c.name, "datatype": _COLUMN_TO_OIP[c.type], "shape": [-1]} for c in self.cols]

    def join(self, parts: Sequence[Any]) -> Any:
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], Exact):
            return Exact(np.concatenate([p.floats for p in parts]), np.concatenate([p.ints for p in parts]))
        return np.concatenate(parts)

    def model_input(self, data: Any) -> Any:
        import pandas as pd

        if isinstance(data, Exact):
            columns: dict[str, Any] = {name: data.floats[:, i] for i, name in enumerate(self.names)}
            for k, i in enumerate(self.longs):
                columns[self.names[i]] = data.ints[:, k]
            frame = pd.DataFrame(columns, copy=False)
        else:
            frame = pd.DataFrame(data, columns=self.names_list, copy=False)
        return frame.astype(self.dtypes) if self.dtypes else frame

    def example(self, n: int) -> Rows:
        return self._check(np.zeros((n, len(self.names))), lambda r, j: 0)

    def to_records(self, data: Any) -> Any:
        if isinstance(data, Exact):
            rows = data.floats.astype(object)
            rows[:, self.longs] = data.ints
            return {"columns": self.names_list, "data": rows.tolist()}
        return {"columns": self.names_list, "data": data}


def _as_float(arr: np.ndarray[Any, Any], name: str) -> np.ndarray[Any, Any]:
    if arr.dtype.kind not in "biuf":
        raise InvalidInput(f"Input {name!r} must be numeric; got {arr.dtype} data.")
    return arr.astype(np.float64, copy=False)


def cast_checked(arr: np.ndarray[Any, Any], dtype: np.dtype[Any], where: str) -> np.ndarray[Any, Any]:
    """``arr`` as ``dtype``, refusing values outside its range: numpy wraps integers (2**63 as int64
    is -2**63) and turns too large floats into inf without a word."""
    if dtype.kind in "iu" and arr.dtype.kind in "iub" and arr.size:
        info = np.iinfo(dtype)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < info.min or hi > info.max:
            bad = lo if lo < info.min else hi
            raise InvalidInput(f"{where} holds {bad}, outside {dtype}'s range ({info.min} to {info.max}).")
    elif dtype.kind == "f" and arr.dtype.kind == "f" and arr.dtype.itemsize > dtype.itemsize:
        with np.errstate(over="ignore"):
            out = arr.astype(dtype)
        overflow = np.isinf(out) & np.isfinite(arr)
        if overflow.any():
            raise InvalidInput(f"{where} holds {arr[overflow].flat[0]!r}, too large for {dtype}.")
        return out
    return arr.astype(dtype)


# ---- a tensor signature --------------------------------------------------------------------------


class TensorInput(InputSchema):
    """A tensor signature: one array of its dtype whose fixed dimensions match."""

    def __init__(self, spec: TensorSpec) -> None:
        self.spec = spec
        self.dtype = np.dtype(spec.dtype)
        self.batchable = bool(spec.shape) and spec.shape[0] == -1
        self.names = (spec.name or "input-0",)

    @property
    def key(self) -> Any:
        return (type(self), self.spec)

    def _array(self, data: Any, where: str) -> np.ndarray[Any, Any]:
        try:
            arr = data if isinstance(data, np.ndarray) else np.asarray(data)
        except (TypeError, ValueError):
            raise InvalidInput(f"{where} is not a regular array (rows of different lengths?).") from None
        if arr.dtype.kind == "O" and self.dtype.kind != "O":
            raise InvalidInput(
                f"{where} must hold {self.dtype} values; got mixed, nested or out-of-range values."
            )
        want = self.spec.shape
        if arr.ndim != len(want) or any(w not in (-1, g) for w, g in zip(want, arr.shape, strict=True)):
            raise InvalidInput(
                f"{where} has shape {list(arr.shape)}; the model expects {list(want)} (-1 = any size)."
            )
        if arr.dtype != self.dtype:
            lossless = np.can_cast(arr.dtype, self.dtype, casting="same_kind") and not (
                arr.dtype.kind == "f" and self.dtype.kind in "iub"
            )
            if not lossless:
                raise InvalidInput(f"{where} has dtype {arr.dtype}; the model expects {self.dtype}.")
            arr = cast_checked(arr, self.dtype, where)
        _nonempty(arr.shape[0] if arr.ndim else 1)
        return arr

    def _rows(self, arr: np.ndarray[Any, Any]) -> Rows:
        return Rows(arr, arr.shape[0] if arr.ndim else 1)

    def from_split(self, columns: Any, data: Any) -> Rows:
        return self._rows(self._array(data, "'data'"))

    def from_records(self, records: Any) -> Rows:
        raise InvalidInput(
            "This model takes a tensor, not named columns.", hint="Send {'inputs': [[...], ...]}."
        )

    def from_columns(self, mapping: Mapping[str, Any]) -> Rows:
        if len(mapping) != 1:
            raise InvalidInput(
                f"This model takes one tensor; got {len(mapping)} named inputs.",
                hint="Send {'inputs': [[...], ...]}.",
            )
        name, value = next(iter(mapping.items()))
        return self._rows(self._array(value, f"Input {name!r}"))

    def from_array(self, data: Any, field: str) -> Rows:
        return self._rows(self._array(data, f"'{field}'"))

    def from_frame(self, frame: Any) -> Rows:
        return self._rows(self._array(frame.to_numpy(), "The table"))

    def from_tensors(self, tensors: Sequence[Tensor]) -> Rows:
        wanted = f"one tensor {self.names[0]!r} of {oip_datatype(self.dtype)}, shape {list(self.spec.shape)}"
        if len(tensors) != 1:
            raise InvalidInput(
                f"This model takes one input tensor; got {len(tensors)}.", hint=f"Send {wanted}."
            )
        if tensors[0].name != self.names[0]:
            raise InvalidInput(f"This model has no input {tensors[0].name!r}.", hint=f"Send {wanted}.")
        return self._rows(self._array(tensors[0].array, f"Input {tensors[0].name!r}"))

    def metadata(self) -> list[dict[str, Any]]:
        return [{"name": self.names[0], "datatype": oip_datatype(self.dtype), "shape": list(self.spec.shape)}]

    def join(self, parts: Sequence[Any]) -> Any:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def example(self, n: int) -> Rows:
        shape = [n if d == -1 else d for d in self.spec.shape]
        shape[0] = n if self.batchable else shape[0]
        return Rows(np.zeros(shape, dtype=self.dtype), shape[0])


# ---- everything else: a DataFrame per request --------------------------------------------------


class FrameInput(InputSchema):
    """String/datetime columns or no signature: a ``DataFrame`` per request, checked by ``enforce``."""

    def __init__(self, signature: Signature | None) -> None:
        self.signature = signature
        self.cols = signature.columns if signature is not None else []
        self.named = [c for c in self.cols if c.name is not None]
        self.names = tuple(str(c.name) for c in self.named)
        self.batchable = bool(self.named)

    @property
    def key(self) -> Any:
        return (type(self), tuple(self.cols))

    def _checked(self, frame: Any) -> Rows:
        checked = enforce(self.signature, frame)
        return Rows(checked, _nonempty(len(checked)))

    def from_split(self, columns: Any, data: Any) -> Rows:
        import pandas as pd

        if columns is not None and not isinstance(columns, list):
            raise InvalidInput("'columns' must be a list of column names.")
        if not isinstance(data, list):
            raise InvalidInput(f"'data' must be a list of rows; got {type(data).__name__}.")
        try:
            frame = pd.DataFrame(data, columns=columns)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"'dataframe_split' is not a table: {e}") from None
        return self._checked(frame)

    def from_records(self, records: Any) -> Rows:
        import pandas as pd

        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInput("Records must be a list of JSON objects, one per row.")
        return self._checked(pd.DataFrame.from_records(records))

    def from_columns(self, mapping: Mapping[str, Any]) -> Rows:
        import pandas as pd

        scalars = all(not isinstance(v, list) for v in mapping.values())
        try:
            frame = pd.DataFrame(dict(mapping), index=[0] if scalars else None)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"'inputs' is not a table: {e}") from None
        return self._checked(frame)

    def from_array(self, data: Any, field: str) -> Rows:
        if self.named:
            raise InvalidInput(
                f"'{field}' holds unnamed values, but this model takes named columns: "
                + ", ".join(self.names)
                + ".",
                hint="Send 'dataframe_split' or 'dataframe_records'.",
            )
        try:
            arr = np.asarray(data)
        except (TypeError, ValueError):
            raise InvalidInput(f"'{field}' is not a regular array.") from None
        return self._checked(arr)

    def from_frame(self, frame: Any) -> Rows:
        return self._checked(frame)

    def from_tensors(self, tensors: Sequence[Tensor]) -> Rows:
        import pandas as pd

        if self.named:
            unknown = [t.name for t in tensors if t.name not in self.names]
            if unknown and not (len(tensors) == 1 and unknown[0] == "input-0"):
                raise InvalidInput(
                    f"This model has no input {unknown[0]!r}.",
                    hint=f"Send one tensor per column ({', '.join(self.names)}), or 'input-0' of "
                    f"shape [-1, {len(self.names)}].",
                )
        if len(tensors) == 1 and not (self.named and tensors[0].name in self.names):
            arr = tensors[0].array
            if self.named:
                if arr.ndim != 2 or arr.shape[1] != len(self.names):
                    raise InvalidInput(
                        f"Input {tensors[0].name!r} has shape {list(arr.shape)}; expected "
                        f"[-1, {len(self.names)}] or one tensor per column ({', '.join(self.names)})."
                    )
                return self._checked(pd.DataFrame(arr, columns=list(self.names)))
            return self._checked(arr)
        cols: dict[str, Any] = {}
        for t in tensors:
            if t.array.ndim not in (1, 2) or (t.array.ndim == 2 and t.array.shape[1] != 1):
                raise InvalidInput(f"Input {t.name!r} has shape {list(t.array.shape)}; expected [-1].")
            values = t.array.reshape(-1)
            if values.dtype.kind == "O":
                values = np.array(
                    [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values],
                    dtype=object,
                )
            cols[t.name] = values
        try:
            frame = pd.DataFrame(cols)
        except ValueError as e:
            raise InvalidInput(f"The input tensors do not form a table: {e}") from None
        return self._checked(frame)

    def metadata(self) -> list[dict[str, Any]]:
        if not self.named:
            return [{"name": "input-0", "datatype": "BYTES", "shape": [-1]}]
        return [
            {"name": c.name, "datatype": _COLUMN_TO_OIP.get(c.type, "BYTES"), "shape": [-1]}
            for c in self.named
        ]

    def join(self, parts: Sequence[Any]) -> Any:
        import pandas as pd

        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], pd.DataFrame):
            return pd.concat(parts, ignore_index=True)
        return np.concatenate(parts)

    def split(self, rows: Rows, start: int, stop: int) -> Rows:
        data = rows.data.iloc[start:stop] if hasattr(rows.data, "iloc") else rows.data[start:stop]
        return Rows(data, stop - start)

    def example(self, n: int) -> Rows:
        import pandas as pd

        if not self.named:
            raise InvalidInput("No signature: nothing to warm up with.")
        fill = {"string": "", "binary": b"", "boolean": False, "datetime": pd.Timestamp(0)}
        frame = pd.DataFrame({c.name: [fill.get(c.type, 0)] * n for c in self.named})
        return Rows(enforce(self.signature, frame), n)

    def to_records(self, data: Any) -> Any:
        if hasattr(data, "columns"):
            return {"columns": [str(c) for c in data.columns], "data": data.to_numpy().tolist()}
        return data


def compile_schema(signature: Signature | None) -> InputSchema:
    """The cheapest schema that checks everything ``signature`` promises."""
    if signature is None or not signature.inputs:
        return FrameInput(None)
    if signature.tensor is not None:
        return TensorInput(signature.tensor)
    cols = signature.columns
    if cols and all(c.name is not None and c.type in _NUMERIC for c in cols):
        return NumericColumns(cols)
    return FrameInput(signature)
