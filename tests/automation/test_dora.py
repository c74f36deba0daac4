"""DORA metrics from the loop's events: exact figures over SQLite and PostgreSQL, the one indexed
query they come from, the Prometheus gauges, and the same report through a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from loop_data import EXPECTED, D, H, dora_events, write_events
from support import run_cli, serve_loopline

from loopline.automation.dora import (
    DoraReport,
    compute_dora,
    dora_query,
    quantile,
    read_dora,
    register_dora_gauges,
)
from loopline.clock import now_ms
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import InvalidInput

T = 1_700_000_000_000


def _context(uri: str, tmp_path: Path) -> Context:
    return Context(Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "artifacts")))


def _approx(expected: dict[str, Any]) -> Any:
    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return pytest.approx(v) if isinstance(v, float) else v

    return walk(expected)


def test_the_four_metrics_per_model_and_overall(store_uri: str, tmp_path: Path) -> None:
    ctx = _context(store_uri, tmp_path)
    write_events(ctx.engine, dora_events(T))
    write_events(ctx.engine, dora_events(T), workspace="other")  # another workspace's loop: not counted
    report = compute_dora(ctx.engine, "default", since_ms=T - 30 * D, until_ms=T)
    out = report.to_json()
    assert out["since_ms"] == T - 30 * D and out["until_ms"] == T and out["model"] is None
    assert out["overall"] == _approx(EXPECTED["overall"])
    assert out["models"] == _approx({m: EXPECTED[m] for m in ("churn", "churn2", "fraud")})
    assert DoraReport.from_json(json.loads(json.dumps(out))) == report

    # One model: the payload decides (churn is a prefix of churn2, whose events stay out).
    churn = compute_dora(ctx.engine, "default", since_ms=T - 30 * D, until_ms=T, model="churn")
    assert churn.to_json()["overall"] == _approx(EXPECTED["churn"])
    assert list(churn.models) == ["churn"]
    # A shorter window: only fraud's two promotions and churn2's are in the last 2.5 days.
    recent = compute_dora(ctx.engine, "default", since_ms=T - 60 * H, until_ms=T)
    assert (recent.overall.deployments, recent.overall.rollouts, recent.overall.failures) == (3, 3, 0)
    assert recent.overall.deployments_per_day == pytest.approx(3 * D / (60 * H))
    assert sorted(recent.models) == ["churn2", "fraud"]
    # Nothing in the window: zeros, and no rate or durations rather than made-up ones.
    empty = compute_dora(ctx.engine, "default", since_ms=T - 100 * D, until_ms=T - 50 * D)
    assert empty.overall.deployments == 0 and empty.overall.change_failure_rate is None
    assert empty.overall.lead_time.median_ms is None and empty.models == {}
    with pytest.raises(InvalidInput, match="window is empty"):
        compute_dora(ctx.engine, "default", since_ms=T, until_ms=T)


def test_quantiles_interpolate_between_ranks() -> None:
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    assert quantile([10], 0.9) == 10
    assert quantile([0, 100], 0.9) == pytest.approx(90)


def test_the_report_reads_the_loop_events_by_index_not_the_whole_table(tmp_path: Path) -> None:
    from sqlalchemy import insert

    from loopline.metadata import schema as t

    ctx = _context(f"sqlite:///{tmp_path / 'big.db'}", tmp_path)
    noise = [
        {
            "workspace": "default",
            "time_ms": T - i * 1000,
            "actor": "u",
            "action": "run.log_batch",
            "object_uri": f"runs:/{i}",
            "payload": '{"model": "churn", "stage": "canary"}',
            "reason": "",
        }
        for i in range(100_000)
    ]
    with ctx.engine.begin() as conn:
        conn.execute(insert(t.events), noise)
    write_events(ctx.engine, dora_events(T))
    q = dora_query("default", since_ms=T - 30 * D, until_ms=T, model="churn")
    sql = str(q.compile(ctx.engine, compile_kwargs={"literal_binds": True}))
    with ctx.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "USING INDEX" in plan and "SCAN events" not in plan, plan
    report = compute_dora(ctx.engine, "default", since_ms=T - 30 * D, until_ms=T, model="churn")
    assert report.to_json()["overall"] == _approx(EXPECTED["churn"])


def test_prometheus_gauges_per_model_and_overall() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    report = DoraReport.from_json(
        {
            "since_ms": T - 30 * D,
            "until_ms": T,
            "overall": EXPECTED["overall"],
            "models": {"churn": EXPECTED["churn"], "fraud": EXPECTED["fraud"]},
        }
    )
    registry = CollectorRegistry(auto_describe=True)
    register_dora_gauges(registry, lambda: report)
    text = generate_latest(registry).decode()
    assert "loopline_dora_window_seconds 2.592e+06" in text
    assert 'loopline_dora_deployments{model="*"} 4.0' in text
    assert 'loopline_dora_deployments{model="fraud"} 2.0' in text
    assert 'loopline_dora_change_failure_rate{model="churn"} 0.5' in text
    assert 'loopline_dora_lead_time_seconds{model="churn",quantile="0.5"} 10800.0' in text
    assert 'loopline_dora_time_to_restore_seconds{model="*",quantile="0.9"} 1200.0' in text
    assert 'loopline_dora_time_to_restore_seconds{model="fraud"' not in text  # none measured


def test_the_same_report_through_a_server_and_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    local = _context(db, tmp_path)
    now = now_ms()
    write_events(local.engine, dora_events(now))
    expected = compute_dora(local.engine, "default", since_ms=now - 30 * D, until_ms=now).to_json()
    with serve_loopline(tmp_path, store=db, artifacts=str(tmp_path / "artifacts")) as url:
        remote = Context(Settings.from_env({}, tracking_uri=url))
        assert read_dora(remote, "30d", until_ms=now).to_json() == expected
        assert read_dora(remote, "30d", model="fraud", until_ms=now).to_json()["overall"] == _approx(
            EXPECTED["fraud"]
        )
        with pytest.raises(InvalidInput, match="Invalid duration"):
            read_dora(remote, "30 days")
        # The CLI: a fresh process with only the server's URL (a window ending a few seconds later).
        done = run_cli(url, tmp_path, "dora", "--window", "30d", "--format", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["overall"] == _approx(EXPECTED["overall"])
        table = run_cli(url, tmp_path, "dora", "--model", "churn")
        assert table.returncode == 0, table.stderr
        assert "churn" in table.stdout and "50% (1/2)" in table.stdout and "3.0h / 3.0h" in table.stdout
        # The audit trail by kind and time: the loop's events of the last 12 days, newest first.
        remote.http.close()
        events = run_cli(url, tmp_path, "events", "--kind", "loop.", "--since", "12d", "--format", "json")
        assert events.returncode == 0, events.stderr
        got = [(e["action"], e["object_uri"]) for e in json.loads(events.stdout)]
        assert got == [
            ("loop.promote", "rollouts:/7"),  # tomorrow's: --since has no end
            ("loop.gate", "rollouts:/6"),
            ("loop.promote", "rollouts:/6"),
            ("loop.promote", "rollouts:/5"),
            ("loop.promote", "rollouts:/4"),
            ("loop.rollout_step", "rollouts:/4"),
            ("loop.restored", "rollouts:/3"),
            ("loop.rollback", "rollouts:/3"),
            ("loop.rollout_step", "rollouts:/3"),
            ("loop.restored", "rollouts:/2"),
            ("loop.rollback", "rollouts:/2"),
            ("loop.rollout_step", "rollouts:/2"),
        ]
        until = run_cli(url, tmp_path, "events", "-a", "loop.rollback", "--until", "7d", "-f", "json")
        assert [e["object_uri"] for e in json.loads(until.stdout)] == ["rollouts:/2"]
