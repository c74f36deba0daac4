"""Numeric edges against a real ``loopline serve``: every answer is the model's own ``predict`` on the
same values, or a 4xx when that refuses them (property-based, both protocols).

The model takes one column of each numeric type (``long``, ``integer``, ``float``, ``double``,
``boolean``) and its prediction turns on the sign of the ``long``: a value that went through a double
and overflowed (2**63 - 1 read as -2**63) is answered wrongly, not just imprecisely. A request is one
row; the oracle is ``load_model(uri).predict`` on the frame the same values make (pandas picks each
column's dtype from the value, as for any caller), and whatever it refuses the server must refuse.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from support import free_port, wait_http

COLUMNS = ["big", "small", "f32", "x", "flag"]
I64 = 2**63
EDGES = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Served:
    url: str
    model: Any  # load_model(uri): the oracle


def _train(home: Path) -> tuple[str, str]:
    from sklearn.tree import DecisionTreeClassifier

    from loopline.config import Settings
    from loopline.registry import log_model
    from loopline.tracking import Client

    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "big": (rng.choice([-1, 1], n) * rng.integers(1, I64 - 1, n, dtype=np.int64)).astype(np.int64),
            "small": rng.integers(-(2**31), 2**31 - 1, n, dtype=np.int64).astype(np.int32),
            "f32": rng.normal(size=n).astype(np.float32),
            "x": rng.normal(size=n),
            "flag": rng.random(n) > 0.5,
        }
    )
    y = (frame.big > 0).astype(int) * 2 + (frame.x > 0).astype(int)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame, y)
    tracking_uri, artifacts_uri = f"sqlite:///{home / 'db.sqlite'}", str(home / "artifacts")
    client = Client(Settings.from_env({}, tracking_uri=tracking_uri, artifacts_uri=artifacts_uri))
    run = client.create_run(client.set_experiment("edges").experiment_id)
    log_model(
        model,
        "model",
        input_example=frame[:5],
        registered_model_name="edges",
        run_id=run.info.run_id,
        client=client,
    )
    client.close()
    return tracking_uri, artifacts_uri


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from loopline.config import Settings
    from loopline.registry import load_model
    from loopline.tracking import Client

    home = tmp_path_factory.mktemp("edges")
    tracking_uri, artifacts_uri = _train(home)
    client = Client(Settings.from_env({}, tracking_uri=tracking_uri, artifacts_uri=artifacts_uri))
    model = load_model("models:/edges/1", client=client)
    signature = {c.name: c.type for c in model.signature.columns}
    assert signature == {"big": "long", "small": "integer", "f32": "float", "x": "double", "flag": "boolean"}
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))},
        "LOOPLINE_TRACKING_URI": tracking_uri,
        "LOOPLINE_ARTIFACTS_URI": artifacts_uri,
    }
    log = home / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loopline.cli",
                "serve",
                "models:/edges/1",
                "--port",
                str(port),
                "--poll-interval",
                "0",
                "--no-inference-log",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/v2/health/ready", proc, timeout=120)
        yield Served(url, model)
    finally:
        proc.terminate()
        proc.wait(30)
        client.close()
    assert "Traceback" not in log.read_text(), log.read_text()


def oracle(model: Any, frame: pd.DataFrame) -> list[Any] | None:
    """The model's own answer on ``frame``, or None when it refuses the values."""
    try:
        return [v.item() if hasattr(v, "item") else v for v in model.predict(frame)]
    except Exception:
        return None


def check(r: httpx.Response, want: list[Any] | None, got: Any, sent: Any) -> None:
    assert r.status_code < 500, (sent, r.text)
    if want is None:
        assert 400 <= r.status_code < 500, f"{sent!r}: answered {r.text} where predict refuses"
    else:
        assert r.status_code == 200, f"{sent!r}: refused ({r.text}) where predict answers {want}"
        assert got(r.json()) == want, sent


# ---- values at the edges of each type ----------------------------------------------------------

longs = st.one_of(
    st.integers(-I64, I64 - 1),
    st.sampled_from([I64 - 1, -I64, I64, -I64 - 1, 2**64 - 1, 2**64, 2**70, 2**53 + 1, -(2**53) - 1, 0]),
    st.sampled_from([1.0, -3.0, 1.5, 1e17, 2.0**63, float("nan"), float("inf"), None]),
)
ints = st.one_of(
    st.integers(-(2**31) - 2, 2**31 + 1),
    st.sampled_from([2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**63, 7.0, 7.5, None]),
)
f32_max = float(np.finfo(np.float32).max)
float32s = st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.sampled_from([f32_max, -f32_max, 3.5e38, -1e39, 1e300, float("nan"), float("inf"), None]),
)
doubles = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e308, 5e-324, None]))
flags = st.one_of(st.booleans(), st.sampled_from([0, 1, 2, -1, 0.0, 0.5, None]))
rows = st.fixed_dictionaries({"big": longs, "small": ints, "f32": float32s, "x": doubles, "flag": flags})


def _json_safe(v: Any) -> bool:
    return not (isinstance(v, float) and not np.isfinite(v))


def _body(fmt: str, row: dict[str, Any]) -> dict[str, Any]:
    if fmt == "dataframe_split":
        return {fmt: {"columns": COLUMNS, "data": [[row[c] for c in COLUMNS]]}}
    if fmt == "inputs":
        return {fmt: {c: [row[c]] for c in COLUMNS}}
    return {fmt: [row]}  # dataframe_records, instances


@EDGES
@given(
    row=rows.filter(lambda r: all(_json_safe(v) for v in r.values())),
    fmt=st.sampled_from(["dataframe_split", "dataframe_records", "inputs", "instances"]),
)
def test_mlflow_json_answers_as_the_model_or_refuses(served: Served, row: dict[str, Any], fmt: str) -> None:
    want = oracle(served.model, pd.DataFrame.from_records([row], columns=COLUMNS))
    # The standard library writes integers of any size as they are (orjson stops at 64 bits).
    content = json.dumps(_body(fmt, row))
    r = httpx.post(served.url + "/invocations", content=content, headers={"content-type": "application/json"})
    check(r, want, lambda body: body["predictions"], row)


@EDGES
@given(row=rows)
def test_csv_answers_as_the_model_or_refuses(served: Served, row: dict[str, Any]) -> None:
    text = pd.DataFrame.from_records([row], columns=COLUMNS).to_csv(index=False)
    want = oracle(served.model, pd.read_csv(io.StringIO(text)))  # the frame the server reads too
    r = httpx.post(served.url + "/invocations", content=text, headers={"content-type": "text/csv"})
    check(r, want, lambda body: body["predictions"], row)


def _tensor(value: Any, natural: str) -> tuple[str, np.ndarray[Any, Any]]:
    """The OIP datatype and array a client would send ``value`` as (its column's type if it fits)."""
    if value is None:
        return "FP64", np.array([np.nan])
    if isinstance(value, bool):
        return "BOOL", np.array([value])
    if isinstance(value, int):
        for datatype in (*([natural] if "INT" in natural else []), "INT64", "UINT64"):
            info = np.iinfo(datatype.lower())
            if info.min <= value <= info.max:
                return datatype, np.array([value], dtype=datatype.lower())
        return "FP64", np.array([float(value)])
    if natural == "FP32" and (not np.isfinite(value) or abs(value) <= f32_max):
        return "FP32", np.array([value], dtype=np.float32)
    return "FP64", np.array([value], dtype=np.float64)


NATURAL = {"big": "INT64", "small": "INT32", "f32": "FP32", "x": "FP64", "flag": "BOOL"}


@EDGES
@given(row=rows)
def test_oip_binary_tensors_answer_as_the_model_or_refuse(served: Served, row: dict[str, Any]) -> None:
    tensors = {c: _tensor(row[c], NATURAL[c]) for c in COLUMNS}
    want = oracle(served.model, pd.DataFrame({c: arr for c, (_, arr) in tensors.items()}))
    head: dict[str, Any] = {"inputs": []}
    blobs = b""
    for c, (datatype, arr) in tensors.items():
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        head["inputs"].append(
            {"name": c, "datatype": datatype, "shape": [1], "parameters": {"binary_data_size": len(raw)}}
        )
        blobs += raw
    header = json.dumps(head).encode()
    r = httpx.post(
        served.url + "/v2/models/edges/infer",
        content=header + blobs,
        headers={
            "inference-header-content-length": str(len(header)),
            "content-type": "application/octet-stream",
        },
    )
    check(r, want, lambda body: body["outputs"][0]["data"], tensors)


# ---- fixed cases: the issue's, and what /v2 checks besides values -------------------------------


def test_the_largest_long_is_answered_exactly_on_every_path(served: Served) -> None:
    row = {"big": I64 - 1, "small": 1, "f32": 0.5, "x": -1.0, "flag": True}
    want = oracle(served.model, pd.DataFrame.from_records([row], columns=COLUMNS))
    wrapped = oracle(served.model, pd.DataFrame.from_records([{**row, "big": -I64}], columns=COLUMNS))
    assert want is not None and want != wrapped  # a value that went through a double would be wrong
    for fmt in ("dataframe_split", "dataframe_records", "inputs", "instances"):
        r = httpx.post(
            served.url + "/invocations",
            content=json.dumps(_body(fmt, row)),
            headers={"content-type": "application/json"},
        )
        assert (r.status_code, r.json()) == (200, {"predictions": want}), (fmt, r.text)
    text = pd.DataFrame.from_records([row], columns=COLUMNS).to_csv(index=False)
    r = httpx.post(served.url + "/invocations", content=text, headers={"content-type": "text/csv"})
    assert r.json() == {"predictions": want}
    inputs = [{"name": c, "datatype": NATURAL[c], "shape": [1], "data": [row[c]]} for c in COLUMNS]
    r = httpx.post(served.url + "/v2/models/edges/infer", json={"inputs": inputs})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == want, r.text
    for too_big in (I64, 2**64, 2**70, -I64 - 1):
        r = httpx.post(
            served.url + "/invocations",
            content=json.dumps(_body("dataframe_split", {**row, "big": too_big})),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and "'big' must be long" in r.json()["message"], r.text
        inputs[0]["data"] = [too_big]
        r = httpx.post(served.url + "/v2/models/edges/infer", content=json.dumps({"inputs": inputs}))
        assert r.status_code == 400 and "'big'" in r.json()["error"], r.text
    inputs[0]["data"] = [row["big"]]


def test_oip_refuses_unknown_names_and_wrong_datatypes_or_shapes(served: Served) -> None:
    good = [
        {"name": c, "datatype": NATURAL[c], "shape": [1], "data": [v]}
        for c, v in zip(COLUMNS, [5, 1, 0.5, 1.0, True], strict=True)
    ]
    infer = served.url + "/v2/models/edges/infer"
    assert httpx.post(infer, json={"inputs": good}).status_code == 200
    cases = [
        ([{**good[0], "name": "bigg"}, *good[1:]], "no input 'bigg'", "big, small, f32, x, flag"),
        (
            [{"name": "dense", "datatype": "FP64", "shape": [1, 5], "data": [1, 2, 3, 4, 5]}],
            "'dense'",
            "input-0",
        ),
        ([{**good[0], "datatype": "BYTES", "data": ["5"]}, *good[1:]], "'big' must be numeric", ""),
        ([good[0], {**good[1], "shape": [2], "data": [5, 6]}, *good[2:]], "'small' has shape [2]", ""),
        ([{**good[0], "shape": [1], "data": [5, 6]}, *good[1:]], "shape needs 1 elements", ""),
        (
            [{**good[2], "datatype": "FP32", "data": [1e39]}, *good[:2], *good[3:]],
            "too large for float32",
            "",
        ),
    ]
    for inputs, needle, expected in cases:
        r = httpx.post(infer, json={"inputs": inputs})
        assert r.status_code == 400, (inputs, r.text)
        assert needle in r.json()["error"] and expected in r.json()["error"], r.text


def test_a_gzip_body_is_decoded_on_both_protocols_and_other_encodings_are_refused(served: Served) -> None:
    row = {"big": I64 - 1, "small": 1, "f32": 0.5, "x": 1.0, "flag": False}
    want = oracle(served.model, pd.DataFrame.from_records([row], columns=COLUMNS))
    body = gzip.compress(json.dumps(_body("dataframe_records", row)).encode())
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    r = httpx.post(served.url + "/invocations", content=body, headers=headers)
    assert (r.status_code, r.json()) == (200, {"predictions": want}), r.text
    inputs = [{"name": c, "datatype": NATURAL[c], "shape": [1], "data": [row[c]]} for c in COLUMNS]
    r = httpx.post(
        served.url + "/v2/models/edges/infer",
        content=gzip.compress(json.dumps({"inputs": inputs}).encode()),
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == want, r.text
    r = httpx.post(served.url + "/invocations", content=body, headers={**headers, "content-encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding 'br'" in r.json()["message"]
    r = httpx.post(served.url + "/invocations", content=body[:-12], headers=headers)
    assert r.status_code == 400 and "not valid gzip" in r.json()["message"]
    bomb = gzip.compress(b" " * (80 << 20))  # 80 MB of spaces: more than the body limit once decoded
    r = httpx.post(served.url + "/invocations", content=bomb, headers=headers, timeout=60)
    assert r.status_code == 413 and "decompressed" in r.json()["message"]
