"""``loopline serve`` with LOOPLINE_SERVE_AUTH=1: predictions need a viewer's bearer token; probes,
metadata and metrics stay open. Against a real serve process on 127.0.0.1, tokens in its database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from support import free_port, wait_http

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.config import Settings
from loopline.context import Context

from .helpers import Registry


@pytest.fixture(scope="module")
def served(registry: Registry) -> Iterator[tuple[str, dict[str, str]]]:
    store = SqlAuthStore(Context(Settings(tracking_uri=registry.tracking_uri)).engine)
    store.create_user("app")
    store.grant("app", "default", Role.VIEWER)
    store.create_user("stranger")  # known, but no role in the workspace
    tokens = {name: store.create_token(name, name="serve")[1] for name in ("app", "stranger")}
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))},
        "LOOPLINE_TRACKING_URI": registry.tracking_uri,
        "LOOPLINE_ARTIFACTS_URI": registry.artifacts_uri,
        "LOOPLINE_SERVE_AUTH": "1",
    }
    log = registry.home / "serve-auth.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopline.cli", "serve", "models:/churn/1", "--port", str(port),
             "--poll-interval", "0", "--no-inference-log"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/v2/health/ready", proc, timeout=120)
        yield url, tokens
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_predictions_need_a_viewers_token(served: tuple[str, dict[str, str]], registry: Registry) -> None:
    url, tokens = served
    rows = registry.X[:3]
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    oip = {
        "inputs": [
            {"name": c, "shape": [3], "datatype": "FP64", "data": rows[c].tolist()} for c in rows.columns
        ]
    }
    assert httpx.post(f"{url}/invocations", json=body).status_code == 401
    refused = httpx.post(f"{url}/v2/models/churn/infer", json=oip)
    assert refused.status_code == 401 and "bearer token" in refused.json()["error"]
    bad = {"Authorization": "Bearer llt_not-a-token"}
    assert httpx.post(f"{url}/invocations", json=body, headers=bad).status_code == 401
    stranger = {"Authorization": f"Bearer {tokens['stranger']}"}
    assert httpx.post(f"{url}/invocations", json=body, headers=stranger).status_code == 403
    app = {"Authorization": f"Bearer {tokens['app']}"}
    answer = httpx.post(f"{url}/invocations", json=body, headers=app)
    assert answer.status_code == 200 and answer.json()["predictions"] == registry.expected(1, rows)
    assert httpx.post(f"{url}/v2/models/churn/infer", json=oip, headers=app).status_code == 200
    # Probes, metadata and metrics stay open (an orchestrator's checks carry no token).
    for path in ("/ping", "/v2/health/ready", "/v2/models/churn", "/metrics"):
        assert httpx.get(url + path).status_code == 200, path
