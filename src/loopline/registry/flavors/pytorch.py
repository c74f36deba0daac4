"""PyTorch modules (``torch.nn.Module``), in ``mlflow.pytorch``'s layout. Needs the ``pytorch`` extra.

Saving writes ``data/model.pth``: the whole module pickled by ``torch.save`` (with cloudpickle
when it is installed, as MLflow does, so classes defined in a notebook travel with the model) and
``data/pickle_module_info.txt``. A module's ``forward`` is Python code, and only a pickle (or a
``state_dict`` plus the class's source) can carry it without an example input to trace, so
**loading a ``model.pth`` runs code**: it needs ``allow_pickle=True``. A TorchScript module is saved
with ``torch.jit.save`` and needs the same opt-in.

Loading also reads MLflow 3's default format, ``data/model.pt2`` (``torch.export``): a graph of
standard operators plus tensors. It loads without the opt-in when every record of the archive is
JSON, short text, a raw tensor, or a tensor checkpoint that torch's restricted ``weights_only``
unpickler accepts without naming a process-wide ``add_safe_globals`` entry (torch >= 2.10, where
that unpickler has no known bypass) — MLflow's own rule; otherwise it too needs ``allow_pickle``.

``predict`` turns a DataFrame or array into one tensor (DataFrames as float32, as MLflow does;
floating inputs are cast to the module's parameter dtype), runs the module without gradients and
returns NumPy arrays.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

from loopline.registry.flavors.base import Saved, Trust, pinned
from loopline.registry.mlmodel import pyfunc_conf

NAME = "pytorch"
DATA = "data"
PICKLED = "model.pth"
EXPORTED = "model.pt2"
PICKLE_INFO = "pickle_module_info.txt"
MLFLOW_PICKLE_MODULE = "mlflow.pytorch.pickle_module"  # cloudpickle's Pickler, pickle's Unpickler

_TEXT_RECORDS = frozenset({"version", "archive_format", "archive_version", "byteorder", "serialization_id"})
_TEXT_CONTENT = re.compile(rb"[A-Za-z0-9._-]{1,64}\n?")
_PAYLOAD_CONFIG = re.compile(r"(?:^|/)data/(?:weights|constants)/[^/]+_config\.json$")
_RAW_TENSOR_PREFIXES = ("weight_", "tensor_")
_STRING_OPS = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
)
_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})


def matches(model: Any) -> bool:
    return any(c.__name__ == "Module" and c.__module__.startswith("torch.nn") for c in type(model).__mro__)


def _is_script_module(model: Any) -> bool:
    return any(c.__name__ in ("ScriptModule", "RecursiveScriptModule") for c in type(model).__mro__)


def save(model: Any, path: Path) -> Saved:
    import torch

    data = path / DATA
    data.mkdir()
    try:
        import cloudpickle

        module: Any = cloudpickle
        module_name = MLFLOW_PICKLE_MODULE
    except ImportError:
        module, module_name = pickle, "pickle"
    (data / PICKLE_INFO).write_text(module_name)
    if _is_script_module(model):
        torch.jit.save(model, str(data / PICKLED))
    else:
        torch.save(model, data / PICKLED, pickle_module=module)
    flavor = {"code": None, "model_data": DATA, "pytorch_version": str(torch.__version__)}
    reqs = [f"torch=={str(torch.__version__).split('+')[0]}", *pinned("numpy")]
    if module is not pickle:
        reqs += pinned("cloudpickle")
    pyfunc = pyfunc_conf("mlflow.pytorch", DATA, config={"device": None}, pickle_module_name=module_name)
    return Saved(flavor, pyfunc, reqs)


def _json_or_text(name: str, content: bytes) -> bool:
    if name.rsplit("/", 1)[-1] in _TEXT_RECORDS and _TEXT_CONTENT.fullmatch(content):
        return True
    try:
        json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _raw_tensor_records(archive: zipfile.ZipFile) -> set[str]:
    """Records the archive's payload configs declare as raw tensor bytes (never unpickled)."""
    raw: set[str] = set()
    pickled: set[str] = set()
    for info in archive.infolist():
        if not _PAYLOAD_CONFIG.search(info.filename):
            continue
        try:
            config = json.loads(archive.read(info).decode("utf-8")).get("config")
        except (UnicodeDecodeError, ValueError, AttributeError):
            continue
        if not isinstance(config, dict):
            continue
        folder = info.filename.rsplit("/", 1)[0]
        for entry in config.values():
            name = entry.get("path_name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or "/" in name:
                continue
            if entry.get("use_pickle") is False and name.startswith(_RAW_TENSOR_PREFIXES):
                raw.add(f"{folder}/{name}")
            else:
                pickled.add(f"{folder}/{name}")
    return raw - pickled


def _pickle_globals(data: bytes) -> set[str]:
    """The ``module.name`` globals a pickle stream names, read without unpickling it."""
    found: set[str] = set()
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, name = str(arg).split(" ", 1)
            found.add(f"{module}.{name}")
        elif op.name == "STACK_GLOBAL":
            if len(strings) < 2:
                raise ValueError("STACK_GLOBAL operands are not string literals")
            found.add(f"{strings[-2]}.{strings[-1]}")
            strings = []
        elif op.name in _STRING_OPS:
            strings.append(str(arg))
        elif op.name not in _MEMO_OPS:
            strings = []
    return found


def _registered_safe_globals() -> set[str]:
    """What ``torch.serialization.add_safe_globals`` added: ``weights_only`` would call their reducers."""
    import torch

    names: set[str] = set()
    for entry in torch.serialization.get_safe_globals():
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str):
            names.add(entry[1])
        else:
            names.add(f"{entry.__module__}.{entry.__qualname__}")
    return names


def _uses_registered_globals(content: bytes, registered: set[str]) -> bool:
    """Whether a ``torch.save`` record names a process-wide safe global (or cannot be inspected)."""
    with zipfile.ZipFile(io.BytesIO(content)) as checkpoint:
        pickles = [n for n in checkpoint.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"]
        if not pickles:
            return True
        return any(_pickle_globals(checkpoint.read(n)) & registered for n in pickles)


def pt2_is_pickle_free(file: Path) -> bool:
    """Whether ``torch.export.load`` can read ``file`` without unpickling anything but tensors."""
    import torch

    major_minor = re.match(r"(\d+)\.(\d+)", str(torch.__version__))
    if major_minor is None or tuple(map(int, major_minor.groups())) < (2, 10):
        return False  # weights_only had known bypasses before 2.10
    registered = _registered_safe_globals()
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        return False
    with archive:
        raw = _raw_tensor_records(archive)
        for info in archive.infolist():
            if info.is_dir() or info.filename in raw:
                continue
            content = archive.read(info)
            if _json_or_text(info.filename, content):
                continue
            try:
                if _uses_registered_globals(content, registered):
                    return False
                torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
            except Exception:
                return False
    return True


def _is_torchscript(file: Path) -> bool:
    if not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as archive:
        return any(n.endswith("/constants.pkl") for n in archive.namelist())


def load(path: Path, conf: dict[str, Any], trust: Trust) -> Any:
    import torch

    data = path / str(conf.get("model_data", DATA))
    pickled = data / PICKLED if data.is_dir() else data
    if pickled.is_file():
        if _is_torchscript(pickled):
            trust.require_code_execution(f"{DATA}/{PICKLED} (a TorchScript program)")
            jit: Any = torch.jit  # untyped in torch's stubs
            model = jit.load(str(pickled), map_location="cpu")
        else:
            trust.require_code_execution(f"{DATA}/{PICKLED} (a pickled torch.nn.Module)")
            # MLflow's pickle module and cloudpickle write standard pickles: the stdlib reads them.
            model = torch.load(pickled, map_location="cpu", weights_only=False, pickle_module=pickle)
        model.eval()
        return model
    exported = data / EXPORTED
    if not exported.is_file():
        from loopline.errors import InvalidInput

        raise InvalidInput(f"No {PICKLED} or {EXPORTED} in the model's {data.name}/ folder.")
    if not pt2_is_pickle_free(exported):
        trust.require_code_execution(f"{DATA}/{EXPORTED} (a torch.export archive with pickled records)")
    export: Any = torch.export  # untyped in torch's stubs
    return export.load(str(exported)).module()


def _numpy(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, dict):
        return {k: _numpy(v) for k, v in out.items()}
    if isinstance(out, list | tuple):
        return type(out)(_numpy(v) for v in out)
    return out


def predict(native: Any, data: Any) -> Any:
    import numpy as np
    import torch

    if hasattr(data, "to_numpy") and hasattr(data, "columns"):
        arr = data.to_numpy(dtype=np.float32)
    else:
        arr = np.asarray(data.numpy() if isinstance(data, torch.Tensor) else data)
    if not (arr.flags.writeable and arr.flags.c_contiguous):  # torch wants its own writable buffer
        arr = np.array(arr, order="C")
    tensor = torch.from_numpy(arr)
    param = next(iter(native.parameters()), None) if hasattr(native, "parameters") else None
    if param is not None and tensor.is_floating_point() and tensor.dtype != param.dtype:
        tensor = tensor.to(param.dtype)
    with torch.no_grad():
        return _numpy(native(tensor))
