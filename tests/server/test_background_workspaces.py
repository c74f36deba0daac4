"""``loopline server``'s background work serves every workspace, not only its own: with auth on, the
loop's controller moves a policy only in a workspace where its service account is a maintainer; an
idle round costs one statement with twenty-five workspaces as with one; a workspace whose loop pass
or monitors are slow holds up no other. (Elsewhere: a monitor due in team-a driving team-a's policy, in
``monitoring/test_monitors_workspaces.py``; a schedule of team-a firing once across two replicas, in
``test_replicas.py``.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from background_support import failing_pipeline, policy, wait_for
from sqlalchemy import event
from support import serve_loopline

from loopline.automation.controller import Controller, Pass
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import Rollout, Trigger
from loopline.automation.workspaces import WorkspaceControllers
from loopline.clock import now_ms
from loopline.config import Settings
from loopline.context import Context
from loopline.metadata.lineage import list_events
from loopline.monitoring.sql_store import SqlMonitoringStore
from loopline.pipelines.schedule import WorkspaceSchedulers
from loopline.pipelines.sql_store import SqlPipelineStore
from loopline.pipelines.types import ScheduleRecord
from loopline.server.automation_api import CONTROLLER_ACCOUNT
from loopline.server.monitoring_api import MonitorScheduler
from loopline.serving.store import open_deployment_store
from loopline.serving.types import DeploymentSpec

FAR = "0 0 1 1 *"  # once a year: never due in a test


def _ended(store: SqlAutomationStore) -> list[Rollout]:
    return [r for r in store.list_rollouts() if r.state.terminal]


def test_with_auth_the_loop_moves_only_where_its_account_is_a_maintainer(tmp_path: Path) -> None:
    from loopline.auth.sql_store import SqlAuthStore
    from loopline.auth.types import Role

    db, art = f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "art")
    base = Context(Settings.from_env({}, tracking_uri=db, artifacts_uri=art, user="tester"))
    pipeline = failing_pipeline(tmp_path / "pipelines")
    auth = SqlAuthStore(base.engine)
    auth.create_user(CONTROLLER_ACCOUNT)
    auth.grant(CONTROLLER_ACCOUNT, "team-a", Role.MAINTAINER)  # and no role in team-b
    stores = {}
    for workspace in ("team-a", "team-b"):
        ctx = base.scoped(workspace=workspace)
        open_deployment_store(ctx).set_deployment(DeploymentSpec.single("models:/churn/1", name="churn-prod"))
        stores[workspace] = store = SqlAutomationStore(ctx)
        store.put_policy(policy(pipeline))
        store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    env = {
        "LOOPLINE_AUTH": "1",
        "LOOPLINE_CONTROLLER_INTERVAL": "0.2",
        "LOOPLINE_PIPELINE_ROOTS": str(tmp_path / "pipelines"),
    }
    with serve_loopline(tmp_path / "srv", store=db, artifacts=art, env=env):
        [rollout] = wait_for("team-a's retraining", lambda: _ended(stores["team-a"]))
        time.sleep(1)  # five more ticks: team-b's policy still waits
    assert rollout.state.value == "failed" and "no fresh data yet" in rollout.reason
    events = list_events(base.engine, "team-a", rollout.uri)
    assert events and {e.actor for e in events} == {CONTROLLER_ACCOUNT}
    [retraining] = SqlPipelineStore(base.engine, workspace="team-a").list_runs(name="train")
    assert retraining.status == "failed"
    assert stores["team-b"].list_rollouts() == [] and stores["team-b"].busy_policies() == {"churn"}
    log = (tmp_path / "srv" / "server.log").read_text()
    assert f"loopline roles grant {CONTROLLER_ACCOUNT} maintainer -w team-b" in log
    assert "-w team-a" not in log
    assert log.count("policy churn waits") == 1  # said once, not at every tick


# ---- cost and independence, in-process ---------------------------------------------------------


def _fill(base: Context, workspaces: int) -> list[str]:
    """Workspaces with a monitor, a schedule and a policy each, none of them due or busy."""
    names = ["default", *(f"ws{i}" for i in range(1, workspaces))]
    later = now_ms() + 10**9
    for name in names:
        ctx = base.scoped(workspace=name)
        SqlMonitoringStore(ctx.engine, workspace=name, context=ctx).create_monitor(
            "m", "deployments:/d", schedule=FAR, next_run_ms=later
        )
        SqlPipelineStore(ctx.engine, workspace=name).add_schedule(
            ScheduleRecord("s", "x.py:p", FAR, {}, "", True, now_ms())
        )
        SqlAutomationStore(ctx).put_policy(policy("x.py:p", triggers=(Trigger("schedule", cron=FAR),)))
    return names


def _idle_costs(base: Context) -> tuple[int, int, int]:
    """Statements of one idle round of the monitors, the schedules and the loop, each already
    started (a first round reads every workspace once)."""
    counted = [0]

    def count(*_: object) -> None:
        counted[0] += 1

    monitors = MonitorScheduler(base)
    schedules = WorkspaceSchedulers(base, lambda workspace: lambda schedule, slot: None)
    loop = WorkspaceControllers(base.engine, lambda workspace: Controller(base.scoped(workspace=workspace)))

    async def monitor_round() -> None:
        await asyncio.gather(*await monitors.start_due())

    rounds: list[Callable[[], object]] = [lambda: asyncio.run(monitor_round()), schedules.tick, loop.tick]
    costs = []
    for one in rounds:
        one()
        event.listen(base.engine, "before_cursor_execute", count)
        counted[0] = 0
        one()
        event.remove(base.engine, "before_cursor_execute", count)
        costs.append(counted[0])
    loop.close()
    monitors.pool.shutdown()
    return costs[0], costs[1], costs[2]


def test_an_idle_round_costs_one_statement_however_many_workspaces(tmp_path: Path) -> None:
    costs = []
    for n in (1, 25):
        settings = Settings.from_env(
            {}, tracking_uri=f"sqlite:///{tmp_path / f'{n}.db'}", artifacts_uri=str(tmp_path / f"art{n}")
        )
        base = Context(settings)
        _fill(base, n)
        costs.append(_idle_costs(base))
    assert costs == [(1, 1, 1), (1, 1, 1)]


def test_a_workspace_with_a_slow_loop_pass_holds_up_no_others(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {}, tracking_uri=f"sqlite:///{tmp_path / 'l.db'}", artifacts_uri=str(tmp_path / "art")
    )
    base = Context(settings)
    release, passes = threading.Event(), {"slow": 0, "fast": 0}

    class Counted(Controller):
        def step(self, now: int, *, listen: bool = True, busy: bool = True) -> Pass:
            passes[self.context.workspace] += 1
            if self.context.workspace == "slow":
                release.wait(30)  # a pass that takes long (a big inference log to measure)
            return super().step(now, listen=listen, busy=busy)

    for workspace in passes:  # a trigger each, and no deployment: both stay busy, every tick
        store = SqlAutomationStore(base.scoped(workspace=workspace))
        store.put_policy(policy("x.py:p"))
        store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    loop = WorkspaceControllers(base.engine, lambda workspace: Counted(base.scoped(workspace=workspace)))
    try:
        for _ in range(5):
            loop.dispatch()
            time.sleep(0.1)
        assert passes == {"slow": 1, "fast": 5} or (passes["fast"] >= 4 and passes["slow"] == 1)
    finally:
        release.set()
        loop.close()


def test_a_workspace_with_a_slow_monitor_holds_up_no_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopline.server import monitoring_api

    settings = Settings.from_env(
        {}, tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", artifacts_uri=str(tmp_path / "art")
    )
    base = Context(settings)
    for workspace in ("slow", "fast"):
        ctx = base.scoped(workspace=workspace)
        SqlMonitoringStore(ctx.engine, workspace=workspace, context=ctx).create_monitor(
            "m", "deployments:/d", schedule="*/10 * * * *", next_run_ms=now_ms()
        )
    release, rounds = threading.Event(), {"slow": 0, "fast": 0}

    def run_due_in(ctx: Context, at_ms: int | None) -> int:  # the round, not the statistics
        rounds[ctx.workspace] += 1
        if ctx.workspace == "slow":
            release.wait(30)
        return 0  # claims nothing: both stay due

    monkeypatch.setattr(monitoring_api, "_run_due_in", run_due_in)
    scheduler = MonitorScheduler(base)

    async def three_rounds() -> None:
        for _ in range(3):
            await scheduler.start_due()
            await asyncio.sleep(0.1)

    try:
        asyncio.run(three_rounds())
        assert rounds == {"slow": 1, "fast": 3}
    finally:
        release.set()
        scheduler.pool.shutdown()
