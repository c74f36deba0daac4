"""Monitors, lineage and events through a real ``loopline server``, with only an http:// URI on the
client: the CLI as a subprocess in an empty folder, the Python API, bad input answered 4xx JSON, and
two processes racing for the same due monitor on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from monitor_data import deploy, log_requests, write_reference
from support import run_cli

from loopline.config import Settings
from loopline.context import Context
from loopline.errors import NotFound
from loopline.monitoring.monitors import Monitors
from loopline.tracking.lineage import open_lineage_reader


def _remote(url: str) -> Context:
    ctx = Context(Settings.from_env({}, tracking_uri=url, user="tester"))
    assert ctx.is_remote
    return ctx


def test_cli_monitor_lineage_and_events_through_the_server(loopline_server: str, tmp_path: Path) -> None:
    url = loopline_server
    ctx = _remote(url)
    deploy(ctx)  # the serving side declares the deployment on the server and writes its log there
    log_requests(ctx.artifacts, 150, shift=15)
    ref = write_reference(tmp_path / "train.parquet")  # a file the server can read
    work = tmp_path / "client"
    work.mkdir()

    def ok(*args: str) -> str:
        done = run_cli(url, work, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    made = ok(
        "monitor", "create", "churn", "-d", "churn-prod", "-r", ref, "--window", "1000rows",
        "--target", "label", "--categorical", "label", "--threshold", "accuracy=0.5",
    )  # fmt: skip
    assert "Created monitor churn on deployments:/churn-prod" in made
    again = run_cli(url, work, "monitor", "create", "churn", "-d", "churn-prod", "--window", "1h")
    assert again.returncode == 1 and "exists already" in again.stderr
    [listed] = json.loads(ok("monitor", "list", "--format", "json"))
    assert listed["name"] == "churn" and listed["reference"] == ref and listed["schedule"] is None

    ran = json.loads(ok("monitor", "run", "churn", "--format", "json"))
    assert ran["status"] == "drift" and ran["metrics"]["rows"] == 150.0
    assert ran["report"]["dataset_drift"] is True and ran["alerts"][0]["event"] == "monitor.drift_detected"
    failing = run_cli(url, work, "monitor", "run", "churn", "--fail-on-drift")
    assert failing.returncode == 1 and "alert: monitor.drift_detected" in failing.stdout
    assert "age" in failing.stdout  # the report's table, computed on the server

    shown = json.loads(ok("monitor", "show", "churn", "--format", "json"))
    assert [r["status"] for r in shown["runs"]] == ["drift", "drift"]
    assert [r["new_rows"] for r in shown["runs"]] == [0, 150]  # the server read its log once
    hist = json.loads(ok("monitor", "history", "churn", "--key", "rows", "--format", "json"))
    assert [p["metrics"]["rows"] for p in hist] == [150.0, 150.0]
    ok("monitor", "report", "churn", "--format", "html", "--out", str(work / "report.html"))
    assert "<svg" in (work / "report.html").read_text()
    assert "dataset drift" in ok("monitor", "report", "churn")

    events = json.loads(ok("events", "monitors:/churn", "--action", "monitor", "--format", "json"))
    actions = [e["action"] for e in events]
    assert actions.count("monitor.run") == 2 and actions[-1] == "monitor.create"
    assert all(a.startswith("monitor.") for a in actions)
    newest = json.loads(ok("events", "--limit", "3", "--format", "json"))
    assert len(newest) == 3 and newest[0]["id"] > newest[-1]["id"]  # every object's, newest first
    assert "actor" in ok("events", "--limit", "3")  # the table
    edges = json.loads(ok("lineage", "deployments:/churn-prod", "--format", "json"))
    edge = {
        "from": "deployments:/churn-prod",
        "to": "monitors:/churn",
        "relation": "monitored_by",
        "resolved": True,
    }
    assert edge in edges
    assert "deployments:/churn-prod" in ok("lineage", "monitors:/churn", "--upstream")

    assert "Started monitor churn" in ok("monitor", "run", "churn", "--no-wait")  # the server runs it
    deadline = time.monotonic() + 60
    while len(Monitors(context=ctx).runs("churn")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r.new_rows for r in Monitors(context=ctx).runs("churn")] == [0, 0, 150]

    assert "Deleted monitor churn" in ok("monitor", "delete", "churn")
    assert json.loads(ok("monitor", "list", "--format", "json")) == []
    gone = run_cli(url, work, "monitor", "show", "churn")
    assert gone.returncode == 2 and "No monitor named 'churn'" in gone.stderr
    # the client never opened a database: nothing but what it was asked to write is in its folder
    assert sorted(p.name for p in work.iterdir()) == ["report.html"]


def test_python_api_through_the_server(loopline_server: str, tmp_path: Path) -> None:
    ctx = _remote(loopline_server)
    mons = Monitors(context=ctx)
    deploy(mons.context)
    ref = write_reference(tmp_path / "train.parquet")
    m = mons.create("churn", deployment="churn-prod", reference=ref, window="1000rows", schedule="0 * * * *")
    assert m.next_run_ms is not None and m.next_run_ms > time.time() * 1000
    assert mons.run("churn").run.status == "no_data"
    log_requests(mons.artifacts, 80, shift=0)
    result = mons.run("churn")
    assert result.run.status == "ok" and result.report is not None and not result.report.dataset_drift
    assert [r.status for r in mons.runs("churn")] == ["ok", "no_data"]
    stored = mons.report("churn")
    assert stored is not None and stored.to_dict() == result.report.to_dict()
    assert {k for _, k, _ in mons.history("churn", ["rows", "drift_share"])} == {"rows", "drift_share"}
    assert mons.due() == [] and [d.name for d in mons.due(m.next_run_ms)] == ["churn"]

    reader = open_lineage_reader(ctx)
    assert [e.action for e in reader.events("monitors:/churn", "monitor.run")] == ["monitor.run"] * 2
    assert any(e.to_uri == "monitors:/churn" for e in reader.downstream("deployments:/churn-prod"))
    mons.delete("churn")
    with pytest.raises(NotFound):
        mons.get("churn")
    # the server's /metrics still answers (the monitor and its figures are gone)
    assert "loopline_monitor_drift_share{" not in httpx.get(f"{loopline_server}/metrics").text


JSON_TYPE = {"Content-Type": "application/json"}
BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    (
        "POST",
        "monitors/create",
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        400,
        "",
    ),
    ("POST", "monitors/create", {"content": b'{"name": "m"}'}, 415, "application/json"),  # no type
    ("POST", "monitors/create", {"json": {"name": 5, "target": "deployments:/x"}}, 400, "name"),
    ("POST", "monitors/create", {"json": {"name": "m"}}, 400, "target"),
    (
        "POST",
        "monitors/create",
        {"json": {"name": "m", "target": "deployments:/x", "window": "x"}},
        400,
        "window",
    ),
    ("POST", "monitors/create", {"json": {"name": "m", "target": "x:/y"}}, 400, "Invalid target"),
    (
        "POST",
        "monitors/create",
        {"json": {"name": "m", "target": "deployments:/x", "config": []}},
        400,
        "config",
    ),
    ("GET", "monitors/get", {}, 400, "name"),
    ("GET", "monitors/get", {"params": {"name": "nope"}}, 404, "nope"),
    ("POST", "monitors/run", {"json": {}}, 400, "name"),
    ("POST", "monitors/run", {"json": {"name": "nope"}}, 404, "nope"),
    ("POST", "monitors/delete", {"json": {"name": "nope"}}, 404, "nope"),
    ("GET", "monitors/runs", {"params": {"name": "m", "max_results": "many"}}, 400, "max_results"),
    ("GET", "monitors/history", {"params": {"name": "m", "max_results": "0"}}, 400, "max_results"),
    ("GET", "monitors/report", {"params": {"name": "m", "run_id": "last"}}, 400, "run_id"),
    ("GET", "monitors/due", {"params": {"at_ms": "soon"}}, 400, "at_ms"),
    ("GET", "events", {"params": {"max_results": "-1"}}, 400, "limit"),
    ("GET", "events", {"params": {"max_results": "0"}}, 400, "limit"),
    ("GET", "events", {"params": {"max_results": "lots"}}, 400, "max_results"),
    ("GET", "lineage/sideways", {"params": {"uri": "models:/m/1"}}, 400, "direction"),
    ("GET", "lineage/upstream", {}, 400, "uri"),
]


def test_bad_input_over_http_is_a_4xx_json_answer(loopline_server: str) -> None:
    api = f"{loopline_server}/api/2.0/loopline"
    with httpx.Client(timeout=30) as http:
        for method, path, kwargs, status, word in BAD_REQUESTS:
            r = http.request(method, f"{api}/{path}", **kwargs)
            assert r.status_code == status, (path, kwargs, r.text)
            body = r.json()
            assert body["error_code"] and word in body["message"], (path, body)


_RACER = textwrap.dedent(
    """
    import json, sys, time
    from loopline.config import Settings
    from loopline.context import Context
    from loopline.monitoring.runner import MonitorRunner
    from loopline.monitoring.store import open_monitoring_store

    uri, artifacts, at, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    ctx = Context(Settings.from_env({}, tracking_uri=uri, artifacts_uri=artifacts, user="racer"))
    store = open_monitoring_store(ctx)
    runner = MonitorRunner(ctx, store)
    store.due_monitors(at)  # connected, and the statistics stack imported, before the start line
    import loopline.monitoring.drift
    while time.time() < start:
        time.sleep(0.001)
    print(json.dumps([r.run.id for r in runner.run_due(at)]))
    """
)


def test_two_processes_racing_for_a_due_monitor_run_it_once(postgres_uri: str, tmp_path: Path) -> None:
    settings = Settings.from_env({}, tracking_uri=postgres_uri, artifacts_uri=str(tmp_path / "art"), user="t")
    mons = Monitors(settings)
    deploy(mons.context)
    log_requests(mons.artifacts, 50, shift=0)
    ref = write_reference(tmp_path / "train.parquet")
    m = mons.create(
        "churn", deployment="churn-prod", reference=ref, window="1000rows", schedule="*/10 * * * *"
    )
    due = m.next_run_ms
    assert due is not None
    start = time.time() + 6  # both processes wait at the line, then claim at once
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, postgres_uri, str(tmp_path / "art"), str(due), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in racers]
    assert all(p.returncode == 0 for p in racers), outputs
    ran = [json.loads(out) for out, _ in outputs]
    assert sorted(len(r) for r in ran) == [0, 1], ran  # one process ran it, the other found it claimed
    [run] = mons.runs("churn")
    assert run.status == "ok" and run.rows == 50 and [run.id] == [i for r in ran for i in r]
    assert mons.get("churn").next_run_ms == due + 600_000  # the next slot, once
    claims = open_lineage_reader(mons.context).events("monitors:/churn", "monitor.claim")
    assert [e.payload["due_ms"] for e in claims] == [due]


def test_two_servers_on_one_postgres_run_a_due_monitor_once(postgres_uri: str, tmp_path: Path) -> None:
    """The servers' background loops (polling every 0.2 s) both see the monitor due; one runs it."""
    from support import free_port, wait_http

    from loopline.monitoring.sql_store import SqlMonitoringStore

    art = tmp_path / "art"
    settings = Settings.from_env({}, tracking_uri=postgres_uri, artifacts_uri=str(art), user="t")
    mons = Monitors(settings)
    deploy(mons.context)
    log_requests(mons.artifacts, 30, shift=0)
    ref = write_reference(tmp_path / "train.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env |= {"LOOPLINE_TRACKING_URI": postgres_uri, "LOOPLINE_ARTIFACTS_URI": str(art)}
    env["LOOPLINE_MONITOR_POLL"] = "0.2"
    servers = []
    try:
        for i in range(2):
            port = free_port()
            log = open(tmp_path / f"server{i}.log", "wb")  # noqa: SIM115 - closed with the process below
            proc = subprocess.Popen(
                [sys.executable, "-m", "loopline.cli", "server", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            servers.append((proc, log))
            wait_http(f"http://127.0.0.1:{port}/health", proc)
        store = mons.store
        assert isinstance(store, SqlMonitoringStore)
        store.create_monitor(
            "churn",
            "deployments:/churn-prod",
            reference=ref,
            window="1000rows",
            schedule="*/10 * * * *",
            next_run_ms=int(time.time() * 1000),  # due now, for both servers' next round
        )
        deadline = time.monotonic() + 60
        while not mons.runs("churn") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # ten more rounds of both loops
    finally:
        for proc, log in servers:
            proc.terminate()
            proc.wait(10)
            log.close()
    [run] = mons.runs("churn")
    assert run.status == "ok" and run.rows == 30
    claims = open_lineage_reader(mons.context).events("monitors:/churn", "monitor.claim")
    assert len(claims) == 1
    assert (mons.get("churn").next_run_ms or 0) > time.time() * 1000  # the next slot, in the future


def test_concurrent_runs_of_one_monitor_never_count_rows_twice(loopline_server: str, tmp_path: Path) -> None:
    """Two clients ask the server to run the same monitor at once: each new log row is counted by one
    stored run (the later run either waits its turn and finds nothing new, or is refused, 409)."""
    from concurrent.futures import ThreadPoolExecutor

    ctx = _remote(loopline_server)
    mons = Monitors(context=ctx)
    deploy(mons.context)
    log_requests(mons.artifacts, 100, shift=0)
    mons.create("churn", deployment="churn-prod", reference=write_reference(tmp_path / "t.parquet"))
    api = f"{loopline_server}/api/2.0/loopline/monitors/run"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: httpx.post(api, json={"name": "churn"}, timeout=120), range(4)))
    assert {r.status_code for r in answers} <= {200, 409}, [r.text for r in answers]
    assert all("ran concurrently" in r.json()["message"] for r in answers if r.status_code == 409)
    runs = mons.runs("churn")
    assert len(runs) == sum(r.status_code == 200 for r in answers) >= 1
    assert sum(r.new_rows for r in runs) == 100 and all(r.rows == 100 for r in runs)
