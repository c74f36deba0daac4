"""The controller closes the loop on the embedded default, one tick at a time: a trigger starts the
policy's pipeline, the gate judges the candidate against the champion on held-out data, shadow and
canary steps are judged on the inference log, and the candidate is promoted, rejected or rolled back
— with every step an event, and a second controller or a restart never acting twice.

Traffic is written to the inference log by its real writer (what a serving process does), so each
step's health is exactly what the test's requests say; the serving process itself is exercised in
tests/e2e/test_loop_e2e.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopline.automation import events as ev
from loopline.automation.controller import Controller
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import (
    Gate,
    GateRule,
    Health,
    Policy,
    Rollout,
    RolloutState,
    RolloutStep,
    Trigger,
)
from loopline.clock import now_ms
from loopline.config import Settings
from loopline.context import Context
from loopline.metadata.engine import write_transaction
from loopline.metadata.lineage import append_event, list_events
from loopline.registry import RegistryClient
from loopline.serving.inference_log import Feedback, Prediction, _write_feedback, _write_predictions
from loopline.serving.store import open_deployment_store
from loopline.serving.types import DeploymentSpec, Route
from loopline.tracking import Client

S = RolloutState
FEATURES = ["tenure", "charges"]

PIPELINE = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import loopline.pipelines as lp


    @lp.step
    def data(rows: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(rows, 2))
        y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
        return pd.DataFrame({"tenure": x[:, 0], "charges": x[:, 1], "churned": y})


    @lp.step(register="churn")
    def fit(frame: pd.DataFrame, quality: str) -> LogisticRegression:
        y = frame["churned"].to_numpy()
        if quality == "bad":  # labels unrelated to the features: a candidate the gate must refuse
            y = np.random.default_rng(0).permutation(y)
        return LogisticRegression().fit(frame[["tenure", "charges"]], y)


    @lp.pipeline
    def train(rows: int = 600, seed: int = 1, quality: str = "good") -> LogisticRegression:
        return fit(data(rows, seed), quality)
    """
)


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return pd.DataFrame({"tenure": x[:, 0], "charges": x[:, 1], "churned": y})


@dataclass
class Loop:
    context: Context
    store: SqlAutomationStore
    policy: Policy
    tmp: Path

    def controller(self, **kw: object) -> Controller:
        return Controller(self.context, **kw)  # type: ignore[arg-type]

    def tick_until(self, ctl: Controller, done: callable, timeout: float = 60) -> Rollout:  # type: ignore[valid-type]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ctl.tick()
            r = self.store.list_rollouts(policy=self.policy.name, limit=1)
            if r and done(r[0]):
                return r[0]
            time.sleep(0.05)
        raise AssertionError(f"not reached in {timeout}s: {self.store.list_rollouts(limit=1)}")

    def traffic(
        self,
        version: str,
        n: int,
        *,
        role: str = "primary",
        status: int = 200,
        answer: int = 1,
        truth: int | None = None,
    ) -> None:
        """``n`` requests to the deployment answered by ``version`` of churn (and, for a shadow, the
        champion's primary answer, 1, to the same request); with ``truth``, each one's ground truth
        comes back, and as many requests answered 1 by the champion are logged beside them."""
        records, feedback = [], []
        for _ in range(n):
            rid = uuid.uuid4().hex
            records.append(
                Prediction(
                    rid, now_ms(), "churn-prod", "churn", version, role, 1, None, [answer], 3.0, status
                )
            )
            champion = rid if role == "shadow" else uuid.uuid4().hex if truth is not None else None
            if champion is not None:
                records.append(
                    Prediction(
                        champion, now_ms(), "churn-prod", "churn", "1", "primary", 1, None, [1], 2.0, 200
                    )
                )
            if truth is not None:
                feedback += [Feedback(rid, now_ms(), [truth]), Feedback(champion or rid, now_ms(), [truth])]
        _write_predictions(self.context.artifacts, records)
        if feedback:
            _write_feedback(self.context.artifacts, feedback)

    def actions(self, rollout: Rollout) -> list[str]:
        return [
            e.action for e in reversed(list_events(self.context.engine, "default", rollout.uri, limit=100))
        ]


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    yield make_loop(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'l.db'}")


def make_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> Loop:
    """Champion churn v1 serving churn-prod, a held-out dataset and a policy, on ``tracking_uri``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(PIPELINE)
    settings = Settings.from_env({}, tracking_uri=tracking_uri, artifacts_uri=str(tmp_path / "art"))
    for key, value in (
        ("LOOPLINE_TRACKING_URI", settings.tracking_uri),
        ("LOOPLINE_ARTIFACTS_URI", settings.artifacts_uri),
    ):
        monkeypatch.setenv(key, value)
    context = Context(settings)
    client = Client(context=context)
    from loopline.data.client import DataClient

    DataClient(context=context).add(_frame(400, seed=99), "holdout")
    from loopline.pipelines.pipeline import load_target

    load_target(f"{tmp_path / 'train.py'}:train").run(settings=settings)  # registers churn v1
    registry = RegistryClient(client)
    registry.set_alias("churn", "champion", 1)
    open_deployment_store(context).set_deployment(
        DeploymentSpec("churn-prod", (Route("models:/churn@champion", 100),))
    )
    policy = Policy(
        name="churn",
        model="churn",
        deployment="churn-prod",
        pipeline=f"{tmp_path / 'train.py'}:train",
        gate=Gate(
            (GateRule("metric", metric="roc_auc", max_loss=0.02),),
            dataset="datasets:/holdout@latest",
            target="churned",
        ),
        triggers=(Trigger("alert", monitor="churn-drift"), Trigger("dataset", dataset="fresh")),
        rollout=(RolloutStep("shadow", 100, bake_s=0), RolloutStep("canary", 20, bake_s=0)),
        health=Health(max_error_rate=0.05, min_agreement=0.9, min_requests=10),
        debounce_s=0,
    )
    store = SqlAutomationStore(context)
    store.put_policy(policy)
    return Loop(context, store, policy, tmp_path)


def _spec(loop: Loop) -> DeploymentSpec:
    return open_deployment_store(loop.context).get_deployment("churn-prod").spec


def test_a_good_candidate_goes_through_shadow_and_canary_to_champion(loop: Loop) -> None:
    ctl = loop.controller()
    with write_transaction(loop.context.engine) as conn:  # what a monitor's run writes when data drifted
        append_event(
            conn,
            "default",
            "monitor",
            "monitor.drift_detected",
            "monitors:/churn-drift",
            {"drift_share": 0.6},
        )
    r = loop.tick_until(ctl, lambda r: r.state is S.ROLLING and r.step == 0)
    assert r.candidate == "models:/churn/2" and r.champion == "models:/churn/1"
    assert r.trigger["kinds"] == ["alert"] and r.verdict["passed"] is True
    shadow = _spec(loop).shadow
    assert shadow is not None and shadow.model == "models:/churn/2"  # it sees live traffic, answers nothing
    assert (
        RegistryClient(Client(context=loop.context)).get_model_version_by_alias("churn", "challenger").version
        == 2
    )
    ctl.tick()
    assert loop.store.get_rollout(r.id).step == 0  # no traffic yet: the step cannot be judged, it waits
    loop.traffic("2", 12, role="shadow")
    r = loop.tick_until(ctl, lambda r: r.step == 1)
    routes = {x.model: x.weight for x in _spec(loop).routes}
    assert routes == {"models:/churn@champion": pytest.approx(80.0), "models:/churn/2": 20.0}
    loop.traffic("2", 12)
    r = loop.tick_until(ctl, lambda r: r.state.terminal)
    assert r.state is S.PROMOTED
    registry = RegistryClient(Client(context=loop.context))
    assert registry.get_model_version_by_alias("churn", "champion").version == 2
    assert registry.get_model_version_by_alias("churn", "previous-champion").version == 1
    assert _spec(loop).routes == (Route("models:/churn@champion", 100),) and _spec(loop).shadow is None
    assert loop.actions(r) == [
        ev.RETRAIN_START,
        ev.RETRAIN_FINISH,
        ev.GATE,
        ev.ROLLOUT_STEP,
        ev.ROLLOUT_STEP,
        ev.PROMOTE,
    ]
    ctl.close()


def test_a_worse_candidate_is_rejected_with_its_numbers_and_never_served(loop: Loop) -> None:
    loop.store.put_policy(replace(loop.policy, params={"quality": "bad"}))
    ctl = loop.controller()
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    r = loop.tick_until(ctl, lambda r: r.state.terminal)
    assert r.state is S.REJECTED and "roc_auc" in r.reason
    assert r.verdict["passed"] is False
    assert _spec(loop).routes == (Route("models:/churn@champion", 100),) and _spec(loop).shadow is None
    assert (
        RegistryClient(Client(context=loop.context)).get_model_version_by_alias("churn", "champion").version
        == 1
    )
    ctl.close()


def test_a_canary_that_fails_online_rolls_back_by_itself(loop: Loop) -> None:
    ctl = loop.controller()
    base = open_deployment_store(loop.context).get_deployment("churn-prod")
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    r = loop.tick_until(ctl, lambda r: r.state is S.ROLLING and r.step == 0)
    loop.traffic("2", 12, role="shadow")
    r = loop.tick_until(ctl, lambda r: r.step == 1)
    loop.traffic("2", 10, status=500)  # the candidate fails live requests
    r = loop.tick_until(ctl, lambda r: r.state.terminal)
    assert r.state is S.ROLLED_BACK and "error rate" in r.reason
    assert _spec(loop) == base.spec  # the weights it began from
    assert (
        RegistryClient(Client(context=loop.context)).get_model_version_by_alias("churn", "champion").version
        == 1
    )
    actions = loop.actions(r)
    assert actions[-2:] == [ev.ROLLBACK, ev.RESTORED]
    rollback = next(e for e in list_events(loop.context.engine, "default", r.uri) if e.action == ev.ROLLBACK)
    assert rollback.payload["health"]["errors"] == 10
    ctl.close()


def test_a_shadow_that_disagrees_is_rolled_back(loop: Loop) -> None:
    ctl = loop.controller()
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    loop.tick_until(ctl, lambda r: r.state is S.ROLLING and r.step == 0)
    loop.traffic("2", 12, role="shadow", answer=0)  # the champion answered 1 to each
    r = loop.tick_until(ctl, lambda r: r.state.terminal)
    assert r.state is S.ROLLED_BACK and "agreement" in r.reason
    ctl.close()


def test_ten_alerts_start_one_retraining(loop: Loop) -> None:
    loop.store.put_policy(replace(loop.policy, debounce_s=60))
    with write_transaction(loop.context.engine) as conn:
        for _ in range(10):
            append_event(conn, "default", "monitor", "monitor.drift_detected", "monitors:/churn-drift", {})
        append_event(conn, "default", "monitor", "monitor.run", "monitors:/churn-drift", {})  # not an alert
        append_event(conn, "default", "monitor", "monitor.drift_detected", "monitors:/other", {})  # not ours
    ctl = loop.controller()
    r = loop.tick_until(ctl, lambda r: r.state is S.ROLLING)
    assert r.trigger["count"] == 10
    with write_transaction(loop.context.engine) as conn:  # more alerts while it is in flight join it
        append_event(conn, "default", "monitor", "monitor.drift_detected", "monitors:/churn-drift", {})
    for _ in range(3):
        ctl.tick()
    assert len(loop.store.list_rollouts(policy="churn")) == 1
    ctl.close()


def test_approval_holds_promotion_until_a_maintainer_approves(loop: Loop) -> None:
    loop.store.put_policy(replace(loop.policy, approval=True, rollout=(RolloutStep("canary", 50, bake_s=0),)))
    ctl = loop.controller()
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    loop.tick_until(ctl, lambda r: r.state is S.ROLLING and r.step == 0)
    loop.traffic("2", 12)
    r = loop.tick_until(ctl, lambda r: r.state is S.AWAITING_APPROVAL)
    for _ in range(3):
        ctl.tick()
    assert loop.store.get_rollout(r.id).state is S.AWAITING_APPROVAL
    loop.store.scoped(actor="maintainer").approve(r.id, "canary looks right")
    r = loop.tick_until(ctl, lambda r: r.state.terminal)
    assert r.state is S.PROMOTED
    approval = next(e for e in list_events(loop.context.engine, "default", r.uri) if e.action == ev.APPROVE)
    assert approval.actor == "maintainer" and approval.payload["reason"] == "canary looks right"
    ctl.close()


def test_a_restarted_controller_resumes_and_two_never_act_on_one_deployment(loop: Loop) -> None:
    first = loop.controller(holder="first", lease_s=0.3)
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    loop.tick_until(first, lambda r: r.state is S.ROLLING and r.step == 0)
    first.close()  # killed: its lease runs out, its state is all in the store
    second = loop.controller(holder="second", lease_s=0.3)
    assert second.tick() == []  # the first one's lease has not expired yet
    time.sleep(0.4)
    loop.traffic("2", 12, role="shadow")
    racing = [loop.controller(holder=f"racer-{i}", lease_s=30) for i in range(3)]
    barrier = threading.Barrier(len(racing))
    done: list[list[object]] = []

    def tick(c: Controller) -> None:
        barrier.wait()
        done.append(list(c.tick()))

    threads = [threading.Thread(target=tick, args=(c,)) for c in racing]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for d in done if d) == 1  # one of them took the lease and moved the step
    r = loop.store.list_rollouts(limit=1)[0]
    assert r.step == 1 and loop.actions(r).count(ev.ROLLOUT_STEP) == 2
    for c in racing:
        c.close()
    second.close()


def test_a_canary_less_accurate_online_than_the_champion_rolls_back(loop: Loop) -> None:
    loop.store.put_policy(replace(loop.policy, health=Health(max_accuracy_drop=0.1, min_requests=10)))
    ctl = loop.controller()
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    loop.tick_until(ctl, lambda r: r.state is S.ROLLING and r.step == 0)
    loop.traffic("2", 12, role="shadow")
    loop.tick_until(ctl, lambda r: r.step == 1)
    loop.traffic("2", 12, answer=0, truth=1)  # the candidate answers 0, the champion 1; the truth is 1
    r = loop.tick_until(ctl, lambda r: r.state.terminal)
    assert r.state is S.ROLLED_BACK and "online accuracy 0.0% against the champion's 100.0%" in r.reason
    ctl.close()


def test_alerts_from_before_a_policy_was_declared_start_nothing(loop: Loop) -> None:
    with write_transaction(loop.context.engine) as conn:
        append_event(conn, "default", "monitor", "monitor.drift_detected", "monitors:/churn-drift", {})
    loop.store.delete_policy("churn")
    time.sleep(0.01)
    loop.store.put_policy(loop.policy)  # declared after the alert
    ctl = loop.controller()
    for _ in range(3):
        ctl.tick()
    assert loop.store.list_rollouts() == []
    ctl.close()


def _controller_process(loop: Loop) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOOPLINE_TRACKING_URI": loop.context.settings.tracking_uri}
    env["LOOPLINE_ARTIFACTS_URI"] = loop.context.settings.artifacts_uri
    cmd = [sys.executable, "-m", "loopline.cli", "controller", "--interval", "0.1", "--lease", "1"]
    log = (loop.tmp / "controller.log").open("ab")
    return subprocess.Popen(cmd, cwd=loop.tmp, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait(loop: Loop, done: Callable[[Rollout], bool], timeout: float = 60) -> Rollout:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = loop.store.list_rollouts(limit=1)
        if found and done(found[0]):
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"not reached in {timeout}s: {loop.store.list_rollouts(limit=1)}")


@pytest.mark.parametrize("stage", ["training", "shadow", "canary"])
def test_a_controller_killed_at_each_stage_is_resumed_by_the_next(loop: Loop, stage: str) -> None:
    """SIGKILL, not a clean stop: the next controller (after the lease runs out) completes the
    rollout from the store alone, and the deployment ends as the policy says, never split."""
    base = open_deployment_store(loop.context).get_deployment("churn-prod").spec
    first = _controller_process(loop)
    try:
        loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
        at = {
            "training": lambda r: r.state is S.TRAINING,
            "shadow": lambda r: r.state is S.ROLLING and r.step == 0,
            "canary": lambda r: r.state is S.ROLLING and r.step == 1,
        }[stage]
        if stage == "canary":
            _wait(loop, lambda r: r.state is S.ROLLING and r.step == 0)
            loop.traffic("2", 12, role="shadow")
        _wait(loop, at)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    second = _controller_process(loop)
    try:
        if stage != "canary":
            r = _wait(loop, lambda r: r.state is S.ROLLING and r.step == 0)
            loop.traffic(r.candidate.rsplit("/", 1)[-1], 12, role="shadow")  # 2, or 3 if it retrained
        r = _wait(loop, lambda r: r.state is S.ROLLING and r.step == 1)
        loop.traffic(r.candidate.rsplit("/", 1)[-1], 12)
        done = _wait(loop, lambda r: r.state.terminal)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(10)
    assert done.state is S.PROMOTED and done.candidate.startswith("models:/churn/")  # 2, or 3 if retrained
    assert _spec(loop) == base  # the weights the policy's deployment began with: no split left
    assert loop.actions(done).count(ev.PROMOTE) == 1


def test_a_shadows_backlog_does_not_pass_for_the_canarys_traffic(loop: Loop) -> None:
    ctl = loop.controller()
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    loop.tick_until(ctl, lambda r: r.state is S.ROLLING and r.step == 0)
    loop.traffic("2", 12, role="shadow")
    r = loop.tick_until(ctl, lambda r: r.step == 1)
    loop.traffic("2", 30, role="shadow")  # logged late, after the canary began: not its answers
    for _ in range(3):
        ctl.tick()
    assert loop.store.get_rollout(r.id).state is S.ROLLING  # still waiting for requests it answered
    loop.traffic("2", 12)
    assert loop.tick_until(ctl, lambda r: r.state.terminal).state is S.PROMOTED
    ctl.close()


def test_a_servers_controller_runs_only_pipeline_files_under_its_roots(loop: Loop, tmp_path: Path) -> None:
    from loopline.automation.controller import check_pipeline_allowed
    from loopline.errors import InvalidInput

    roots = f"{tmp_path / 'pipelines'}{os.pathsep}{tmp_path / 'more'}"
    check_pipeline_allowed(f"{tmp_path / 'pipelines' / 'a' / 'train.py'}:train", roots)
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "escape.py").symlink_to(tmp_path / "train.py")
    for target in (
        f"{tmp_path / 'train.py'}:train",  # outside every root
        f"{tmp_path / 'pipelines' / '..' / 'train.py'}:train",
        f"{tmp_path / 'pipelines' / 'escape.py'}:train",  # a link out of the root
        "os:system",  # a module: anything importable on the server
    ):
        with pytest.raises(InvalidInput, match="LOOPLINE_PIPELINE_ROOTS"):
            check_pipeline_allowed(target, roots)
    with pytest.raises(InvalidInput, match="unset"):
        check_pipeline_allowed(f"{tmp_path / 'train.py'}:train", "")
    confined = Controller(loop.context, confined=True)  # as inside `loopline server`, no roots set
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    r = loop.tick_until(confined, lambda r: r.state.terminal)
    assert r.state is S.FAILED and "LOOPLINE_PIPELINE_ROOTS" in r.reason
    confined.close()


def test_triggers_wait_while_the_policys_deployment_is_missing(loop: Loop) -> None:
    open_deployment_store(loop.context).delete_deployment("churn-prod")
    ctl = loop.controller()
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    ctl.tick()  # logs that the deployment is missing; takes nothing
    assert loop.store.list_rollouts() == [] and loop.store.busy_policies() == {"churn"}
    open_deployment_store(loop.context).set_deployment(
        DeploymentSpec("churn-prod", (Route("models:/churn@champion", 100),))
    )
    assert loop.tick_until(ctl, lambda r: r.state is S.ROLLING).trigger["kinds"] == ["manual"]
    ctl.close()


def test_with_auth_the_loop_acts_only_with_the_role_its_service_account_was_granted(
    loop: Loop, caplog: pytest.LogCaptureFixture
) -> None:
    from loopline.auth.sql_store import SqlAuthStore
    from loopline.auth.types import Role
    from loopline.server.automation_api import CONTROLLER_ACCOUNT, _controller_role_check

    auth = SqlAuthStore(loop.context.engine)
    authorize = _controller_role_check(auth, "default")  # makes the account, with no role
    assert auth.get_user(CONTROLLER_ACCOUNT).has_password is False
    ctl = Controller(loop.context.scoped(actor=CONTROLLER_ACCOUNT), authorize=authorize)
    loop.store.add_trigger("churn", "manual", source_event=None, change_ms=now_ms())
    ctl.tick()
    assert loop.store.list_rollouts() == []  # it waits, with the trigger kept
    assert f"loopline roles grant {CONTROLLER_ACCOUNT} maintainer -w default" in caplog.text
    auth.grant(CONTROLLER_ACCOUNT, "default", Role.MAINTAINER)
    ctl.authorize = _controller_role_check(auth, "default")  # a fresh check, not the cached refusal
    r = loop.tick_until(ctl, lambda r: r.state is S.ROLLING)
    assert {e.actor for e in list_events(loop.context.engine, "default", r.uri, limit=100)} == {
        CONTROLLER_ACCOUNT
    }
    ctl.close()
