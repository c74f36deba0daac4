"""Serve a registered model and call it both ways: MLflow's /invocations and the Open Inference Protocol.

    python examples/serve_model.py

Trains a churn classifier on made-up data, registers it as ``churn`` with the alias ``champion``
(in ./.loopline), starts ``loopline serve models:/churn@champion`` on a free port, sends a few
requests, posts ground truth for one of them, and stops the server. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopline
from loopline.registry import RegistryClient, log_model


def train_and_register() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, 500),
            "income": rng.normal(50, 10, 500),
            "visits": rng.integers(0, 20, 500),
        }
    )
    y = (X.age / 80 + X.visits / 20 > 1.0).astype(int)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    with loopline.start_run(experiment="churn"):
        info = log_model(model, "model", input_example=X[:5], registered_model_name="churn")
    RegistryClient().set_alias("churn", "champion", info.registered_model_version or 1)
    print(f"registered churn version {info.registered_model_version} as @champion")
    return X


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def main() -> None:
    X = train_and_register()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "loopline.cli", "serve", "models:/churn@champion", "--port", str(port)]
    server = subprocess.Popen(cmd, env={**os.environ, "LOOPLINE_SERVE_LOG_FLUSH": "0.5"})
    try:
        wait_ready(url, server)
        rows = X[:2]
        with httpx.Client(base_url=url) as http:
            # MLflow's scoring protocol.
            body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
            r = http.post("/invocations", json=body)
            print("MLflow /invocations:", r.json(), "answered by", r.headers["x-loopline-model-version"])
            request_id = r.headers["x-request-id"]

            # The Open Inference Protocol: one [n, 3] tensor, columns in signature order.
            meta = http.get("/v2/models/churn").json()
            print("OIP inputs:", meta["inputs"])
            infer = {
                "id": "example-1",
                "inputs": [
                    {"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": rows.to_numpy().tolist()}
                ],
            }
            out = http.post("/v2/models/churn/infer", json=infer).json()
            print("OIP /v2/models/churn/infer:", out["outputs"][0]["data"], "version", out["model_version"])

            # A bad request is refused with a message naming the column.
            bad = http.post("/invocations", json={"dataframe_split": {"columns": ["age"], "data": [[30]]}})
            print(f"bad request -> {bad.status_code}: {bad.json()['message']}")

            # Later, the true outcome arrives: join it to the prediction by request id.
            http.post("/api/2.0/loopline/feedback", json={"request_id": request_id, "ground_truth": [1, 0]})
            print("posted feedback for", request_id)
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: answers in-flight requests, writes the log
        server.wait(60)

    from loopline.serving import read_log
    from loopline.tracking import default_client

    log = read_log(default_client().artifacts, model="churn")
    print(f"inference log: {log.num_rows} predictions logged (read with loopline.serving.read_log)")


if __name__ == "__main__":
    main()
