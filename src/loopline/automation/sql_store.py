"""The loop's state on SQLAlchemy (SQLite or PostgreSQL): policies, rollouts, triggers, leases.

Every write is one transaction that also appends its ``loop.*`` event. Rollouts move by
compare-and-set: ``UPDATE … WHERE id = ? AND state = ? AND step = ?`` changes one row or none, so
of two controllers (or a step retried after a crash) exactly one acts; the other gets ``Conflict``.
A lease is a row per key whose holder may renew it, and anyone may take it once ``expires_ms`` has
passed: an INSERT for a new key (the primary key makes a race lose), an UPDATE guarded by
"expired or mine" for an existing one.

``loop_overview`` and ``new_event_workspaces`` read across workspaces, for the server's controllers
(``automation/workspaces.py``): one statement tells which workspaces have anything to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from loopline.automation import events as ev
from loopline.automation.types import (
    Policy,
    Rollout,
    RolloutState,
    policy_from_json,
    policy_to_json,
)
from loopline.clock import now_ms
from loopline.errors import Conflict, InvalidInput, NotFound
from loopline.metadata import schema as t
from loopline.metadata.base import SqlStore
from loopline.metadata.lineage import Event
from loopline.metadata.schema_automation import (
    automation_cursor as cur,
    automation_leases as ls,
    automation_policies as pol,
    automation_rollouts as ro,
    automation_triggers as trg,
)
from loopline.monitoring.webhook_targets import check_webhooks

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from loopline.context import Context

_TERMINAL = [s.value for s in RolloutState if s.terminal]
_CHANGEABLE = frozenset(
    {"state", "step", "step_started_ms", "candidate", "champion", "verdict", "reason", "pipeline_run"}
)


def _rollout(r: Any) -> Rollout:
    return Rollout(
        id=r.id,
        policy=r.policy,
        deployment=r.deployment,
        state=RolloutState(r.state),
        candidate=r.candidate,
        champion=r.champion,
        step=r.step,
        step_started_ms=r.step_started_ms,
        base_revision=r.base_revision,
        trigger=json.loads(r.trigger),
        verdict=json.loads(r.verdict),
        reason=r.reason,
        pipeline_run=r.pipeline_run,
        created_ms=r.created_ms,
        updated_ms=r.updated_ms,
    )


class SqlAutomationStore(SqlStore):
    def __init__(self, context: Context) -> None:
        super().__init__(context.engine, workspace=context.workspace, actor=context.actor)
        self.context = context

    def scoped(self, *, workspace: str | None = None, actor: str | None = None) -> Self:
        clone = super().scoped(workspace=workspace, actor=actor)
        clone.context = self.context.scoped(workspace=clone.workspace, actor=clone.actor)
        return clone

    # ---- policies ----------------------------------------------------------------------------

    def put_policy(self, policy: Policy) -> tuple[Policy, bool]:
        check_webhooks(policy.webhooks, self.context.settings.webhook_allow)  # targets the server may call
        body = policy_to_json(policy)
        labels = json.dumps(body.pop("labels"), sort_keys=True)
        text = json.dumps(body, sort_keys=True)
        now = now_ms()
        with self._write() as conn:
            row = conn.execute(
                select(pol.c.body, pol.c.labels).where(
                    pol.c.workspace == self.workspace, pol.c.name == policy.name
                )
            ).first()
            if row is not None and row.body == text and row.labels == labels:
                return policy, False
            if row is None:
                conn.execute(
                    insert(pol).values(
                        workspace=self.workspace,
                        name=policy.name,
                        body=text,
                        labels=labels,
                        created_ms=now,
                        updated_ms=now,
                    )
                )
            else:
                conn.execute(
                    update(pol)
                    .where(pol.c.workspace == self.workspace, pol.c.name == policy.name)
                    .values(body=text, labels=labels, updated_ms=now)
                )
            self._event(conn, "policy.create" if row is None else "policy.update", policy.uri, **body)
        return policy, True

    @staticmethod
    def _policy(body: str, labels: str) -> Policy:
        return policy_from_json({**json.loads(body), "labels": json.loads(labels)})

    def get_policy(self, name: str) -> Policy:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(pol.c.body, pol.c.labels).where(pol.c.workspace == self.workspace, pol.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"No policy named {name!r}.", hint="List them with: loopline policies")
        return self._policy(row.body, row.labels)

    def list_policies(self) -> list[Policy]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(pol.c.body, pol.c.labels).where(pol.c.workspace == self.workspace).order_by(pol.c.name)
            ).all()
        return [self._policy(r.body, r.labels) for r in rows]

    def policy_created(self) -> dict[str, int]:
        """When each policy was first declared: events before it are not its triggers."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(pol.c.name, pol.c.created_ms).where(pol.c.workspace == self.workspace))
            return {r.name: int(r.created_ms) for r in rows}

    def delete_policy(self, name: str) -> None:
        with self._write() as conn:
            gone = conn.execute(
                delete(pol).where(pol.c.workspace == self.workspace, pol.c.name == name)
            ).rowcount
            if not gone:
                raise NotFound(f"No policy named {name!r}.")
            conn.execute(delete(trg).where(trg.c.workspace == self.workspace, trg.c.policy == name))
            self._event(conn, "policy.delete", f"policies:/{name}")

    def record_apply(self, source: str, changes: Mapping[str, Any]) -> None:
        """Append the ``loop.apply`` event of one ``loopline apply`` of ``source`` (a file name) on
        ``apply:/<source>``; ``changes``: the URIs it created, changed and deleted."""
        with self._write() as conn:
            self._event(conn, ev.APPLY, f"apply:/{source}", source=source, **changes)

    # ---- triggers ------------------------------------------------------------------------------

    def event_cursor(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(cur.c.event_id).where(cur.c.workspace == self.workspace)).scalar()
        return int(value or 0)

    def set_event_cursor(self, event_id: int) -> None:
        with self._write() as conn:
            moved = conn.execute(
                update(cur).where(cur.c.workspace == self.workspace).values(event_id=event_id)
            ).rowcount
            if not moved:
                conn.execute(insert(cur).values(workspace=self.workspace, event_id=event_id))

    def add_trigger(self, policy: str, kind: str, *, source_event: int | None, change_ms: int) -> None:
        with self._write() as conn:
            known = conn.execute(
                select(pol.c.id).where(pol.c.workspace == self.workspace, pol.c.name == policy)
            )
            if known.first() is None:
                raise NotFound(f"No policy named {policy!r}.", hint="List them with: loopline policies")
            conn.execute(
                insert(trg).values(
                    workspace=self.workspace,
                    policy=policy,
                    kind=kind,
                    source_event=source_event,
                    change_ms=change_ms,
                    created_ms=now_ms(),
                )
            )
            self._event(
                conn,
                ev.TRIGGER,
                f"policies:/{policy}",
                kind=kind,
                source_event=source_event,
                change_ms=change_ms,
            )

    def take_triggers(self, policy: str) -> list[Mapping[str, Any]]:
        where = (trg.c.workspace == self.workspace, trg.c.policy == policy)
        with self._write() as conn:
            rows = conn.execute(select(trg).where(*where).order_by(trg.c.id)).all()
            if rows:
                conn.execute(delete(trg).where(*where, trg.c.id <= rows[-1].id))
        return [{"kind": r.kind, "source_event": r.source_event, "change_ms": r.change_ms} for r in rows]

    # ---- rollouts ------------------------------------------------------------------------------

    def create_rollout(
        self, policy: Policy, *, trigger: Mapping[str, Any], base_revision: int, champion: str
    ) -> Rollout:
        now = now_ms()
        with self._write() as conn:
            inserted = conn.execute(
                insert(ro).values(
                    workspace=self.workspace,
                    policy=policy.name,
                    deployment=policy.deployment,
                    state=RolloutState.TRAINING.value,
                    step=-1,
                    step_started_ms=now,
                    candidate="",
                    champion=champion,
                    base_revision=base_revision,
                    pipeline_run="",
                    trigger=json.dumps(dict(trigger), default=str),
                    verdict="{}",
                    reason="",
                    created_ms=now,
                    updated_ms=now,
                )
            ).inserted_primary_key
            assert inserted is not None
            rid = inserted[0]
            self._event(
                conn,
                ev.RETRAIN_START,
                f"rollouts:/{rid}",
                policy=policy.name,
                deployment=policy.deployment,
                model=policy.model,
                champion=champion,
                pipeline=policy.pipeline,
                trigger=dict(trigger),
            )
            row = conn.execute(select(ro).where(ro.c.id == rid)).one()
        return _rollout(row)

    def get_rollout(self, rollout_id: int) -> Rollout:
        if not 0 < rollout_id < 2**63:  # no such id: the column is 64-bit
            raise NotFound(f"No rollout {rollout_id}.", hint="List them with: loopline rollouts")
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ro).where(ro.c.workspace == self.workspace, ro.c.id == rollout_id)
            ).first()
        if row is None:
            raise NotFound(f"No rollout {rollout_id}.", hint="List them with: loopline rollouts")
        return _rollout(row)

    def list_rollouts(
        self, *, policy: str | None = None, active: bool | None = None, limit: int = 100
    ) -> list[Rollout]:
        q = select(ro).where(ro.c.workspace == self.workspace)
        if policy is not None:
            q = q.where(ro.c.policy == policy)
        if active is True:
            q = q.where(ro.c.state.not_in(_TERMINAL))
        elif active is False:
            q = q.where(ro.c.state.in_(_TERMINAL))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(ro.c.id.desc()).limit(limit)).all()
        return [_rollout(r) for r in rows]

    def advance(
        self,
        rollout_id: int,
        *,
        expected_state: RolloutState,
        expected_step: int,
        event: str,
        payload: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> Rollout:
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise InvalidInput(f"A rollout has no changeable field {sorted(unknown)}.")
        values: dict[str, Any] = {**changes, "updated_ms": now_ms()}
        if isinstance(values.get("state"), RolloutState):
            values["state"] = values["state"].value
        for key in ("verdict",):
            if key in values:
                values[key] = json.dumps(dict(values[key]), default=str)
        with self._write() as conn:
            moved = conn.execute(
                update(ro)
                .where(
                    ro.c.workspace == self.workspace,
                    ro.c.id == rollout_id,
                    ro.c.state == expected_state.value,
                    ro.c.step == expected_step,
                )
                .values(**values)
            ).rowcount
            row = conn.execute(
                select(ro).where(ro.c.workspace == self.workspace, ro.c.id == rollout_id)
            ).first()
            if row is None:
                raise NotFound(f"No rollout {rollout_id}.")
            if not moved:
                raise Conflict(
                    f"Rollout {rollout_id} is {row.state} at step {row.step}, not {expected_state.value} at "
                    f"step {expected_step}: another controller moved it.",
                    hint="Read it again (loopline rollouts) and act on what it is now.",
                )
            done = _rollout(row)
            body = {
                "policy": done.policy,
                "deployment": done.deployment,
                "candidate": done.candidate,
                "champion": done.champion,
                "state": done.state.value,
                **(payload or {}),
            }
            self._event(conn, event, done.uri, **body)
        return done

    def approve(self, rollout_id: int, reason: str) -> Rollout:
        rollout = self.get_rollout(rollout_id)
        if rollout.state != RolloutState.AWAITING_APPROVAL:
            raise Conflict(
                f"Rollout {rollout_id} is {rollout.state.value}, not waiting for approval.",
                hint="List the rollouts in flight: loopline rollouts --active",
            )
        if not reason.strip():
            raise InvalidInput(
                "An approval needs a reason.", hint='loopline approve 7 --reason "checked the canary"'
            )
        steps = len(self.get_policy(rollout.policy).rollout)
        return self.advance(
            rollout_id,
            expected_state=RolloutState.AWAITING_APPROVAL,
            expected_step=rollout.step,
            event=ev.APPROVE,
            payload={"by": self.actor, "reason": reason[:2000]},
            state=RolloutState.ROLLING,
            step=steps,  # past the last step: the controller promotes it
        )

    # ---- leases --------------------------------------------------------------------------------

    def acquire_lease(self, key: str, holder: str, ttl_s: float) -> bool:
        now = now_ms()
        until = now + int(ttl_s * 1000)
        try:
            with self._write() as conn:
                moved = conn.execute(
                    update(ls)
                    .where(
                        ls.c.workspace == self.workspace,
                        ls.c.key == key,
                        (ls.c.holder == holder) | (ls.c.expires_ms < now),
                    )
                    .values(holder=holder, expires_ms=until)
                ).rowcount
                if moved:
                    return True
                exists = conn.execute(
                    select(ls.c.holder).where(ls.c.workspace == self.workspace, ls.c.key == key)
                ).first()
                if exists is not None:
                    return False
                conn.execute(
                    insert(ls).values(workspace=self.workspace, key=key, holder=holder, expires_ms=until)
                )
                return True
        except IntegrityError:  # another holder inserted the key between our read and our insert
            return False

    def claim_slot(self, key: str, slot_ms: int) -> bool:
        """Claim the time slot ``slot_ms`` of ``key`` (a cron trigger's fire time) once across every
        controller: True for the first claimer of a slot later than the last claimed one. The first
        call for a key only records the slot (a new policy does not fire for a slot already past)."""
        name = f"slot:{key}"
        try:
            with self._write() as conn:
                moved = conn.execute(
                    update(ls)
                    .where(ls.c.workspace == self.workspace, ls.c.key == name, ls.c.expires_ms < slot_ms)
                    .values(expires_ms=slot_ms)
                ).rowcount
                if moved:
                    return True
                known = conn.execute(
                    select(ls.c.key).where(ls.c.workspace == self.workspace, ls.c.key == name)
                )
                if known.first() is None:
                    conn.execute(
                        insert(ls).values(workspace=self.workspace, key=name, holder="", expires_ms=slot_ms)
                    )
                return False
        except IntegrityError:
            return False

    def rollout_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(policy, state) → (how many rollouts, when the last one changed, ms): the /metrics gauges."""
        from sqlalchemy import func

        q = (
            select(ro.c.policy, ro.c.state, func.count(), func.max(ro.c.updated_ms))
            .where(ro.c.workspace == self.workspace)
            .group_by(ro.c.policy, ro.c.state)
        )
        with self.engine.connect() as conn:
            return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in conn.execute(q)}

    def busy_policies(self) -> set[str]:
        """The policies with a rollout in flight or a trigger queued: the only ones a tick acts on."""
        with self.engine.connect() as conn:
            rolling = select(ro.c.policy).where(
                ro.c.workspace == self.workspace, ro.c.state.not_in(_TERMINAL)
            )
            queued = select(trg.c.policy).where(trg.c.workspace == self.workspace)
            return {r[0] for r in conn.execute(rolling.union(queued))}

    def new_events(self, after_id: int, limit: int = 1000) -> list[Event]:
        """Events of this workspace with an id above ``after_id``, oldest first (what the controller
        has not read yet)."""
        e = t.events.c
        q = select(t.events).where(e.workspace == self.workspace, e.id > after_id).order_by(e.id).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            Event(r.id, r.time_ms, r.actor, r.action, r.object_uri, json.loads(r.payload), r.reason)
            for r in rows
        ]

    def release_lease(self, key: str, holder: str) -> None:
        with self._write() as conn:
            conn.execute(
                delete(ls).where(ls.c.workspace == self.workspace, ls.c.key == key, ls.c.holder == holder)
            )


@dataclass(frozen=True, slots=True)
class LoopState:
    """One workspace's loop as the overview sees it: enough to tell whether a tick has work there."""

    policies: tuple[int, int, int]  # how many, the newest id, the last change: moves when any policy does
    busy: bool  # a rollout in flight or a trigger queued
    cursor: int  # the last event its controller read


def loop_overview(engine: Engine) -> tuple[int, dict[str, LoopState]]:
    """The newest event id, and the state of every workspace that has policies: one statement,
    however many workspaces there are (what an idle tick of the server's controllers costs)."""
    busy = or_(
        exists().where(ro.c.workspace == pol.c.workspace, ro.c.state.not_in(_TERMINAL)),
        exists().where(trg.c.workspace == pol.c.workspace),
    )
    cursor = select(cur.c.event_id).where(cur.c.workspace == pol.c.workspace).scalar_subquery()
    newest = select(func.max(t.events.c.id)).scalar_subquery()
    q = select(
        pol.c.workspace,
        func.count(),
        func.max(pol.c.id),
        func.max(pol.c.updated_ms),
        busy,
        func.coalesce(cursor, 0),
        func.coalesce(newest, 0),
    ).group_by(pol.c.workspace)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    top = int(rows[0][6]) if rows else 0
    return top, {r[0]: LoopState((int(r[1]), int(r[2]), int(r[3])), bool(r[4]), int(r[5])) for r in rows}


def new_event_workspaces(engine: Engine, after_id: int, up_to: int) -> dict[str, int]:
    """Each workspace with events in (``after_id``, ``up_to``], and the newest of them: a range of
    the events' primary key, as long as the events appended since the last look."""
    e = t.events.c
    q = select(e.workspace, func.max(e.id)).where(e.id > after_id, e.id <= up_to).group_by(e.workspace)
    with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in conn.execute(q)}
