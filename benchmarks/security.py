"""The cost of authentication: the same workloads against Loopline's servers with auth off and on.

* ``auth_tracking`` — the unmodified ``mlflow`` client's mixed workload (``tracking.py``'s
  ``server_cost``: 200 runs with params and metrics, a 50k-point log-batch, 300 single log-metric
  calls, the history, ten searches) against ``loopline server``, once with ``LOOPLINE_AUTH`` off and
  once on (the client sends ``MLFLOW_TRACKING_TOKEN``): the client's wall time and the server's CPU
  seconds (its whole process tree).
* ``auth_inference`` — ``loopline serve`` of a scikit-learn model, without and with ``--auth``: one
  keep-alive connection sending 2,000 single-row ``/invocations`` requests (the token in every one);
  p50 latency.

Goal (issue 20): auth on costs under 5%, so each row's ratio (off / on) is at least 0.95. The table's
"peer" column holds the auth-off figure. Each side runs three times, alternately, and the median is
reported: the difference being measured (a few µs a request) is smaller than a loaded machine's drift.

Run: ``python -m benchmarks --only auth_tracking auth_inference``.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Options,
    Report,
    Row,
    Server,
    WorkerError,
    clean_env,
    executable,
    free_port,
    log,
    median,
    run_worker,
    tracking_server,
    worker_main,
)

NAME = "security"
TITLE = "Security: Loopline's servers with authentication off and on (peer column: auth off)"
WORKLOADS = {
    "auth_tracking": "the mlflow client's mixed workload against loopline server, auth off vs on",
    "auth_inference": "loopline serve, one connection, single-row /invocations p50, --auth off vs on",
}
GOAL = 0.95  # off / on: auth costs under 5%
ROUNDS = 3  # each side measured three times, alternately; the median is reported

Params = dict[str, Any]
Result = dict[str, Any]


# ==== workers: each in its own interpreter ===========================================================


def make_token(p: Params) -> Result:
    """A user with a role in the default workspace, and a token of theirs, in the store ``p["uri"]``."""
    from loopline.auth.sql_store import SqlAuthStore
    from loopline.auth.types import Role
    from loopline.config import Settings
    from loopline.context import Context

    store = SqlAuthStore(Context(Settings(tracking_uri=p["uri"])).engine)
    store.create_user("bench")
    store.grant("bench", "default", Role[p.get("role", "EDITOR")])
    return {"token": store.create_token("bench", name="bench")[1]}


def prepare_model(p: Params) -> Result:
    """A registered scikit-learn model (churn v1) in the store named by the environment."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import loopline
    from loopline.registry import log_model

    rng = np.random.default_rng(20)
    X = pd.DataFrame(rng.normal(size=(500, 20)), columns=[f"f{i}" for i in range(20)])
    model = LogisticRegression().fit(X, (X.f0 > 0).astype(int))
    with loopline.start_run(experiment="bench-auth"):
        log_model(model, "model", input_example=X[:5], registered_model_name="churn")
    return {"row": X.iloc[0].tolist(), "columns": list(X.columns)}


def single_row_latency(p: Params) -> Result:
    """``p["n"]`` single-row requests on one keep-alive connection; each one's latency in ms."""
    body = json.dumps({"dataframe_split": {"columns": p["columns"], "data": [p["row"]]}})
    headers = {"Content-Type": "application/json"}
    if p.get("token"):
        headers["Authorization"] = f"Bearer {p['token']}"
    conn = http.client.HTTPConnection("127.0.0.1", int(p["port"]), timeout=30)
    latencies = []
    for i in range(int(p["warmup"]) + int(p["n"])):
        t0 = time.perf_counter()
        conn.request("POST", "/invocations", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/invocations answered {resp.status}: {data[:300]!r}")
        if i >= int(p["warmup"]):
            latencies.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return {"latencies": latencies}


WORKERS = {"make_token": make_token, "prepare_model": prepare_model, "single_row_latency": single_row_latency}


# ==== the runner ======================================================================================


def _tracking(root: Path, auth: bool, sizes: dict[str, int]) -> dict[str, float]:
    home = root / f"tracking-{'on' if auth else 'off'}"
    server = tracking_server("loopline", home)
    client_env: dict[str, str] = {}
    if auth:
        token = run_worker(NAME, "make_token", {"uri": f"sqlite:///{home / 'store.db'}"}, clean_env())[
            "token"
        ]
        server.env["LOOPLINE_AUTH"] = "1"
        client_env["MLFLOW_TRACKING_TOKEN"] = token
    try:
        server.start()
        server.settle()
        cpu0 = server.cpu_seconds()
        r = run_worker(
            "tracking",
            "loopline_server_cost",
            sizes,
            clean_env({"MLFLOW_TRACKING_URI": server.url, **client_env}),
        )
        return {"wall": r["seconds"], "cpu": server.cpu_seconds() - cpu0}
    finally:
        server.stop()


def _inference(root: Path, auth: bool, n: int) -> float:
    home = root / "serve-home"
    env = clean_env({"LOOPLINE_TRACKING_URI": f"sqlite:///{home / 'store.db'}"})
    ref_file = root / "model.json"
    if not ref_file.exists():
        home.mkdir(exist_ok=True)
        ref_file.write_text(json.dumps(run_worker(NAME, "prepare_model", {}, env)))
        ref_file.with_suffix(".token").write_text(
            run_worker(NAME, "make_token", {"uri": f"sqlite:///{home / 'store.db'}", "role": "VIEWER"}, env)[
                "token"
            ]
        )
    ref = json.loads(ref_file.read_text())
    port = free_port()
    cmd = [executable("loopline"), "serve", "models:/churn/1", "--port", str(port), "--log-level", "warning",
           "--no-inference-log", "--poll-interval", "0", *(["--auth"] if auth else [])]  # fmt: skip
    server = Server(f"serve-auth-{auth}", cmd, port, env, root / f"serve-{auth}.log")
    try:
        server.start(health="/ping")
        server.settle()
        params = {**ref, "port": port, "n": n, "warmup": 200}
        if auth:
            params["token"] = ref_file.with_suffix(".token").read_text()
        return median(run_worker(NAME, "single_row_latency", params, clean_env())["latencies"])
    finally:
        server.stop()


def run(options: Options) -> Report:
    import importlib.metadata as md

    report = Report(
        NAME,
        TITLE,
        peer_name="auth off",
        meta={
            "loopline_version": md.version("loopline"),
            "mlflow_version": md.version("mlflow"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "quick": options.quick,
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
    )
    sizes = {"runs": 50, "points": 10_000, "singles": 100, "searches": 5} if options.quick else {
        "runs": 200, "points": 50_000, "singles": 300, "searches": 10}  # fmt: skip
    n = 500 if options.quick else 2000
    with tempfile.TemporaryDirectory(prefix="loopline-bench-security-") as tmp:
        root = Path(tmp)
        if options.wants("auth_tracking"):
            try:
                offs, ons = [], []
                for _ in range(ROUNDS):  # alternated, so a drift of the machine's load hits both sides
                    offs.append(_tracking(root / f"r{len(offs)}", False, sizes))
                    ons.append(_tracking(root / f"r{len(ons)}", True, sizes))
                off = {k: median([r[k] for r in offs]) for k in ("wall", "cpu")}
                on = {k: median([r[k] for r in ons]) for k in ("wall", "cpu")}
                log(f"tracking: off {offs}, on {ons}")
                report.rows += [
                    Row(
                        "auth_tracking",
                        "1. mlflow client mix, wall time",
                        "s",
                        off["wall"],
                        on["wall"],
                        False,
                        GOAL,
                    ),
                    Row(
                        "auth_tracking",
                        "1. mlflow client mix, server CPU",
                        "s",
                        off["cpu"],
                        on["cpu"],
                        False,
                        GOAL,
                    ),
                ]
            except (WorkerError, RuntimeError) as e:
                report.rows.append(Row("auth_tracking", "1. mlflow client mix", "s", None, None, False, GOAL,
                                       error=str(e).splitlines()[0]))  # fmt: skip
        if options.wants("auth_inference"):
            try:
                off_p50s, on_p50s = [], []
                for _ in range(ROUNDS):
                    off_p50s.append(_inference(root, False, n))
                    on_p50s.append(_inference(root, True, n))
                off_p50, on_p50 = median(off_p50s), median(on_p50s)
                log(f"inference p50: off {off_p50s} ms, on {on_p50s} ms")
                report.rows.append(
                    Row("auth_inference", "2. serve, one connection, p50", "ms", off_p50, on_p50, False, GOAL)
                )
            except (WorkerError, RuntimeError) as e:
                report.rows.append(Row("auth_inference", "2. serve p50", "ms", None, None, False, GOAL,
                                       error=str(e).splitlines()[0]))  # fmt: skip
    report.meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


if __name__ == "__main__":
    worker_main(WORKERS, sys.argv[1:])
