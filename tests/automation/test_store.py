"""The ``AutomationStore`` contract on SQLite, PostgreSQL and through a real ``loopline server``
(REST, only an http:// URI on the client), and the controller-side operations of the SQL store:
compare-and-set moves, leases and cron slots claimed once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from support import serve_loopline

from loopline.automation import events as ev
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.store import AutomationStore, open_automation_store
from loopline.automation.types import (
    Gate,
    GateRule,
    Policy,
    RolloutState,
    RolloutStep,
    Trigger,
)
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import Conflict, InvalidInput, NotFound
from loopline.metadata.lineage import list_events

POLICY = Policy(
    name="churn",
    model="churn",
    deployment="churn-prod",
    pipeline="train.py:train",
    gate=Gate((GateRule("metric", metric="roc_auc", max_loss=0.005),), dataset="datasets:/holdout@latest"),
    triggers=(Trigger("alert", monitor="churn-drift"),),
    rollout=(RolloutStep("canary", 10, bake_s=5),),
    approval=True,
)


@dataclass
class Backend:
    kind: str
    store: AutomationStore
    sql: SqlAutomationStore  # the same database, as the controller sees it


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    db = (
        str(request.getfixturevalue("postgres_uri"))
        if request.param == "postgres"
        else f"sqlite:///{tmp_path / 'l.db'}"
    )
    art = str(tmp_path / "art")
    seed = Context(Settings.from_env({}, tracking_uri=db, artifacts_uri=art, user="controller"))
    sql = SqlAutomationStore(seed)
    if request.param != "rest":
        yield Backend(request.param, open_automation_store(seed), sql)
        return
    env = {"LOOPLINE_USER": "alice", "LOOPLINE_CONTROLLER_INTERVAL": "0"}  # this test drives the store itself
    with serve_loopline(tmp_path / "srv", store=db, artifacts=art, env=env) as url:
        ctx = Context(Settings.from_env({}, tracking_uri=url))
        assert ctx.is_remote
        yield Backend("rest", open_automation_store(ctx), sql)
        ctx.http.close()


def test_policies_round_trip_and_a_repeat_changes_nothing(backend: Backend) -> None:
    store = backend.store
    stored, changed = store.put_policy(POLICY)
    assert changed and stored == POLICY
    assert store.put_policy(POLICY) == (POLICY, False)  # a retried apply: no change, no event
    assert store.get_policy("churn") == POLICY and store.list_policies() == [POLICY]
    moved = replace(POLICY, debounce_s=5.0)
    assert store.put_policy(moved)[1] and store.get_policy("churn").debounce_s == 5.0
    actions = [e.action for e in list_events(backend.sql.engine, "default", "policies:/churn")]
    assert actions == ["policy.update", "policy.create"]
    store.delete_policy("churn")
    with pytest.raises(NotFound, match="No policy named 'churn'"):
        store.get_policy("churn")


def test_bad_policies_are_refused_with_the_field_named(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match="pipeline target"):
        replace(POLICY, pipeline="train")
    with pytest.raises(InvalidInput, match="needs 'monitor'"):
        Trigger("alert")
    if backend.kind == "rest":  # the server checks what a client sends as raw JSON too
        with pytest.raises(InvalidInput, match="max_loss"):
            backend.store.rest.call(  # type: ignore[attr-defined]
                "POST",
                "/api/2.0/loopline/automation/policies/put",
                {
                    "policy": {
                        **_json(POLICY),
                        "gate": {"rules": [{"kind": "metric", "metric": "auc", "max_loss": -1}]},
                    }
                },
            )


def _json(policy: Policy) -> dict[str, object]:
    from loopline.automation.types import policy_to_json

    return policy_to_json(policy)


def test_triggers_queue_and_rollouts_move_by_compare_and_set(backend: Backend) -> None:
    backend.store.put_policy(POLICY)
    backend.store.add_trigger("churn", "manual", source_event=None, change_ms=1000)
    with pytest.raises(NotFound, match="No policy named 'nope'"):
        backend.store.add_trigger("nope", "manual", source_event=None, change_ms=1)
    sql = backend.sql
    taken = sql.take_triggers("churn")
    assert [dict(t) for t in taken] == [{"kind": "manual", "source_event": None, "change_ms": 1000}]
    assert sql.take_triggers("churn") == []
    r = sql.create_rollout(POLICY, trigger={"change_ms": 1000}, base_revision=3, champion="models:/churn/1")
    assert (r.state, r.step, r.base_revision, r.champion) == (RolloutState.TRAINING, -1, 3, "models:/churn/1")
    moved = sql.advance(
        r.id,
        expected_state=RolloutState.TRAINING,
        expected_step=-1,
        event=ev.RETRAIN_FINISH,
        state=RolloutState.GATING,
        candidate="models:/churn/2",
    )
    assert moved.state is RolloutState.GATING and moved.candidate == "models:/churn/2"
    with pytest.raises(Conflict, match="another controller moved it"):  # a duplicate of the same step
        sql.advance(r.id, expected_state=RolloutState.TRAINING, expected_step=-1, event=ev.RETRAIN_FINISH)
    assert [x.id for x in backend.store.list_rollouts(policy="churn", active=True)] == [r.id]
    assert backend.store.get_rollout(r.id).candidate == "models:/churn/2"
    with pytest.raises(Conflict, match="not waiting for approval"):
        backend.store.approve(r.id, "looks good")
    sql.advance(
        r.id,
        expected_state=RolloutState.GATING,
        expected_step=-1,
        event=ev.APPROVAL_WAIT,
        state=RolloutState.AWAITING_APPROVAL,
        step=0,
    )
    done = backend.store.approve(r.id, "checked the canary")
    assert (done.state, done.step) == (RolloutState.ROLLING, 1)  # past the last step: promote next
    approval = list_events(sql.engine, "default", r.uri, limit=1)[0]
    assert approval.action == ev.APPROVE and approval.payload["reason"] == "checked the canary"
    assert approval.actor == ("alice" if backend.kind == "rest" else "controller")


def test_leases_and_slots_are_held_by_one(backend: Backend) -> None:
    sql = backend.sql
    assert sql.acquire_lease("deployments:/x", "a", ttl_s=30)
    assert sql.acquire_lease("deployments:/x", "a", ttl_s=30)  # renewed by its holder
    assert not sql.acquire_lease("deployments:/x", "b", ttl_s=30)
    assert sql.acquire_lease("deployments:/x", "b", ttl_s=-1) is False
    assert sql.acquire_lease("deployments:/y", "b", ttl_s=-1)  # expired at once: anyone may take it
    assert sql.acquire_lease("deployments:/y", "a", ttl_s=30)
    sql.release_lease("deployments:/x", "a")
    assert sql.acquire_lease("deployments:/x", "b", ttl_s=30)
    assert not sql.claim_slot("churn:0 3 * * *", 1000)  # the first sight records, does not fire
    assert sql.claim_slot("churn:0 3 * * *", 2000)
    assert not sql.claim_slot("churn:0 3 * * *", 2000)


def test_racing_claimers_take_a_slot_once(backend: Backend) -> None:
    if backend.kind == "rest":
        pytest.skip("controller-side: runs next to the database")
    sql = backend.sql
    sql.claim_slot("p:cron", 1)
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        wins.append(sql.scoped().claim_slot("p:cron", 5))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False, False, False, True]
