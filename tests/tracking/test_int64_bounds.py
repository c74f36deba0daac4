"""Steps and timestamps are 64-bit integers: the bounds are kept exactly, one past them is refused
(on the server, whatever JSON number a client writes, and by the client before it queues a point)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.tracking import Client

API = "/api/2.0/mlflow"
LOW, HIGH = -(2**63), 2**63 - 1
# -2**63-1 and 2**64 are what orjson reads as floats (rounded to -2**63 and 2**64): the cases that
# were stored silently as -2**63.
OUTSIDE = [LOW - 1, HIGH + 1, 2**64, -(2**64), 2**70, float(2**63), -1e19]


def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    # The standard library writes integers of any size as they are.
    return httpx.post(
        url + API + path, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def test_the_server_keeps_the_bounds_and_refuses_one_past_them(loopline_server: str) -> None:
    exp = _post(loopline_server, "/experiments/create", {"name": "bounds"}).json()["experiment_id"]
    run_id = _post(loopline_server, "/runs/create", {"experiment_id": exp}).json()["run"]["info"]["run_id"]
    point = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    for field in ("step", "timestamp"):
        for bad in OUTSIDE:
            sent = {**point, field: bad}
            for path, body in (
                ("/runs/log-metric", {"run_id": run_id, **sent}),
                ("/runs/log-batch", {"run_id": run_id, "metrics": [sent]}),
            ):
                r = _post(loopline_server, path, body)
                assert r.status_code == 400, (path, field, bad, r.text)
                assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
                assert field in r.json()["message"] and "64-bit integer" in r.json()["message"]
    for i, (step, ts) in enumerate([(LOW, LOW), (HIGH, HIGH), (LOW, HIGH)]):
        body = {"run_id": run_id, **point, "key": f"e{i}", "step": step, "timestamp": ts}
        r = _post(loopline_server, "/runs/log-metric", body)
        assert r.status_code == 200, r.text
        history = httpx.get(
            loopline_server + API + "/metrics/get-history", params={"run_id": run_id, "metric_key": f"e{i}"}
        )
        assert [(m["step"], m["timestamp"]) for m in history.json()["metrics"]] == [(step, ts)]


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_the_client_refuses_a_step_or_timestamp_outside_int64_when_it_is_logged(
    where: str, local_settings: Settings, loopline_server: str
) -> None:
    settings = local_settings if where == "embedded" else Settings.from_env({}, tracking_uri=loopline_server)
    client = Client(settings)
    try:
        run_id = client.create_run(client.set_experiment("bounds").experiment_id).info.run_id
        for kwargs in ({"step": LOW - 1}, {"step": HIGH + 1}, {"timestamp": LOW - 1}, {"timestamp": 2**64}):
            with pytest.raises(InvalidInput, match="64-bit integer"):
                client.log_metric(run_id, "m", 1.0, **kwargs)
        client.log_metric(run_id, "m", 1.0, step=LOW, timestamp=HIGH)
        client.flush()
        assert [(m.step, m.timestamp) for m in client.get_metric_history(run_id, "m")] == [(LOW, HIGH)]
    finally:
        client.close()
