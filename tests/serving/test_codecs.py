"""Decoding requests against a signature, and the OIP binary tensor format, without a server."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from loopline.errors import BadRequest, InvalidInput
from loopline.registry.signature import ColSpec, Signature, TensorSpec
from loopline.serving import oip
from loopline.serving.schema import FrameInput, NumericColumns, Tensor, TensorInput, compile_schema

COLS = (ColSpec("double", "age"), ColSpec("double", "income"), ColSpec("long", "visits"))


def numeric() -> NumericColumns:
    schema = compile_schema(Signature(COLS))
    assert isinstance(schema, NumericColumns)
    return schema


def test_every_mlflow_format_gives_the_same_matrix_in_signature_order() -> None:
    s = numeric()
    want = np.array([[30.0, 50.0, 3.0], [40.0, 60.0, 0.0]])
    cases = [
        s.from_split(["age", "income", "visits"], [[30, 50, 3], [40, 60, 0]]),
        s.from_split(["visits", "age", "income", "extra"], [[3, 30, 50, "x"], [0, 40, 60, "y"]]),
        s.from_records([{"age": 30, "income": 50, "visits": 3}, {"visits": 0, "income": 60, "age": 40}]),
        s.from_columns({"age": [30, 40], "income": [50, 60], "visits": [3, 0]}),
        s.from_frame(pd.DataFrame({"income": [50, 60], "age": [30, 40], "visits": [3, 0]})),
        s.from_tensors([Tensor("input-0", want.astype(np.float32))]),
        s.from_tensors([Tensor(n, want[:, i]) for i, n in enumerate(["age", "income", "visits"])]),
    ]
    for rows in cases:
        assert rows.n == 2
        np.testing.assert_array_equal(rows.data.floats, want)
        assert rows.data.ints.dtype == np.int64 and rows.data.ints[:, 0].tolist() == [3, 0]
    frame = s.model_input(s.join([cases[0].data, cases[1].data]))
    assert list(frame.columns) == ["age", "income", "visits"] and len(frame) == 4
    assert str(frame.dtypes["visits"]) == "int64" and str(frame.dtypes["age"]) == "float64"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda s: s.from_split(["age", "income"], [[1, 2]]), "'visits'"),
        (lambda s: s.from_split(["age", "income", "visits"], [[1, "x", 3]]), "'income'"),
        (lambda s: s.from_split(["age", "income", "visits"], [[1, 2, 3.5]]), "'visits'"),
        (lambda s: s.from_split(["age", "income", "visits"], [[1, 2]]), "Row 0 has 2 values"),
        (lambda s: s.from_split(["age", "income", "visits"], [[1, 2, [3]]]), "'visits'"),
        (lambda s: s.from_split(["age", "income", "visits"], "nope"), "'data'"),
        (lambda s: s.from_split(["age", "income", "visits"], []), "no rows"),
        (lambda s: s.from_split(None, [[1, 2, 3]]), "columns"),
        (lambda s: s.from_records([{"age": 1, "income": 2}]), "'visits'"),
        (lambda s: s.from_records([1, 2]), "JSON objects"),
        (lambda s: s.from_columns({"age": [1, 2], "income": [1], "visits": [1, 2]}), "same number"),
        (lambda s: s.from_array([[1, 2, 3]], "inputs"), "named columns"),
        (lambda s: s.from_tensors([Tensor("input-0", np.zeros((1, 2)))]), "[-1, 3]"),
        (lambda s: s.from_tensors([Tensor("input-0", np.array([["a", "b", "c"]], dtype=object))]), "numeric"),
    ],
)
def test_bad_input_is_refused_naming_the_field(call: Any, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        call(numeric())
    assert needle in str(err.value)


def test_tensor_signature_checks_shape_and_lossless_dtype() -> None:
    s = compile_schema(Signature((TensorSpec("float32", (-1, 4)),)))
    assert isinstance(s, TensorInput) and s.batchable
    rows = s.from_array([[1, 2, 3, 4]], "inputs")
    assert rows.n == 1 and rows.data.dtype == np.float32
    with pytest.raises(InvalidInput, match="shape"):
        s.from_array([[1, 2, 3]], "inputs")
    with pytest.raises(InvalidInput, match="dtype"):
        compile_schema(Signature((TensorSpec("int64", (-1, 2)),))).from_array([[1.5, 2.0]], "inputs")


def test_string_columns_go_through_enforce() -> None:
    s = compile_schema(Signature((ColSpec("string", "city"), ColSpec("double", "x"))))
    assert isinstance(s, FrameInput) and s.batchable
    rows = s.from_records([{"city": "Oslo", "x": 1}])
    assert rows.n == 1 and rows.data["x"].dtype == np.float64
    with pytest.raises(InvalidInput, match="'x'"):
        s.from_records([{"city": "Oslo", "x": "abc"}])
    joined = s.join([rows.data, s.from_split(["city", "x"], [["Rome", 2.0]]).data])
    assert list(joined["city"]) == ["Oslo", "Rome"]


def test_no_signature_passes_through_unbatched() -> None:
    s = compile_schema(None)
    assert not s.batchable
    assert s.from_array([[1, 2]], "inputs").n == 1


# ---- OIP -----------------------------------------------------------------------------------------


def binary_request(arrays: dict[str, np.ndarray[Any, Any]], **params: Any) -> tuple[bytes, str]:
    inputs, blobs = [], []
    for name, arr in arrays.items():
        if arr.dtype == object:
            raw = b"".join(struct.pack("<I", len(v)) + v for v in arr.reshape(-1))
            dt = "BYTES"
        else:
            raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            dt = oip.oip_datatype(arr.dtype) if hasattr(oip, "oip_datatype") else ""
        inputs.append(
            {
                "name": name,
                "shape": list(arr.shape),
                "datatype": dt,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        blobs.append(raw)
    head = orjson.dumps({"inputs": inputs, "parameters": params})
    return head + b"".join(blobs), str(len(head))


def test_binary_tensors_round_trip() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    words = np.array([b"ab", b"", b"xyz"], dtype=object)
    body, length = binary_request({"x": x, "w": words}, binary_data_output=True)
    req = oip.parse_infer(body, length)
    assert req.all_binary
    np.testing.assert_array_equal(req.inputs[0].array, x)
    assert list(req.inputs[1].array) == [b"ab", b"", b"xyz"]
    out, head_len = oip.encode_response(
        model_name="m", model_version="1", request_id="r", outputs=[("y", x * 2)], binary={"y"}
    )
    assert head_len is not None
    head = orjson.loads(out[:head_len])
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 24
    np.testing.assert_array_equal(np.frombuffer(out[head_len:], dtype="<f4").reshape(2, 3), x * 2)


def test_json_tensors_accept_nested_or_flat_data_and_check_counts_and_types() -> None:
    nested = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [[1, 2], [3, 4]]}]}
    flat = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}]}
    for body in (nested, flat):
        np.testing.assert_array_equal(
            oip.parse_infer(orjson.dumps(body), None).inputs[0].array, [[1, 2], [3, 4]]
        )
    bad = [
        ({"inputs": [{"name": "x", "shape": [3], "datatype": "INT64", "data": [1, 2]}]}, "3 elements"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}]}, "integers"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP99", "data": [1]}]}, "datatype"),
        ({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}, "negative"),
        ({"inputs": []}, "non-empty"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, "no 'data'"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [300]}]}, "fit"),
    ]
    for body, needle in bad:
        with pytest.raises(InvalidInput) as err:
            oip.parse_infer(orjson.dumps(body), None)
        assert needle in str(err.value)
    with pytest.raises(BadRequest):
        oip.parse_infer(b"{not json", None)
    with pytest.raises(BadRequest):
        oip.parse_infer(b"{}", "999")
    x = np.zeros(3, dtype=np.float32)
    body, length = binary_request({"x": x})
    with pytest.raises(InvalidInput, match="binary"):
        oip.parse_infer(body[:-4], length)
