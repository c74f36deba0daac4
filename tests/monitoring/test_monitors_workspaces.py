"""A monitor due in a workspace other than the server's own runs, on the server's schedule, in that
workspace: its runs, events and report are team-a's, and its drift alert drives team-a's loop policy
(not the same-named policy of the server's own workspace, whose monitor never ran)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from background_support import failing_pipeline, policy, wait_for
from monitor_data import deploy, log_requests, write_reference
from support import serve_loopline

from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import Rollout, Trigger
from loopline.clock import now_ms
from loopline.config import Settings
from loopline.context import Context
from loopline.metadata.lineage import list_events
from loopline.monitoring.sql_store import SqlMonitoringStore
from loopline.pipelines.sql_store import SqlPipelineStore


def _ended(store: SqlAutomationStore) -> list[Rollout]:
    return [r for r in store.list_rollouts() if r.state.terminal]


def test_a_monitor_due_in_team_a_runs_there_and_its_alert_drives_team_as_policy(tmp_path: Path) -> None:
    db, art = f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "art")
    base = Context(Settings.from_env({}, tracking_uri=db, artifacts_uri=art, user="tester"))
    team, default = base.scoped(workspace="team-a"), base.scoped(workspace="default")
    ref = write_reference(tmp_path / "train.parquet")
    deploy(team)
    log_requests(team.artifacts, 60, shift=15)  # drifted: the run alerts
    monitors = SqlMonitoringStore(team.engine, workspace="team-a", actor="tester", context=team)
    monitors.create_monitor(
        "churn-drift",
        "deployments:/churn-prod",
        reference=ref,
        window="1000rows",
        schedule="*/10 * * * *",
        next_run_ms=now_ms(),  # due at the server's first round
    )
    pipeline = failing_pipeline(tmp_path / "pipelines")
    listens = (Trigger("alert", monitor="churn-drift"),)
    for ctx in (team, default):  # the same policy in both: only team-a's monitor alerts
        deploy(ctx)
        SqlAutomationStore(ctx).put_policy(policy(pipeline, triggers=listens))
    env = {
        "LOOPLINE_MONITOR_POLL": "0.2",
        "LOOPLINE_CONTROLLER_INTERVAL": "0.2",
        "LOOPLINE_PIPELINE_ROOTS": str(tmp_path / "pipelines"),
        "LOOPLINE_USER": "loopline-server",
    }
    loop_a, loop_default = SqlAutomationStore(team), SqlAutomationStore(default)
    with serve_loopline(tmp_path / "srv", store=db, artifacts=art, env=env) as url:
        [rollout] = wait_for("team-a's retraining", lambda: _ended(loop_a), 90)
        api, team_a = f"{url}/api/2.0/loopline/monitors/runs", {"Loopline-Workspace": "team-a"}
        [run] = httpx.get(api, params={"name": "churn-drift"}, headers=team_a).json()["runs"]
        assert httpx.get(api, params={"name": "churn-drift"}).status_code == 404  # not the server's own
        time.sleep(1)  # five more rounds of every loop
    assert run["status"] == "drift" and run["rows"] == 60
    assert rollout.state.value == "failed" and "no fresh data yet" in rollout.reason
    assert rollout.trigger["kinds"] == ["alert"]
    # What the background work recorded is team-a's, as the server's user; default saw nothing.
    engine = base.engine
    actions = {(e.action, e.actor) for e in list_events(engine, "team-a", "monitors:/churn-drift")}
    assert {("monitor.claim", "loopline-server"), ("monitor.run", "loopline-server")} <= actions
    assert ("monitor.drift_detected", "loopline-server") in actions
    loop = list_events(engine, "team-a", rollout.uri)
    assert {e.action for e in loop} == {"loop.retrain_start", "loop.retrain_fail"}
    assert {e.actor for e in loop} == {"loopline-server"}
    [retraining] = SqlPipelineStore(engine, workspace="team-a").list_runs(name="train")
    assert retraining.status == "failed"  # the pipeline ran in team-a
    assert SqlPipelineStore(engine, workspace="default").list_runs(name="train") == []
    assert loop_default.list_rollouts() == [] and loop_default.busy_policies() == set()
    assert list_events(engine, "default", "monitors:/churn-drift") == []
    report = str(monitors.list_runs("churn-drift")[0].summary["report"])
    assert team.artifacts.exists(report) and not default.artifacts.exists(report)
