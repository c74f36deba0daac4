"""SqlMonitoringStore on SQLite and PostgreSQL: monitors, runs + metrics + events in one write, profiles."""

from __future__ import annotations

import pytest

from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata import lineage
from loopline.metadata.engine import create_store_engine
from loopline.monitoring.sql_store import SqlMonitoringStore


@pytest.fixture
def store(store_uri: str) -> SqlMonitoringStore:
    return SqlMonitoringStore(create_store_engine(store_uri), workspace="ws", actor="alice")


def _run(
    store: SqlMonitoringStore, name: str, share: float, alerts: list[dict[str, object]] | None = None
) -> int:
    return store.record_run(
        name,
        started_ms=1,
        rows=10,
        new_rows=10,
        status="drift" if alerts else "ok",
        dataset_drift=bool(alerts),
        drift_share=share,
        summary={"k": 1},
        metrics={"drift_share": share, "drift.age": share / 2, "nan": float("nan")},
        state={"seen": ["a"]},
        next_run_ms=None,
        alerts=alerts or [],
    ).id


def test_monitor_lifecycle_runs_metrics_events_and_isolation(store: SqlMonitoringStore) -> None:
    m = store.create_monitor(
        "churn",
        "deployments:/prod",
        reference="datasets:/train/3",
        window="1h",
        schedule="*/5 * * * *",
        config={"webhooks": ["http://x"]},
        next_run_ms=100,
    )
    assert m.uri == "monitors:/churn" and m.config["webhooks"] == ["http://x"]
    with pytest.raises(AlreadyExists):
        store.create_monitor("churn", "deployments:/prod")
    assert [d.name for d in store.due_monitors(100)] == ["churn"] and store.due_monitors(99) == []
    assert store.create_monitor("churn", "deployments:/other", replace=True).target == "deployments:/other"
    assert store.due_monitors(100) == []  # redefined without a schedule
    with pytest.raises(InvalidInput):
        store.create_monitor("bad name", "deployments:/prod")

    _run(store, "churn", 0.0)
    _run(
        store,
        "churn",
        0.5,
        alerts=[{"event": "monitor.drift_detected", "drifted_columns": ["age"], "uri": "x"}],
    )
    assert store.get_monitor("churn").state == {"seen": ["a"]}
    hist = store.history("churn", ["drift_share"])
    assert [v for _, _, v in hist] == [0.0, 0.5]
    assert store.latest_metrics() == {"churn": {"drift_share": 0.5, "drift.age": 0.25}}  # NaN not stored
    runs = store.list_runs("churn")
    assert [r.status for r in runs] == ["drift", "ok"] and runs[0].summary == {"k": 1}
    actions = [e.action for e in lineage.list_events(store.engine, "ws", "monitors:/churn")]
    assert actions.count("monitor.drift_detected") == 1 and actions.count("monitor.run") == 2
    edges = lineage.upstream(store.engine, "ws", "monitors:/churn")
    assert {(e.from_uri, e.relation) for e in edges} >= {
        ("deployments:/prod", "monitored_by"),
        ("datasets:/train/3", "reference_of"),
    }

    other = store.scoped(workspace="elsewhere")
    assert other.list_monitors() == [] and other.latest_metrics() == {}
    with pytest.raises(NotFound):
        other.get_monitor("churn")
    store.delete_monitor("churn")
    assert store.list_monitors() == []


def test_profile_paths(store: SqlMonitoringStore) -> None:
    assert store.profile_path("datasets:/a/1") is None
    store.save_profile_path("file:/x/a.parquet@1:2", "p1")
    store.save_profile_path("file:/x/a.parquet@3:4", "p2")
    store.save_profile_path("file:/x/a.parquet@3:4", "p3")  # replaced
    assert store.profile_path("file:/x/a.parquet@3:4") == "p3"
    assert store.profile_path("file:/x/a.parquet@", prefix=True) in ("p1", "p3")
    assert store.profile_path("file:/x/a%", prefix=True) is None  # LIKE wildcards are escaped


def test_a_run_finished_by_another_process_meanwhile_is_not_stored(store: SqlMonitoringStore) -> None:
    from loopline.errors import Conflict

    store.create_monitor("churn", "deployments:/prod")
    assert store.get_monitor("churn").last_run_ms is None
    _run(store, "churn", 0.1)  # another process's run, finished while ours evaluated
    with pytest.raises(Conflict, match="ran concurrently"):
        store.record_run(
            "churn",
            started_ms=1,
            rows=5,
            new_rows=5,
            status="ok",
            dataset_drift=False,
            drift_share=0.2,
            summary={},
            metrics={"drift_share": 0.2},
            state={"seen": ["a", "b"]},
            next_run_ms=None,
            after_run_ms=None,  # what our run saw when it started: no run yet
        )
    assert [r.drift_share for r in store.list_runs("churn")] == [0.1]  # nothing of ours stored
    assert store.get_monitor("churn").state == {"seen": ["a"]}
    seen = store.get_monitor("churn").last_run_ms
    assert (
        store.record_run(
            "churn",
            started_ms=2,
            rows=5,
            new_rows=0,
            status="ok",
            dataset_drift=False,
            drift_share=0.3,
            summary={},
            metrics={},
            state={"seen": ["a", "b"]},
            next_run_ms=None,
            after_run_ms=seen,
        ).drift_share
        == 0.3
    )


def test_one_claim_per_due_slot(store: SqlMonitoringStore) -> None:
    store.create_monitor("churn", "deployments:/prod", schedule="*/5 * * * *", next_run_ms=100)
    assert store.claim_due("churn", 100, 400)
    assert not store.claim_due("churn", 100, 400)  # the slot is taken
    assert store.get_monitor("churn").next_run_ms == 400 and store.due_monitors(399) == []
    assert not store.claim_due("nope", 100, 400)
