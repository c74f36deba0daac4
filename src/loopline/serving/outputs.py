"""Model outputs: one shape for every flavor, cut back into each request's rows, then encoded.

A batch's prediction becomes a numpy array or a ``DataFrame`` whose first axis is the batch's
rows; each request gets a slice (a view, no copy). MLflow's scoring protocol returns arrays as
(nested) lists and frames as records; OIP returns one tensor per array or per frame column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopline.errors import InvalidInput
from loopline.serving.schema import oip_datatype


class OutputMismatch(Exception):
    """The model returned a number of rows other than it was given: it cannot be batched."""


def normalize(raw: Any, n: int) -> Any:
    """``raw`` as an ndarray or DataFrame with ``n`` rows."""
    if hasattr(raw, "iloc") and hasattr(raw, "columns"):
        out: Any = raw.reset_index(drop=True)
    elif hasattr(raw, "to_numpy"):  # a Series
        out = raw.to_numpy()
    elif isinstance(raw, np.ndarray):
        out = raw
    else:
        out = np.asarray(raw) if isinstance(raw, list | tuple) else np.asarray([raw])
    rows = len(out) if getattr(out, "ndim", 1) else 1
    if rows != n:
        raise OutputMismatch(f"the model returned {rows} rows for {n} inputs")
    return out


def take(out: Any, start: int, stop: int) -> Any:
    return out.iloc[start:stop] if hasattr(out, "iloc") else out[start:stop]


def join(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if hasattr(parts[0], "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts)


def jsonable(out: Any) -> Any:
    """MLflow's ``predictions``: arrays as lists (orjson serialises numeric arrays natively)."""
    if hasattr(out, "iloc"):
        return out.to_dict(orient="records")
    if isinstance(out, np.ndarray) and (out.dtype.kind in "OUSMm" or not out.flags.c_contiguous):
        return out.tolist()
    return out


def oip_outputs(out: Any) -> list[tuple[str, np.ndarray[Any, Any]]]:
    """(name, array) for each OIP output tensor: ``output-0`` for an array, one per frame column."""
    if hasattr(out, "iloc"):
        return [(str(c), out[c].to_numpy()) for c in out.columns]
    arr = out if isinstance(out, np.ndarray) else np.asarray(out)
    return [("output-0", arr)]


def output_metadata(out: Any) -> list[dict[str, Any]]:
    return [
        {"name": name, "datatype": oip_datatype(arr.dtype), "shape": [-1, *arr.shape[1:]]}
        for name, arr in oip_outputs(out)
    ]


def select(outputs: list[tuple[str, np.ndarray[Any, Any]]], wanted: list[str]) -> list[Any]:
    have = {name: arr for name, arr in outputs}
    unknown = [w for w in wanted if w not in have]
    if unknown:
        raise InvalidInput(
            f"Unknown output{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}.",
            hint=f"This model's outputs: {', '.join(have)}.",
        )
    return [(w, have[w]) for w in wanted]
