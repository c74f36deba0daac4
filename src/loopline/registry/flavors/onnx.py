"""ONNX models (an ``onnx.ModelProto``), run with onnxruntime.

The layout is ``mlflow.onnx``'s: ``model.onnx`` plus a flavor block with the execution providers
and session options. An ONNX file is a graph of standard operators, not code, so it loads without
``allow_pickle``.

``predict`` feeds the graph's inputs by name: a dict maps input names to arrays; a DataFrame
feeds a single input with all its columns, or each input from the column of the same name; a
plain array feeds a single-input graph. Values are cast to each input's element type (float64
→ float32 for a ``tensor(float)`` input, as MLflow does). It returns the array when the graph
has one output, and ``{output name: array}`` when it has several (e.g. ``label`` and
``probabilities`` from skl2onnx classifiers).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.flavors.base import Saved, Trust, pinned
from loopline.registry.mlmodel import pyfunc_conf

NAME = "onnx"
FILE = "model.onnx"
PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]  # MLflow's default order

_ELEMENT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def matches(model: Any) -> bool:
    cls = type(model)
    return cls.__module__.split(".")[0] == "onnx" and cls.__name__ == "ModelProto"


def save(model: Any, path: Path) -> Saved:
    import onnx

    # Models over protobuf's 2 GB limit keep their weights beside the graph, as MLflow does.
    large = model.ByteSize() > 2**31 - 1 if hasattr(model, "ByteSize") else False
    onnx.save_model(model, str(path / FILE), save_as_external_data=large)
    flavor = {
        "code": None,
        "data": FILE,
        "onnx_session_options": None,
        "onnx_version": onnx.__version__,
        "providers": list(PROVIDERS),
    }
    return Saved(flavor, pyfunc_conf("mlflow.onnx", FILE), pinned("onnx", "onnxruntime", "numpy"))


def _session_options(conf: Mapping[str, Any]) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    given = conf.get("onnx_session_options") or {}
    if n := given.get("inter_op_num_threads"):
        opts.inter_op_num_threads = int(n)
    if n := given.get("intra_op_num_threads"):
        opts.intra_op_num_threads = int(n)
    mode = str(given.get("execution_mode") or "").upper()
    if mode in ("SEQUENTIAL", "PARALLEL"):
        opts.execution_mode = getattr(ort.ExecutionMode, f"ORT_{mode}")
    if level := given.get("graph_optimization_level"):
        opts.graph_optimization_level = ort.GraphOptimizationLevel(int(level))
    for key, value in (given.get("extra_session_config") or {}).items():
        opts.add_session_config_entry(str(key), str(value))
    return opts


def load(path: Path, conf: dict[str, Any], trust: Trust) -> Any:
    import onnx
    import onnxruntime as ort

    file = path / str(conf.get("data", FILE))
    try:
        onnx.checker.check_model(str(file))
    except onnx.checker.ValidationError as e:
        raise InvalidInput(f"{file.name} is not a valid ONNX model: {e}") from None
    wanted = conf.get("providers") or PROVIDERS
    if isinstance(wanted, str):
        wanted = [wanted]
    available = set(ort.get_available_providers())
    providers = [tuple(p) if isinstance(p, list) else p for p in wanted]
    usable = [p for p in providers if (p[0] if isinstance(p, tuple) else p) in available]
    return ort.InferenceSession(
        str(file), sess_options=_session_options(conf), providers=usable or ["CPUExecutionProvider"]
    )


def _cast(name: str, value: Any, onnx_type: str) -> Any:
    import numpy as np

    arr = np.asarray(value)
    want = _ELEMENT_TYPES.get(onnx_type)
    if want is None or arr.dtype == np.dtype(want):
        return arr
    if want == "object":
        return arr.astype(object)
    target = np.dtype(want)
    if arr.dtype.kind == "f" and target.kind in "iub":
        raise InvalidInput(f"ONNX input {name!r} takes {onnx_type}; got {arr.dtype} values.")
    return arr.astype(target)


def feeds(session: Any, data: Any) -> dict[str, Any]:
    """The ``{input name: array}`` dict ``session.run`` takes, from a dict, DataFrame or array."""
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if isinstance(data, Mapping):
        raw = dict(data)
        missing = [n for n in names if n not in raw]
        if missing:
            raise InvalidInput(
                f"Missing ONNX input {', '.join(map(repr, missing))}.", hint=f"Inputs: {', '.join(names)}."
            )
    elif hasattr(data, "columns") and hasattr(data, "to_numpy"):
        if len(inputs) == 1:
            raw = {names[0]: data.to_numpy()}
        else:
            missing = [n for n in names if n not in data.columns]
            if missing:
                raise InvalidInput(
                    f"The model's ONNX inputs {', '.join(map(repr, missing))} have no column in the data.",
                    hint=f"Give one column per input: {', '.join(names)}.",
                )
            raw = {}
            for i in inputs:
                col = data[i.name].to_numpy()
                rank = len(i.shape) if i.shape is not None else 1
                raw[i.name] = col.reshape(-1, 1) if rank == 2 else col
    else:
        if len(inputs) != 1:
            raise InvalidInput(
                f"This ONNX model takes {len(inputs)} inputs; a plain array can feed only one.",
                hint=f"Pass a dict or a DataFrame with: {', '.join(names)}.",
            )
        raw = {names[0]: data}
    return {i.name: _cast(i.name, raw[i.name], i.type) for i in inputs}


def predict(native: Any, data: Any) -> Any:
    outputs = [o.name for o in native.get_outputs()]
    result = native.run(outputs, feeds(native, data))
    if len(outputs) == 1:
        return result[0]
    return dict(zip(outputs, result, strict=True))
