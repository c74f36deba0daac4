"""The Open Inference Protocol (KServe V2 / Triton) inference body, in JSON and binary tensor form.

Binary tensor data extension (what ``tritonclient.http`` sends by default): the body is a JSON
header of ``Inference-Header-Content-Length`` bytes followed by each binary input's raw
little-endian bytes, in input order; an input with ``parameters.binary_data_size`` takes its data
from there. ``BYTES`` elements are a 4-byte little-endian length then the bytes. Outputs are sent
the same way when the request asks (``parameters.binary_data_output`` or an output's
``parameters.binary_data``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from loopline.errors import BadRequest, InvalidInput
from loopline.serving.http import dumps
from loopline.serving.schema import OIP_TO_NUMPY, Tensor, cast_checked, oip_datatype

HEADER_LENGTH = "inference-header-content-length"
_MAX_ELEMENTS = 1 << 28


@dataclass(slots=True)
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[str]  # requested output names; empty = all
    binary_outputs: set[str]  # names wanted in binary
    all_binary: bool
    parameters: dict[str, Any]


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise InvalidInput(f"{where}: 'shape' must be a list of integers.")
    if any(d < 0 for d in value):
        raise InvalidInput(f"{where}: 'shape' must not have negative dimensions; got {value}.")
    return tuple(value)


def _count(shape: tuple[int, ...], where: str) -> int:
    n = 1
    for d in shape:
        n *= d
        if n > _MAX_ELEMENTS:
            raise InvalidInput(f"{where}: shape {list(shape)} is too large.")
    return n


def _flatten(data: Any) -> list[Any]:
    """Nested JSON lists → flat row-major list (OIP allows both forms)."""
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    stack = [data]
    while stack:  # iterative: a deeply nested body must not hit the recursion limit
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _decode_bytes(raw: bytes, count: int, where: str) -> np.ndarray[Any, Any]:
    values: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"{where}: truncated BYTES element.")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidInput(f"{where}: truncated BYTES element.")
        values.append(raw[offset : offset + length])
        offset += length
    if len(values) != count:
        raise InvalidInput(f"{where}: shape needs {count} elements; the binary data holds {len(values)}.")
    return np.array(values, dtype=object)


def _json_tensor(data: Any, datatype: str, count: int, where: str) -> np.ndarray[Any, Any]:
    flat = _flatten(data)
    if len(flat) != count:
        raise InvalidInput(f"{where}: shape needs {count} elements; 'data' holds {len(flat)}.")
    if datatype == "BYTES":
        if not all(isinstance(v, str | bytes) for v in flat):
            raise InvalidInput(f"{where}: BYTES data must be strings.")
        return np.array(flat, dtype=object)
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in flat):
            raise InvalidInput(f"{where}: BOOL data must be true or false.")
        return np.array(flat, dtype=bool)
    dtype = np.dtype(OIP_TO_NUMPY[datatype])
    ok = (int, float) if dtype.kind == "f" else (int,)
    if not all(isinstance(v, ok) and not isinstance(v, bool) for v in flat):
        bad = next(v for v in flat if not isinstance(v, ok) or isinstance(v, bool))
        raise InvalidInput(
            f"{where}: {datatype} data must be {'numbers' if dtype.kind == 'f' else 'integers'}; got {bad!r}."
        )
    try:
        if dtype.kind == "f" and dtype.itemsize < 8:  # numpy would make a too large value inf
            return cast_checked(np.array(flat, dtype=np.float64), dtype, where)
        return np.array(flat, dtype=dtype)
    except OverflowError:
        raise InvalidInput(f"{where}: a value does not fit in {datatype}.") from None


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """Decode an inference request (JSON, or JSON header + binary tensors)."""
    if header_length is not None:
        try:
            head_size = int(header_length)
        except ValueError:
            raise BadRequest("Inference-Header-Content-Length must be an integer.") from None
        if not 0 < head_size <= len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length is {head_size}, but the body has {len(body)} bytes."
            )
        head, binary = body[:head_size], memoryview(body)[head_size:]
    else:
        head, binary = body, memoryview(b"")
    try:
        req = orjson.loads(head)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"Malformed JSON in the inference request: {e}.") from None
    if not isinstance(req, dict):
        raise BadRequest("The inference request must be a JSON object.")
    raw_inputs = req.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors.")
    request_id = req.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string.")
    params = req.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput("'parameters' must be an object.")
    tensors: list[Tensor] = []
    offset = 0
    seen: set[str] = set()
    for i, t in enumerate(raw_inputs):
        where = f"inputs[{i}]"
        if not isinstance(t, dict):
            raise InvalidInput(f"{where} must be an object with name, shape, datatype and data.")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{where}: 'name' must be a non-empty string.")
        if name in seen:
            raise InvalidInput(f"Input {name!r} is given twice.")
        seen.add(name)
        where = f"Input {name!r}"
        datatype = t.get("datatype")
        if datatype not in OIP_TO_NUMPY:
            raise InvalidInput(
                f"{where}: unknown datatype {datatype!r}.", hint=f"Use one of {', '.join(OIP_TO_NUMPY)}."
            )
        shape = _shape(t.get("shape"), where)
        count = _count(shape, where)
        tparams = t.get("parameters") or {}
        if not isinstance(tparams, dict):
            raise InvalidInput(f"{where}: 'parameters' must be an object.")
        size = tparams.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(binary):
                raise InvalidInput(f"{where}: binary_data_size {size!r} does not fit the binary data.")
            chunk = bytes(binary[offset : offset + size])
            offset += size
            if datatype == "BYTES":
                arr = _decode_bytes(chunk, count, where)
            else:
                dtype = np.dtype(OIP_TO_NUMPY[datatype]).newbyteorder("<")
                if size != count * dtype.itemsize:
                    raise InvalidInput(
                        f"{where}: shape {list(shape)} of {datatype} needs {count * dtype.itemsize} bytes; "
                        f"got {size}."
                    )
                arr = np.frombuffer(chunk, dtype=dtype).astype(dtype.newbyteorder("="))
        else:
            if "data" not in t:
                raise InvalidInput(f"{where}: no 'data' (and no binary_data_size).")
            arr = _json_tensor(t["data"], datatype, count, where)
        tensors.append(Tensor(name, arr.reshape(shape)))
    if offset != len(binary):
        raise InvalidInput(f"The body has {len(binary) - offset} bytes after the last binary input.")
    wanted: list[str] = []
    binary_outputs: set[str] = set()
    raw_outputs = req.get("outputs") or []
    if not isinstance(raw_outputs, list):
        raise InvalidInput("'outputs' must be a list.")
    for o in raw_outputs:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise InvalidInput("Each of 'outputs' must be an object with a 'name'.")
        wanted.append(o["name"])
        op = o.get("parameters") or {}
        if isinstance(op, dict) and op.get("binary_data") is True:
            binary_outputs.add(o["name"])
    return InferRequest(
        request_id, tensors, wanted, binary_outputs, params.get("binary_data_output") is True, params
    )


def _raw(arr: np.ndarray[Any, Any]) -> bytes:
    if arr.dtype.kind in "OUS":
        parts = []
        for v in arr.reshape(-1):
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def _json_data(arr: np.ndarray[Any, Any]) -> Any:
    flat = arr.reshape(-1)
    if flat.dtype.kind in "OUS":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    if flat.dtype.kind in "fc" and not np.all(np.isfinite(flat)):
        return [None if not np.isfinite(v) else v for v in flat.tolist()]  # JSON has no NaN
    return flat


def encode_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str,
    outputs: list[tuple[str, np.ndarray[Any, Any]]],
    binary: set[str] | None,
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, arr in outputs:
        if arr.dtype.kind == "M":
            arr = arr.astype(str)
        tensor: dict[str, Any] = {"name": name, "datatype": oip_datatype(arr.dtype), "shape": list(arr.shape)}
        if binary is not None and name in binary:
            raw = _raw(arr)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            tensor["data"] = _json_data(arr)
        tensors.append(tensor)
    payload: dict[str, Any] = {"model_name": model_name}
    if model_version:
        payload["model_version"] = model_version
    payload["id"] = request_id
    payload["outputs"] = tensors
    head = dumps(payload)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)
