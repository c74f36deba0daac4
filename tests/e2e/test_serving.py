"""``loopline serve`` as a real subprocess on 127.0.0.1, driven by real clients.

tritonclient.http (JSON and binary tensors), MLflow's own scoring client, plain httpx; a 90/10
canary with a shadow; an alias move under concurrent load; a hypothesis fuzz of both inference
bodies; graceful shutdown with requests in flight. One server per module (per xdist worker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from serving.helpers import COLUMNS, Registry, make_registry
from support import free_port, wait_http

from loopline.registry import RegistryClient
from loopline.serving import read_log, set_deployment

pytestmark = pytest.mark.e2e


@dataclass
class Served:
    url: str
    port: int
    registry: Registry
    proc: subprocess.Popen[bytes]
    log: Path


def split(X: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(X.columns), "data": X.to_numpy().tolist()}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serving")
    registry = make_registry(home)
    set_deployment(
        "churn-prod",
        [("models:/churn@champion", 90), ("models:/churn@challenger", 10)],
        shadow="models:/churn/3",
        client=registry.client(),
    )
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))},
        "LOOPLINE_TRACKING_URI": registry.tracking_uri,
        "LOOPLINE_ARTIFACTS_URI": registry.artifacts_uri,
        "LOOPLINE_SERVE_LOG_FLUSH": "0.3",
    }
    log = home / "serve.log"
    with open(log, "wb") as out:  # a file, not a pipe nobody reads
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loopline.cli",
                "serve",
                "--deployment",
                "churn-prod",
                "--port",
                str(port),
                "--poll-interval",
                "0.3",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/v2/health/ready", proc, timeout=120)
        yield Served(url, port, registry, proc, log)
        graceful_shutdown(url, proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert "Traceback" not in text, text


def graceful_shutdown(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM with requests in flight: each is answered, then the process exits 0."""
    body = split(pytest.importorskip("pandas").DataFrame([[0.0] * 20], columns=COLUMNS))
    started = threading.Barrier(5)
    codes: list[int] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            started.wait()
            for _ in range(200):
                try:
                    codes.append(http.post("/invocations", json=body).status_code)
                except httpx.TransportError:
                    return  # the listener closed: no new requests accepted after SIGTERM

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(30)
    # uvicorn re-raises the signal once it has shut down cleanly, so the exit status is SIGTERM's.
    assert proc.wait(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()
    assert codes and set(codes) == {200}, Counter(codes)


def test_tritonclient_in_json_and_binary_mode(served: Served) -> None:
    import tritonclient.http as triton

    X = served.registry.X.iloc[:5]
    client = triton.InferenceServerClient(f"127.0.0.1:{served.port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("churn") and client.is_model_ready("churn", "1")
        meta = client.get_model_metadata("churn")
        assert meta["name"] == "churn" and meta["inputs"][0]["shape"] == [-1, 20]
        assert set(meta["versions"]) == {"1", "2"}
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        for binary in (True, False):
            inp = triton.InferInput("input-0", [5, 20], "FP32")
            inp.set_data_from_numpy(X.to_numpy().astype(np.float32), binary_data=binary)
            for version in ("1", "2"):
                out = triton.InferRequestedOutput("output-0", binary_data=binary)
                result = client.infer("churn", [inp], model_version=version, outputs=[out], request_id="t-1")
                assert result.get_response()["id"] == "t-1"
                assert list(result.as_numpy("output-0")) == served.registry.expected(int(version), X)
            result = client.infer("churn", [inp])  # no outputs named: tritonclient asks for binary ones
            answered = int(result.get_response()["model_version"])
            assert answered in (1, 2)
            assert list(result.as_numpy("output-0")) == served.registry.expected(answered, X)
        bad = triton.InferInput("input-0", [1, 3], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
        with pytest.raises(triton.InferenceServerException, match=r"\[-1, 20\]"):
            client.infer("churn", [bad], model_version="1")
    finally:
        client.close()


def test_mlflow_scoring_client_and_plain_http(served: Served) -> None:
    with warnings.catch_warnings():  # mlflow warns about its own type hints on import
        warnings.simplefilter("ignore")
        from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    X = served.registry.X.iloc[:4]
    allowed = {tuple(served.registry.expected(v, X)) for v in (1, 2)}
    scoring = ScoringServerClient("127.0.0.1", served.port)
    scoring.ping()
    assert tuple(scoring.invoke(X).get_predictions().iloc[:, 0].tolist()) in allowed
    with httpx.Client(base_url=served.url) as http:
        for body in (
            split(X),
            {"dataframe_records": X.to_dict(orient="records")},
            {"inputs": X.to_dict("list")},
        ):
            r = http.post("/invocations", json=body)
            assert r.status_code == 200
            assert tuple(r.json()["predictions"]) in allowed
        r = http.post("/invocations", content=X.to_csv(index=False), headers={"content-type": "text/csv"})
        assert tuple(r.json()["predictions"]) in allowed
        assert (
            http.post("/invocations", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
        )
        r = http.post("/invocations", json={**split(X), "inputs": X.to_dict("list")})
        assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"


def test_canary_split_over_http_and_the_shadow_never_answers(served: Served) -> None:
    X = served.registry.X.iloc[:1]
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=served.url) as http:
        for _ in range(400):
            r = http.post("/invocations", json=split(X))
            assert r.status_code == 200
            seen[r.headers["x-loopline-model-version"]] += 1
    # The champion may be moved by the alias test on another worker's server only, never this one's
    # mid-test; 10% of 400 is 40 +- 6 (sd): 4.5 sigma bounds.
    assert set(seen) == {"models:/churn/1", "models:/churn/2"}, seen
    assert 13 <= seen["models:/churn/2"] <= 67, seen


def test_shadow_answers_and_feedback_reach_the_inference_log(served: Served) -> None:
    X = served.registry.X.iloc[:1]
    with httpx.Client(base_url=served.url) as http:
        ids = [http.post("/invocations", json=split(X)).headers["x-request-id"] for _ in range(20)]
        r = http.post(
            "/api/2.0/loopline/feedback",
            json={"feedback": [{"request_id": i, "ground_truth": 1} for i in ids]},
        )
        assert r.json() == {"accepted": 20}
    store = served.registry.client().artifacts
    deadline = time.monotonic() + 20
    while True:
        rows = read_log(store, model="churn").to_pylist()
        mine = [row for row in rows if row["request_id"] in set(ids)]
        feedback = [row for row in read_log(store, "feedback").to_pylist() if row["request_id"] in set(ids)]
        if (len(mine) == 40 and len(feedback) == 20) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    roles = Counter((row["role"], row["version"]) for row in mine)
    assert roles[("shadow", "3")] == 20, roles  # every request copied to the shadow, under the same id
    assert sum(n for (role, v), n in roles.items() if role == "primary" and v in ("1", "2")) == 20, roles
    expected_shadow = served.registry.expected(3, X)
    assert all(row["outputs"] == f"[{expected_shadow[0]}]" for row in mine if row["role"] == "shadow")
    assert len(feedback) == 20


def test_metrics_in_prometheus_format(served: Served) -> None:
    with httpx.Client(base_url=served.url) as http:
        http.post("/invocations", json=split(served.registry.X.iloc[:2]))
        text = http.get("/metrics").text
    assert 'loopline_requests_total{code="200",model="churn",protocol="mlflow",version=' in text
    assert "loopline_request_duration_seconds_bucket" in text
    assert 'loopline_batch_rows_count{model="churn",version="1"}' in text
    assert 'loopline_shadow_requests_total{model="churn",outcome="ok",version="3"}' in text


def test_an_alias_move_under_concurrent_load_drops_no_request(served: Served) -> None:
    X = served.registry.X.iloc[:1]
    rc = RegistryClient(served.registry.client())
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            while not stop.is_set():
                r = http.post("/invocations", json=split(X))
                with lock:
                    results.append((r.status_code, r.headers.get("x-loopline-model-version", "")))

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        rc.set_alias("churn", "champion", 3)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with lock:
                recent = [v for _, v in results[-30:]]
            if recent.count("models:/churn/3") >= 15:
                break
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        rc.set_alias("churn", "champion", 1)
    codes = Counter(code for code, _ in results)
    versions = Counter(v for _, v in results)
    assert codes == {200: len(results)}, codes  # nothing dropped or failed during the swap
    assert versions["models:/churn/1"] > 0 and versions["models:/churn/3"] > 0, versions
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=served.url) as http:  # and back, for the other tests
        while time.monotonic() < deadline:
            state = http.get("/api/2.0/loopline/deployment").json()
            if state["routes"][0]["model"] == "models:/churn/1":
                break
            time.sleep(0.1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
scoring_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "dataframe_split": st.fixed_dictionaries(
                {
                    "data": json_values
                    | st.lists(
                        st.lists(st.floats() | st.integers() | st.text(max_size=3), max_size=21), max_size=3
                    )
                },
                optional={"columns": st.lists(st.sampled_from([*COLUMNS, "x"]), max_size=21) | json_values},
            ),
            "dataframe_records": json_values,
            "instances": json_values,
            "inputs": json_values | st.dictionaries(st.sampled_from(COLUMNS), json_values, max_size=20),
            "params": json_values,
        },
    ),
)
tensor = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["input-0", "f0", "x"]) | json_values,
        "shape": st.lists(st.integers(-2, 25), max_size=3) | json_values,
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BOOL", "BYTES", "UINT8", "FP16", "X"]),
        "data": json_values | st.lists(st.floats(allow_nan=False, width=32), max_size=40),
        "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), json_values, max_size=2),
    },
)
infer_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "inputs": st.lists(tensor, max_size=3) | json_values,
            "outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=8)}), max_size=2)
            | json_values,
            "id": json_values,
            "parameters": st.dictionaries(
                st.sampled_from(["binary_data_output", "x"]), json_values, max_size=2
            ),
        },
    ),
)


def test_fuzzed_bodies_never_get_a_5xx(served: Served) -> None:
    import json

    with httpx.Client(base_url=served.url, timeout=30) as http:

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(body=scoring_bodies)
        def scoring(body: Any) -> None:
            r = http.post(
                "/invocations", content=json.dumps(body), headers={"content-type": "application/json"}
            )
            assert r.status_code < 500, (body, r.text)

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(
            body=infer_bodies,
            path=st.sampled_from(["churn/infer", "churn/versions/1/infer"]),
            header=st.none() | st.integers(-5, 400).map(str),
            tail=st.binary(max_size=16),
        )
        def infer(body: Any, path: str, header: str | None, tail: bytes) -> None:
            headers = {"content-type": "application/json"}
            if header is not None:
                headers["inference-header-content-length"] = header
            r = http.post(f"/v2/models/{path}", content=json.dumps(body).encode() + tail, headers=headers)
            assert r.status_code < 500, (body, header, r.text)

        scoring()
        infer()
        assert http.get("/v2/health/ready").status_code == 200  # the worker survived all of it
