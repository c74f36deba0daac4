"""Monitors end to end: a real inference log, feedback, stored profiles, events, webhooks, /metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from monitor_data import deploy

from loopline.config import Settings
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata import lineage
from loopline.monitoring.alerts import post_alert
from loopline.monitoring.monitors import Monitors
from loopline.monitoring.runner import MonitorRunner
from loopline.monitoring.sql_store import SqlMonitoringStore
from loopline.serving.inference_log import Feedback, InferenceLog, Prediction

FEATURES = ["age", "plan"]


SECRET = "the webhook signing key"


class Hook:
    """A webhook receiver on 127.0.0.1 that answers 503 to the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.signed: list[tuple[bytes, str | None]] = []  # (body, X-Loopline-Signature)
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                status = 503 if hook.attempts <= fail_first else 200
                if status == 200:
                    hook.received.append(json.loads(body))
                    hook.signed.append((body, self.headers.get("X-Loopline-Signature")))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook(fail_first=1)
    yield h
    h.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    settings = Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'l.db'}",
        artifacts_uri=str(tmp_path / "art"),
        user="tester",
        webhook_allow="127.0.0.1",  # the test's receiver; loopback targets are refused by default
        webhook_secret=SECRET,
    )
    mons = Monitors(settings)
    rng = np.random.default_rng(5)
    n = 600
    ref = pd.DataFrame({"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b", "c"], n)})
    ref["label"] = (ref.age > 40).astype(int)
    ref.to_parquet(tmp_path / "train.parquet")
    deploy(mons.context)
    return {"mons": mons, "ref": str(tmp_path / "train.parquet"), "rng": rng, "tmp": tmp_path}


def log_requests(
    mons: Monitors, rng: np.random.Generator, n: int, shift: float, start: int, label_noise: float
) -> None:
    log = InferenceLog(mons.artifacts, flush_interval=3600)
    now = int(time.time() * 1000)
    for i in range(n):
        age = float(rng.normal(40 + shift, 10))
        plan = str(rng.choice(["a", "b", "c"] if shift == 0 else ["a", "c"]))
        rid = f"r{start + i}"
        pred = int(age > 40)
        log.log_prediction(
            Prediction(
                rid,
                now,
                "churn-prod",
                "churn",
                "1",
                "primary",
                1,
                {"columns": FEATURES, "data": [[age, plan]]},
                [pred],
                1.0,
                200,
            )
        )
        truth = pred if rng.random() > label_noise else 1 - pred
        log.log_feedback(Feedback(rid, now, truth))
    log.log_prediction(
        Prediction("bad", now, "churn-prod", "churn", "1", "primary", 1, None, None, 1.0, 400, "x")
    )
    log.flush()


def test_monitor_runs_read_only_new_rows_and_alert_on_drift(env: dict[str, Any], hook: Hook) -> None:
    mons: Monitors = env["mons"]
    mons.create(
        "churn",
        deployment="churn-prod",
        reference=env["ref"],
        window="1000rows",
        target="label",
        categorical=["label"],
        webhooks=[hook.url],
        thresholds={"accuracy": 0.9},
    )
    with pytest.raises(AlreadyExists):
        mons.create("churn", deployment="churn-prod", reference=env["ref"])
    log_requests(mons, env["rng"], 300, shift=0, start=0, label_noise=0.02)
    stages: list[Any] = []
    first = mons.run("churn", progress=stages.append)
    assert first.run.status == "ok" and first.run.new_rows == 300 and first.run.rows == 300
    assert [(p.done, p.total, p.message) for p in stages] == [
        (0, 4, "reading the reference"),
        (1, 4, "reading the inference log"),
        (2, 4, "computing drift"),
        (3, 4, "recording the run"),
        (4, 4, "done"),
    ]
    assert first.report is not None and not first.report.dataset_drift
    assert first.metrics["performance.labelled_rows"] == 300 and first.metrics["performance.accuracy"] > 0.95
    assert hook.received == []

    again = mons.run("churn")  # nothing new in the log: the window is the stored buffer, no rescans
    assert again.run.new_rows == 0 and again.run.rows == 300

    log_requests(mons, env["rng"], 500, shift=15, start=1000, label_noise=0.3)
    third = mons.run("churn")
    assert third.run.new_rows == 500 and third.run.rows == 800
    assert third.report is not None and third.report.dataset_drift
    assert set(third.report.drifted_columns) == {"age", "plan"}
    assert third.report.prediction_drift is not None and third.report.prediction_drift.drifted
    assert third.metrics["performance.accuracy"] < 0.9
    assert {a["event"] for a in third.alerts} == {"monitor.drift_detected", "monitor.performance_degraded"}
    # Webhooks: the first POST got a 503 and was retried; both alerts arrived as JSON.
    assert [d.ok for d in third.deliveries] == [True, True] and third.deliveries[0].attempts == 2
    assert {p["event"] for p in hook.received} == {"monitor.drift_detected", "monitor.performance_degraded"}
    for body, signature in hook.signed:  # signed with LOOPLINE_WEBHOOK_SECRET, as the loop's are
        assert signature == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    drift_alert = next(p for p in hook.received if p["event"] == "monitor.drift_detected")
    assert drift_alert["monitor"] == "churn" and "age" in drift_alert["drifted_columns"]
    events = lineage.list_events(mons.context.engine, "default", "monitors:/churn")
    assert [e.action for e in events].count("monitor.drift_detected") == 1
    assert [e.action for e in events].count("monitor.run") == 3

    hist = mons.history("churn", ["drift_share", "performance.accuracy"])
    shares = [v for _, k, v in hist if k == "drift_share"]
    assert len(shares) == 3 and shares[-1] == 1.0 and shares[0] == 0.0
    latest = mons.store.latest_metrics()["churn"]
    assert latest["drift_share"] == 1.0 and "drift.age" in latest and "missing_share.age" in latest


def test_reference_profile_is_built_once_per_reference(env: dict[str, Any]) -> None:
    mons: Monitors = env["mons"]
    mons.create("m1", deployment="churn-prod", reference=env["ref"], window="1h")
    log_requests(mons, env["rng"], 50, shift=0, start=0, label_noise=0)
    mons.run("m1")
    profiles = list(mons.artifacts.walk("monitoring/profiles"))
    assert len(profiles) == 1
    Path(env["ref"]).unlink()  # a later run never reads the reference again
    assert mons.run("m1").run.status == "ok"
    assert len(list(mons.artifacts.walk("monitoring/profiles"))) == 1


def test_reference_defaults_to_the_training_data_found_through_lineage(env: dict[str, Any]) -> None:
    from loopline.metadata.engine import write_transaction
    from loopline.registry.sql_store import SqlRegistryStore

    mons: Monitors = env["mons"]
    reg = SqlRegistryStore(mons.context.engine, workspace="default", actor="t")
    reg.create_registered_model("churn")
    reg.create_model_version("churn", "somewhere", run_id="a" * 32)
    reg.create_model_version("churn", "elsewhere", run_id="b" * 32)
    reg.set_registered_model_alias("churn", "champion", 2)
    with write_transaction(mons.context.engine) as conn:
        lineage.add_edge(conn, "default", "datasets:/train/1", "runs:/" + "a" * 32, "input_of")
        lineage.add_edge(conn, "default", "datasets:/train/2", "runs:/" + "b" * 32, "input_of")
    assert isinstance(mons.store, SqlMonitoringStore)  # an embedded store: monitors run here
    runner = MonitorRunner(mons.context, mons.store)
    assert runner.training_dataset("models:/churn@champion") == "datasets:/train/2"
    deploy(mons.context, "prod2", "models:/churn@champion")
    assert runner.training_dataset("deployments:/prod2") == "datasets:/train/2"
    assert runner.training_dataset("models:/churn/1") == "datasets:/train/1"
    reg.create_model_version("churn", "no-run")  # version 3: no run, so no data upstream
    with pytest.raises(InvalidInput, match="No training dataset found upstream of models:/churn/3"):
        runner.training_dataset("models:/churn/3")


def test_bad_declarations_are_refused(env: dict[str, Any]) -> None:
    mons: Monitors = env["mons"]
    with pytest.raises(InvalidInput, match="one deployment or one model"):
        mons.create("x", reference=env["ref"])
    with pytest.raises(InvalidInput, match="Invalid window"):
        mons.create("x", deployment="churn-prod", window="soon")
    with pytest.raises(InvalidInput, match="Invalid schedule"):
        mons.create("x", deployment="churn-prod", schedule="every minute")
    with pytest.raises(InvalidInput, match="Invalid webhook"):
        mons.create("x", deployment="churn-prod", webhooks=["ftp://x"])
    with pytest.raises(NotFound, match="No monitor named 'nope'"):
        mons.run("nope")


def test_schedule_sets_the_next_due_time(env: dict[str, Any]) -> None:
    mons: Monitors = env["mons"]
    m = mons.create("s", deployment="churn-prod", reference=env["ref"], schedule="*/10 * * * *")
    assert m.next_run_ms is not None and m.next_run_ms > time.time() * 1000
    assert mons.due() == [] and [d.name for d in mons.due(m.next_run_ms)] == ["s"]
    mons.run("s", at_ms=m.next_run_ms)
    assert mons.get("s").next_run_ms == m.next_run_ms + 600_000


def test_alert_delivery_gives_up_on_a_dead_endpoint_without_raising() -> None:
    from support import free_port

    url = f"http://127.0.0.1:{free_port()}/x"
    d = post_alert(url, {"a": 1}, retries=1, backoff=0.01, timeout=1, allow="127.0.0.1")
    assert not d.ok and d.attempts == 2 and d.error


def test_server_routes_and_metrics_endpoint(env: dict[str, Any], loopline_server: str) -> None:
    """Against a real ``loopline server`` on 127.0.0.1 sharing this test's database and artifacts."""
    import httpx

    tmp: Path = env["tmp"]
    settings = Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp / 'server.db'}",
        artifacts_uri=str(tmp / "server-artifacts"),
        user="t",
    )
    mons = Monitors(settings)
    deploy(mons.context)
    mons.create(
        "churn",
        deployment="churn-prod",
        reference=env["ref"],
        window="1000rows",
        target="label",
        categorical=["label"],
    )
    log_requests(mons, env["rng"], 200, shift=15, start=0, label_noise=0.0)
    api = f"{loopline_server}/api/2.0/loopline/monitors"
    response = httpx.post(f"{api}/run", json={"name": "churn"}, timeout=120)
    ran = response.json()
    assert response.status_code == 200, ran
    assert ran["status"] == "drift" and ran["report"]["dataset_drift"] is True
    text = httpx.get(f"{loopline_server}/metrics").text
    assert 'loopline_monitor_drift_share{monitor="churn"} 1.0' in text
    assert 'loopline_monitor_performance{metric="accuracy",monitor="churn"} 1.0' in text
    assert 'loopline_monitor_drift_score{column="age",monitor="churn"}' in text
    assert [m["name"] for m in httpx.get(f"{api}/list").json()["monitors"]] == ["churn"]
    hist = httpx.get(f"{api}/history", params={"name": "churn", "key": "drift_share"}).json()
    assert hist["value"] == [1.0]
    missing = httpx.get(f"{api}/get", params={"name": "nope"})
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_cli_create_list_run_history(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from loopline.cli.main import app

    mons: Monitors = env["mons"]
    monkeypatch.setenv("LOOPLINE_TRACKING_URI", mons.settings.tracking_uri)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URI", mons.settings.artifacts_uri)
    cli = CliRunner()

    def call(*args: str) -> Any:
        return cli.invoke(app, ["monitor", *args])

    made = call(
        "create",
        "churn",
        "--deployment",
        "churn-prod",
        "--reference",
        env["ref"],
        "--window",
        "500rows",
        "--schedule",
        "0 * * * *",
        "--threshold",
        "accuracy=0.99",
        "--target",
        "label",
        "--categorical",
        "label",
    )
    assert made.exit_code == 0, made.output
    assert "Created monitor churn on deployments:/churn-prod" in made.stdout
    listed = json.loads(call("list", "--format", "json").stdout)
    assert listed[0]["name"] == "churn" and listed[0]["schedule"] == "0 * * * *" and listed[0]["next_run_ms"]
    log_requests(mons, env["rng"], 100, shift=0, start=0, label_noise=0.2)
    ran = call("run", "churn", "--fail-on-drift")
    assert ran.exit_code == 1 and "performance_degraded" in ran.stdout  # accuracy ~0.8 < 0.99
    body = json.loads(call("run", "churn", "--format", "json").stdout)
    assert body["metrics"]["new_rows"] == 0 and body["metrics"]["rows"] == 100
    hist = json.loads(call("history", "churn", "--key", "rows", "--format", "json").stdout)
    assert [p["metrics"]["rows"] for p in hist] == [100.0, 100.0]
    assert "accuracy" in call("history", "churn").stdout
    page = env["tmp"] / "m.html"
    assert call("run", "churn", "--format", "html", "--out", str(page)).exit_code == 0
    assert "<svg" in page.read_text()
    bad = call("create", "x", "--deployment", "churn-prod", "--window", "forever")
    assert bad.exit_code == 1 and isinstance(bad.exception, InvalidInput)


def test_a_failed_run_is_recorded_and_its_rows_are_not_counted_twice(env: dict[str, Any]) -> None:
    mons: Monitors = env["mons"]
    wrong = env["tmp"] / "wrong.parquet"
    pd.DataFrame({"zzz": [1.0, 2.0]}).to_parquet(wrong)
    mons.create("m", deployment="churn-prod", reference=str(wrong), window="1000rows")
    log_requests(mons, env["rng"], 40, shift=0, start=0, label_noise=0)
    with pytest.raises(InvalidInput, match="None of the reference's columns"):
        mons.run("m")
    [failed] = mons.store.list_runs("m")
    assert failed.status == "failed" and "zzz" in failed.summary["error"]
    assert mons.get("m").state == {}  # the cursor did not move
    mons.create("m", deployment="churn-prod", reference=env["ref"], window="1000rows", replace=True)
    ok = mons.run("m")
    assert ok.run.status == "ok" and ok.run.rows == 40  # read again, kept once
