"""The ``MonitoringStore`` contract: the same behaviour on SQLite, on PostgreSQL, and through a real
``loopline server`` (REST, with only an http:// URI on the client)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from monitor_data import deploy, log_requests, write_reference

from loopline.config import Settings
from loopline.context import Context
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.monitoring.store import MonitoringStore, open_monitoring_store


@dataclass
class Backend:
    kind: str
    store: MonitoringStore
    artifacts: Any  # where the monitors' data lives: the server's store when remote
    reference: str
    context: Context


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "rest":
        uri = str(request.getfixturevalue("loopline_server"))
        settings = Settings.from_env({}, tracking_uri=uri, user="tester")
    else:
        uri = (
            f"sqlite:///{tmp_path / 'l.db'}"
            if request.param == "sqlite"
            else str(request.getfixturevalue("postgres_uri"))
        )
        settings = Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "art"), user="tester")
    ctx = Context(settings)
    assert ctx.is_remote == (request.param == "rest")
    ref = write_reference(tmp_path / "ref.parquet")
    yield Backend(request.param, open_monitoring_store(ctx), ctx.artifacts, ref, ctx)
    if ctx.is_remote:
        ctx.http.close()


def _create(b: Backend, name: str = "churn", **kw: Any) -> Any:
    args: dict[str, Any] = {
        "reference": b.reference,
        "window": "1000rows",
        "schedule": "*/10 * * * *",
        "config": {"target": "label", "categorical": ["label"]},
        "next_run_ms": 1_000,
    }
    return b.store.create_monitor(name, "deployments:/churn-prod", **(args | kw))


def test_create_get_list_is_idempotent_and_delete(backend: Backend) -> None:
    store = backend.store
    m = _create(backend, config={"webhooks": ["https://hooks.example/churn"]})
    assert (m.name, m.uri, m.target, m.reference) == (
        "churn",
        "monitors:/churn",
        "deployments:/churn-prod",
        backend.reference,
    )
    assert m.config["webhooks"] == ["https://hooks.example/churn"] and m.state == {} and m.next_run_ms
    assert _create(backend, config=dict(m.config)) == m  # a retried create: the same monitor
    with pytest.raises(AlreadyExists):
        _create(backend)  # another definition under the same name
    assert _create(backend, window="1h", replace=True).window == "1h"
    assert store.get_monitor("churn").window == "1h"
    _create(backend, "other")
    assert [x.name for x in store.list_monitors()] == ["churn", "other"]
    store.delete_monitor("other")
    with pytest.raises(NotFound):
        store.get_monitor("other")
    with pytest.raises(NotFound):
        store.delete_monitor("other")
    assert [x.name for x in store.list_monitors()] == ["churn"]


INVALID = [
    ({"name": "bad name"}, "Invalid monitor name"),
    ({"target": "s3://bucket"}, "Invalid target"),
    ({"window": "forever"}, "Invalid window"),
    ({"schedule": "every minute"}, "Invalid schedule"),
    ({"reference": "/nowhere/ref.parquet"}, "No such reference file"),
    ({"config": {"webhooks": ["ftp://x"]}}, "Invalid webhook"),
    ({"config": {"colour": "red"}}, "Unknown monitor option"),
    ({"config": {"categorical": "label"}}, "Invalid value"),
]


def test_invalid_definitions_are_refused(backend: Backend) -> None:
    for change, message in INVALID:  # one backend (and server) for every case
        args: dict[str, Any] = {
            "name": "m",
            "target": "deployments:/churn-prod",
            "reference": backend.reference,
        } | change
        with pytest.raises(InvalidInput, match=message):
            backend.store.create_monitor(args.pop("name"), args.pop("target"), **args)
    assert backend.store.list_monitors() == []


def test_run_records_runs_figures_and_report_where_the_data_is(backend: Backend) -> None:
    store = backend.store
    deploy(backend.context)
    _create(backend)
    empty = store.run_monitor("churn")
    assert empty.run.status == "no_data" and empty.report is None and empty.reference == backend.reference
    assert store.get_report("churn") is None
    log_requests(backend.artifacts, 120, shift=15)
    ran = store.run_monitor("churn")
    assert ran.run.status == "drift" and ran.run.rows == 120 and ran.run.new_rows == 120
    assert ran.report is not None and ran.report.dataset_drift and "age" in ran.report.drifted_columns
    assert ran.metrics["performance.accuracy"] == 1.0
    assert [a["event"] for a in ran.alerts] == ["monitor.drift_detected"]
    assert ran.deliveries == []  # no webhooks
    again = store.run_monitor("churn")
    assert again.run.new_rows == 0 and again.run.rows == 120  # the log is read once

    runs = store.list_runs("churn")
    assert [r.status for r in runs] == ["drift", "drift", "no_data"] and runs[0].id == again.run.id
    assert [r.id for r in store.list_runs("churn", limit=1)] == [again.run.id]
    hist = store.history("churn", ["rows", "drift_share"])
    assert [(k, v) for _, k, v in hist if k == "rows"] == [("rows", 0.0), ("rows", 120.0), ("rows", 120.0)]
    assert store.history("churn", ["rows"], limit=1)[0][2] == 120.0
    assert store.latest_metrics()["churn"]["drift_share"] == again.report.drift_share  # type: ignore[union-attr]

    report = store.get_report("churn")
    assert report is not None and report.to_dict() == again.report.to_dict()  # type: ignore[union-attr]
    first = store.get_report("churn", ran.run.id)
    assert first is not None and first.columns["age"].histogram["labels"]  # drawable as HTML
    with pytest.raises(NotFound):
        store.get_report("churn", 10**9)
    with pytest.raises(NotFound):
        store.run_monitor("nope")

    def files() -> list[str]:
        return [e.path for e in backend.artifacts.list("monitoring/monitors")]

    assert files() == ["monitoring/monitors/churn"]  # its window buffer and reports
    store.delete_monitor("churn")
    assert files() == []
    assert store.latest_metrics() == {}


def test_a_failed_run_is_recorded_and_raised(backend: Backend, tmp_path: Path) -> None:
    import pandas as pd

    wrong = tmp_path / "wrong.parquet"
    pd.DataFrame({"zzz": [1.0, 2.0]}).to_parquet(wrong)
    deploy(backend.context)
    log_requests(backend.artifacts, 20, shift=0)
    _create(backend, reference=str(wrong))
    with pytest.raises(InvalidInput, match="None of the reference's columns"):
        backend.store.run_monitor("churn")
    [failed] = backend.store.list_runs("churn")
    assert failed.status == "failed" and "zzz" in failed.summary["error"]
    assert backend.store.get_monitor("churn").state == {}  # the cursor did not move


def test_due_monitors(backend: Backend) -> None:
    m = _create(backend, next_run_ms=5_000)
    _create(backend, "unscheduled", schedule="", next_run_ms=None)
    assert backend.store.due_monitors(4_999) == []
    if backend.kind != "rest":  # the server computes next_run_ms from its own clock
        assert [d.name for d in backend.store.due_monitors(5_000)] == ["churn"]
    assert [d.name for d in backend.store.due_monitors(m.next_run_ms)] == ["churn"]


def test_start_returns_and_the_run_lands_in_runs(backend: Backend) -> None:
    deploy(backend.context)
    log_requests(backend.artifacts, 40, shift=0)
    _create(backend)
    with pytest.raises(NotFound):
        backend.store.start_monitor("nope")
    backend.store.start_monitor("churn")  # on a server: 202, run after the answer
    deadline = time.monotonic() + 60
    while not (runs := backend.store.list_runs("churn")) and time.monotonic() < deadline:
        time.sleep(0.1)
    [run] = runs
    assert run.status == "ok" and run.new_rows == 40
    assert backend.store.get_report("churn") is not None
