"""The controller: the loop's one actor. Each ``tick`` it

1. reads the events it has not read yet and turns those a policy listens to (a monitor's alert, a
   new dataset version) into queued triggers, and claims each policy's due cron slot;
2. starts a retraining for a policy with queued triggers and no rollout in flight (triggers that
   arrive while one is in flight, or within ``debounce_s`` of its start, join it);
3. moves every rollout in flight one step: training → gating → shadow / canary steps → (approval) →
   promoted, or rejected / rolled back / failed.

All of its state is in the metadata store (``automation/sql_store.py``), so a controller killed at
any point and started again resumes: a rollout moves by compare-and-set on (state, step), each step
first writes what it changes (the deployment's next revision, an alias) and then records that it
did, and writing the same deployment spec twice changes nothing. Two controllers (several server
processes or replicas) never act on one deployment at once: each acts only under a lease on it, and
only the holder of the ``events`` lease reads events.

The controller runs next to the database: inside ``loopline server`` (every few seconds) or alone
as ``loopline controller``. Training and gating run on a worker thread, so a long retraining of one
policy does not hold up another policy's canary.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from loopline.automation import events as ev
from loopline.automation.health import judge as judge_health, measure
from loopline.automation.rollouts import step_spec
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import Policy, Rollout, RolloutState
from loopline.clock import now_ms
from loopline.context import Context
from loopline.errors import InvalidInput, LooplineError, NotFound

log = logging.getLogger("loopline.automation")
S = RolloutState
ALERTS_PREFIX = "monitor."
# A monitor's own bookkeeping, not an alert (declaring or redefining one must not retrain).
NOT_ALERTS = frozenset(
    {
        "monitor.create",
        "monitor.update",
        "monitor.run",
        "monitor.claim",
        "monitor.delete",
        "monitor.profile_reference",
    }
)


EVENTS_PER_PASS = 1000


@dataclass(frozen=True)
class Action:
    """What one tick did, for logs and tests: ``rollouts:/7 canary 5%``."""

    uri: str
    what: str


@dataclass(frozen=True)
class Pass:
    """What one pass over a workspace did: its actions; whether it read events (it held the
    ``events`` lease), and whether those were all the events there were."""

    actions: list[Action]
    listened: bool = False
    caught_up: bool = False


def model_uri(name: str, version: object) -> str:
    return f"models:/{name}/{version}"


def _version(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


class Controller:
    """Drives every policy of one workspace. ``tick()`` does one pass; ``run()`` ticks until stopped."""

    def __init__(
        self,
        context: Context | None = None,
        *,
        holder: str | None = None,
        lease_s: float = 30.0,
        allow_pickle: bool = False,
        confined: bool = False,
        authorize: Callable[[], str | None] | None = None,
    ) -> None:
        self.context = context or Context()
        # With auth on, the loop acts as a service account: before it moves a policy it asks whether
        # that account may (None: yes; else why not, which is logged and the policy waits).
        self.authorize = authorize
        if self.context.is_remote:
            raise InvalidInput(
                "The loop's controller runs next to the database, not against a server URI.",
                hint="It runs inside `loopline server` already; or give it the database: --store-uri.",
            )
        self.store = SqlAutomationStore(self.context)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_s = lease_s
        self.allow_pickle = allow_pickle
        # Inside a server, policies come from clients: run only pipeline files under the configured roots.
        self.confined = confined
        self._work: dict[int, Future[Any]] = {}  # rollout id -> its training or gating, in this process
        self.policies: dict[str, Policy] = {}  # as ``tick`` (or the server's controllers) last read them
        # Per cron trigger: the slot last asked about and when the next one falls (ms).
        self._asked: dict[str, tuple[int, int]] = {}
        self._told: dict[str, tuple[str, float]] = {}  # policy -> why it waits, when that was logged
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="loopline-loop")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ---- the clients it acts through ---------------------------------------------------------

    def _tracking(self) -> Any:
        from loopline.tracking import Client

        return Client(context=self.context)

    def _registry(self) -> Any:
        from loopline.registry import RegistryClient

        return RegistryClient(self._tracking())

    def _deployments(self) -> Any:
        from loopline.serving.store import open_deployment_store

        return open_deployment_store(self.context)

    # ---- one pass ----------------------------------------------------------------------------

    def tick(self, at_ms: int | None = None) -> list[Action]:
        """One pass over the workspace's policies, read afresh: new events and due cron slots become
        triggers, and every busy policy moves one step."""
        now = at_ms if at_ms is not None else now_ms()
        self.policies = {p.name: p for p in self.store.list_policies()}
        return self.step(now).actions

    def step(self, now: int, *, listen: bool = True, busy: bool = True) -> Pass:
        """One pass over ``self.policies`` (as last read): with ``listen``, read the events not read
        yet under the workspace's ``events`` lease; claim the cron slots newly due; with ``busy`` (a
        rollout in flight or a trigger queued, as the caller knows), move every busy policy one step.
        """
        policies = self.policies
        listened, caught_up, added = False, False, 0
        if listen and policies and self.store.acquire_lease("events", self.holder, self.lease_s):
            listened = True
            caught_up, added = self._read_events(policies)
        added += self._claim_schedules(policies, now)
        done: list[Action] = []
        if not (busy or added):
            return Pass(done, listened, caught_up)
        busy_now = self.store.busy_policies()
        refusal = self.authorize() if self.authorize is not None and busy_now else None
        for policy in policies.values():
            if policy.name not in busy_now:
                continue
            if refusal is not None:
                self._tell_wait(policy.name, refusal)
                continue
            if not self.store.acquire_lease(f"deployments:/{policy.deployment}", self.holder, self.lease_s):
                continue
            try:
                done += self._drive(policy, now)
            except LooplineError as e:  # one policy's trouble must not stop the others
                log.warning("policy %s: %s", policy.name, e)
        return Pass(done, listened, caught_up)

    def _tell_wait(self, policy: str, why: str) -> None:
        """Log why a policy waits when the reason is new, then once a minute (not at every tick)."""
        told, now = self._told.get(policy), time.monotonic()
        if told is None or told[0] != why or now - told[1] >= 60:
            log.warning("policy %s waits: %s", policy, why)
            self._told[policy] = (why, now)

    def cron_due(self, now: int) -> bool:
        """Whether a cron trigger of ``self.policies`` has a slot this controller has not asked about
        yet (no query: what it asked is remembered)."""
        return any(
            key not in self._asked or now > self._asked[key][1] for key, _, _ in self._crons(self.policies)
        )

    def run(self, stop: threading.Event, interval_s: float = 2.0) -> None:
        """Tick every ``interval_s`` until ``stop`` is set; a failed tick is logged and retried."""
        while not stop.is_set():
            try:
                for action in self.tick():
                    log.info("%s %s", action.uri, action.what)
            except Exception:
                log.exception("the loop's controller tick failed; retrying")
            stop.wait(interval_s)
        self.close()

    # ---- triggers ----------------------------------------------------------------------------

    def _read_events(self, policies: Mapping[str, Policy]) -> tuple[bool, int]:
        """Turn the events not read yet into triggers: (whether it read them all, triggers added)."""
        cursor = self.store.event_cursor()
        events = self.store.new_events(cursor, limit=EVENTS_PER_PASS)
        declared = self.store.policy_created() if events else {}
        added = 0
        for event in events:
            for policy in policies.values():
                kind = _trigger_kind(policy, event.action, event.object_uri)
                if kind and event.time_ms >= declared.get(policy.name, 0):  # not what came before it
                    self.store.add_trigger(policy.name, kind, source_event=event.id, change_ms=event.time_ms)
                    added += 1
        if events:
            self.store.set_event_cursor(events[-1].id)
        return len(events) < EVENTS_PER_PASS, added

    @staticmethod
    def _crons(policies: Mapping[str, Policy]) -> Iterator[tuple[str, Policy, str]]:
        """(its claim key, the policy, the cron) of every cron trigger."""
        for policy in policies.values():
            for trigger in policy.triggers:
                if trigger.kind == "schedule" and trigger.cron:
                    yield f"{policy.name}:{trigger.cron}", policy, trigger.cron

    def _claim_schedules(self, policies: Mapping[str, Policy], now: int) -> int:
        """Claim each cron trigger's newest slot once across every controller (``claim_slot`` decides:
        no lease needed), asking about each slot once; returns the triggers it added."""
        from croniter import croniter

        added = 0
        for key, policy, cron in self._crons(policies):
            if key in self._asked and now <= self._asked[key][1]:
                continue  # the slot it asked about last is still the newest
            slot = int(croniter(cron, now / 1000).get_prev(float) * 1000)
            if self.store.claim_slot(key, slot):
                self.store.add_trigger(policy.name, "schedule", source_event=None, change_ms=slot)
                added += 1
            self._asked[key] = (slot, int(croniter(cron, now / 1000).get_next(float) * 1000))
        return added

    # ---- one policy --------------------------------------------------------------------------

    def _drive(self, policy: Policy, now: int) -> list[Action]:
        active = self.store.list_rollouts(policy=policy.name, active=True, limit=1)
        if active:
            rollout = active[0]
            if now - rollout.created_ms < policy.debounce_s * 1000 or rollout.state == S.TRAINING:
                self.store.take_triggers(policy.name)  # they join the retraining in flight
            return self._step(policy, rollout, now)
        last = self.store.list_rollouts(policy=policy.name, limit=1)
        if last and now - last[0].created_ms < policy.debounce_s * 1000:
            return []  # debounced: queued triggers wait for the window to pass
        # What the rollout starts from is read first: if the deployment is missing, the triggers stay
        # queued (the tick logs why) instead of being taken and lost.
        deployment = self._deployments().get_deployment(policy.deployment)
        try:
            champion = self._registry().get_model_version_by_alias(policy.model, policy.champion_alias)
            champion_uri = model_uri(policy.model, champion.version)
        except NotFound:
            champion_uri = ""
        triggers = self.store.take_triggers(policy.name)
        if not triggers:
            return []
        trigger = {
            "kinds": sorted({str(t["kind"]) for t in triggers}),
            "source_events": [t["source_event"] for t in triggers if t["source_event"] is not None],
            "change_ms": min(int(t["change_ms"]) for t in triggers),
            "count": len(triggers),
        }
        rollout = self.store.create_rollout(
            policy, trigger=trigger, base_revision=deployment.revision, champion=champion_uri
        )
        return [Action(rollout.uri, f"retraining {policy.pipeline} ({len(triggers)} trigger(s))")]

    def _step(self, policy: Policy, rollout: Rollout, now: int) -> list[Action]:
        if rollout.state == S.TRAINING:
            return self._train(policy, rollout)
        if rollout.state == S.GATING:
            return self._gate(policy, rollout)
        if rollout.state in (S.ROLLING, S.AWAITING_APPROVAL):
            return self._roll(policy, rollout, now)
        return []

    # ---- training and gating (on the worker thread) ------------------------------------------

    def _background(self, rollout: Rollout, work: Callable[[], Any]) -> Future[Any] | None:
        """The finished future of ``rollout``'s work, starting it first if this process has none
        running (a restarted controller starts it again; the pipeline's cache makes that cheap)."""
        future = self._work.get(rollout.id)
        if future is None:
            self._work[rollout.id] = self._pool.submit(work)
            return None
        if not future.done():
            return None
        del self._work[rollout.id]
        return future

    def _train(self, policy: Policy, rollout: Rollout) -> list[Action]:
        future = self._background(rollout, lambda: self._run_pipeline(policy, rollout))
        if future is None:
            return []
        try:
            run_id, candidate = future.result()
        except Exception as e:
            self.store.advance(
                rollout.id,
                expected_state=S.TRAINING,
                expected_step=rollout.step,
                event=ev.RETRAIN_FAIL,
                payload={"error": str(e)[:2000], "model": policy.model},
                state=S.FAILED,
                reason=f"retraining failed: {e}"[:2000],
            )
            return [Action(rollout.uri, f"retraining failed: {e}")]
        self.store.advance(
            rollout.id,
            expected_state=S.TRAINING,
            expected_step=rollout.step,
            event=ev.RETRAIN_FINISH,
            payload={"pipeline_run": run_id, "model": policy.model},
            state=S.GATING,
            candidate=candidate,
            pipeline_run=run_id,
        )
        return [Action(rollout.uri, f"trained {candidate}")]

    def _run_pipeline(self, policy: Policy, rollout: Rollout) -> tuple[str, str]:
        from loopline.pipelines.pipeline import load_target

        if self.confined:
            check_pipeline_allowed(policy.pipeline, self.context.settings.pipeline_roots)
        pipeline = load_target(policy.pipeline)
        # Uncached: a retraining asked for must train (a cache hit would register no new version);
        # a restarted controller trains again, which costs time but never a wrong result.
        # In the controller's workspace and as its actor (the settings name the server's own).
        settings = replace(self.context.settings, workspace=self.context.workspace, user=self.context.actor)
        result = pipeline.run(settings=settings, cache=False, **dict(policy.params))
        return result.run_id, self._candidate(policy, result.outputs, rollout.created_ms)

    def _candidate(self, policy: Policy, outputs: Any, since_ms: int) -> str:
        """The model version the pipeline made: its output (a ``models:/`` URI or a model version),
        else the newest version of the policy's model registered since the retraining began."""
        registry = self._registry()
        if isinstance(outputs, str) and outputs.startswith("models:/"):
            from loopline.uris import parse

            ref = parse(outputs)
            if ref.alias:
                return model_uri(ref.name, registry.get_model_version_by_alias(ref.name, ref.alias).version)
            return model_uri(ref.name, ref.version)
        if hasattr(outputs, "name") and hasattr(outputs, "version"):
            return model_uri(outputs.name, outputs.version)
        versions = [
            v
            for v in registry.search_model_versions(f"name = '{policy.model}'")
            if v.creation_timestamp >= since_ms
        ]
        if not versions:
            raise InvalidInput(
                f"Pipeline {policy.pipeline} registered no version of model {policy.model!r}.",
                hint="Register the trained model in the pipeline (loopline.register_model) "
                "or return its models:/ URI.",
            )
        newest = max(versions, key=lambda v: int(v.version))
        return model_uri(policy.model, newest.version)

    def _gate(self, policy: Policy, rollout: Rollout) -> list[Action]:
        from loopline.automation.gates import judge, verdict_to_json

        champion = rollout.champion or None
        future = self._background(
            rollout,
            lambda: judge(
                policy.gate,
                rollout.candidate,
                champion,
                client=self._tracking(),
                allow_pickle=self.allow_pickle,
            ),
        )
        if future is None:
            return []
        try:
            verdict = future.result()
        except LooplineError as e:  # the gate could not judge (e.g. no held-out data): not promoted
            return self._reject(
                policy,
                rollout,
                {"passed": False, "error": e.message},
                f"the gate could not judge: {e.message}",
            )
        body = verdict_to_json(verdict)
        if not verdict.passed:
            return self._reject(
                policy, rollout, body, "; ".join(r.why for r in verdict.rules if not r.passed)
            )
        self._registry().set_alias(policy.model, policy.challenger_alias, _version(rollout.candidate))
        gated = self.store.advance(
            rollout.id,
            expected_state=S.GATING,
            expected_step=rollout.step,
            event=ev.GATE,
            payload={**body, "model": policy.model},
            state=S.ROLLING,
            verdict=body,
        )
        self._notify(policy, gated, ev.GATE, body)
        return [Action(rollout.uri, "gate passed"), *self._enter(policy, gated, 0)]

    def _reject(self, policy: Policy, rollout: Rollout, verdict: dict[str, Any], why: str) -> list[Action]:
        """The candidate is kept (tagged by the gate) and explained, never served."""
        self.store.advance(
            rollout.id,
            expected_state=S.GATING,
            expected_step=rollout.step,
            event=ev.GATE,
            payload={**verdict, "model": policy.model},
            state=S.REJECTED,
            verdict=verdict,
            reason=why[:2000],
        )
        self._notify(policy, rollout, ev.GATE, verdict)
        return [Action(rollout.uri, f"rejected: {why}")]

    # ---- rolling -------------------------------------------------------------------------------

    def _enter(self, policy: Policy, rollout: Rollout, index: int) -> list[Action]:
        """Move ``rollout`` to step ``index`` (past the last: approval or promotion)."""
        if index >= len(policy.rollout):
            if policy.approval and rollout.state != S.AWAITING_APPROVAL:
                self.store.advance(
                    rollout.id,
                    expected_state=rollout.state,
                    expected_step=rollout.step,
                    event=ev.APPROVAL_WAIT,
                    payload={"model": policy.model},
                    state=S.AWAITING_APPROVAL,
                )
                self._notify(policy, rollout, ev.APPROVAL_WAIT, {"approve": f"loopline approve {rollout.id}"})
                return [Action(rollout.uri, "waiting for approval")]
            return self._promote(policy, rollout)
        step = policy.rollout[index]
        base = self._deployments().list_revisions(policy.deployment, max_results=1000)
        spec = next((r.spec for r in base.items if r.revision == rollout.base_revision), None)
        if spec is None:
            return self._rollback(
                policy, rollout, f"the deployment's revision {rollout.base_revision} is gone", 0
            )
        self._deployments().set_deployment(
            step_spec(spec, step, rollout.candidate),
            comment=f"rollout {rollout.id}: {step.stage} {step.weight:g}%",
        )
        self.store.advance(
            rollout.id,
            expected_state=rollout.state,
            expected_step=rollout.step,
            event=ev.ROLLOUT_STEP,
            payload={"step": index, "stage": step.stage, "weight": step.weight, "model": policy.model},
            step=index,
            step_started_ms=now_ms(),
        )
        return [Action(rollout.uri, f"{step.stage} {step.weight:g}%")]

    def _roll(self, policy: Policy, rollout: Rollout, now: int) -> list[Action]:
        if rollout.step >= len(policy.rollout):  # approved, or a policy whose steps shrank
            return self._promote(policy, rollout)
        if rollout.step < 0:  # the gate passed but the first step was not entered (a crash between)
            return self._enter(policy, rollout, 0)
        step = policy.rollout[rollout.step]
        seen = measure(
            self.context.artifacts,
            policy.deployment,
            policy.model,
            _version(rollout.candidate),
            rollout.step_started_ms,
            role="shadow" if step.stage == "shadow" else "primary",
        )
        healthy, why = judge_health(seen, policy.health)
        if healthy is False:
            return self._rollback(policy, rollout, why, now, seen.to_json())
        if rollout.state == S.AWAITING_APPROVAL or now - rollout.step_started_ms < step.bake_s * 1000:
            return []
        if healthy is None:
            return []  # too few requests yet to judge the step: keep baking
        return self._enter(policy, rollout, rollout.step + 1)

    def _promote(self, policy: Policy, rollout: Rollout) -> list[Action]:
        registry = self._registry()
        registry.set_alias(policy.model, policy.champion_alias, _version(rollout.candidate))
        if rollout.champion:
            registry.set_alias(policy.model, f"previous-{policy.champion_alias}", _version(rollout.champion))
        deployments = self._deployments()
        revisions = deployments.list_revisions(policy.deployment, max_results=1000)
        base = next((r.spec for r in revisions.items if r.revision == rollout.base_revision), None)
        if base is not None:  # its routes name the alias, which now serves the candidate
            deployments.set_deployment(base, comment=f"rollout {rollout.id}: promoted {rollout.candidate}")
        promoted = self.store.advance(
            rollout.id,
            expected_state=rollout.state,
            expected_step=rollout.step,
            event=ev.PROMOTE,
            payload={
                "model": policy.model,
                "change_ms": rollout.trigger.get("change_ms", rollout.created_ms),
            },
            state=S.PROMOTED,
            reason=f"promoted to {policy.champion_alias}",
        )
        self._notify(policy, promoted, ev.PROMOTE, {"alias": policy.champion_alias})
        return [Action(rollout.uri, f"promoted {rollout.candidate} to @{policy.champion_alias}")]

    def _rollback(
        self,
        policy: Policy,
        rollout: Rollout,
        why: str,
        detected_ms: int,
        health: Mapping[str, Any] | None = None,
    ) -> list[Action]:
        deployments = self._deployments()
        try:
            deployments.rollback(
                policy.deployment, rollout.base_revision, comment=f"rollout {rollout.id}: {why}"
            )
        except NotFound:
            log.warning(
                "rollout %s: revision %s of %s is gone", rollout.id, rollout.base_revision, policy.deployment
            )
        body = {
            "model": policy.model,
            "reason": why,
            "detected_ms": detected_ms or now_ms(),
            "health": health or {},
        }
        rolled = self.store.advance(
            rollout.id,
            expected_state=rollout.state,
            expected_step=rollout.step,
            event=ev.ROLLBACK,
            payload=body,
            state=S.ROLLED_BACK,
            reason=f"rolled back: {why}"[:2000],
        )
        self.store.advance(
            rollout.id,
            expected_state=S.ROLLED_BACK,
            expected_step=rolled.step,
            event=ev.RESTORED,
            payload={"model": policy.model, "detected_ms": body["detected_ms"]},
        )
        self._notify(policy, rolled, ev.ROLLBACK, body)
        return [Action(rollout.uri, f"rolled back: {why}")]

    # ---- notifications -------------------------------------------------------------------------

    def _notify(self, policy: Policy, rollout: Rollout, event: str, body: Mapping[str, Any]) -> None:
        if not policy.webhooks:
            return
        from loopline.monitoring.alerts import notify

        text = f"[loopline] {event} {rollout.uri} ({policy.name}: {rollout.candidate or 'no candidate'})"
        payload = {"event": event, "text": text, "rollout": rollout.id, "policy": policy.name, **body}
        settings = self.context.settings
        secret = settings.webhook_secret or None
        self._pool.submit(notify, policy.webhooks, payload, secret=secret, allow=settings.webhook_allow)


def check_pipeline_allowed(target: str, roots: str) -> None:
    """Refuse a pipeline a server's controller must not run: anything but a file under ``roots``."""
    import os
    from pathlib import Path

    allowed = [Path(r).resolve() for r in roots.split(os.pathsep) if r.strip()]
    file = target.rpartition(":")[0]
    path = Path(file).resolve() if file.endswith(".py") else None
    if path is None or not any(path.is_relative_to(root) for root in allowed):
        raise InvalidInput(
            f"This server's controller does not run {target!r}: it runs only pipeline files under "
            f"LOOPLINE_PIPELINE_ROOTS ({roots or 'unset'}).",
            hint="Start the server with LOOPLINE_PIPELINE_ROOTS=/srv/pipelines (the folders of the "
            "team's reviewed pipeline code), or run `loopline controller` next to the database.",
        )


def _trigger_kind(policy: Policy, action: str, uri: str) -> str:
    """The kind of trigger of ``policy`` the event (``action`` on ``uri``) is, or ""."""
    for trigger in policy.triggers:
        if (
            trigger.kind == "alert"
            and action.startswith(ALERTS_PREFIX)
            and action not in NOT_ALERTS
            and uri == f"monitors:/{trigger.monitor}"
        ):
            return "alert"
        if (
            trigger.kind == "dataset"
            and action == "dataset.version_created"
            and uri.startswith(f"datasets:/{trigger.dataset}/")
        ):
            return "dataset"
    return ""


def retrain(context: Context | None, policy: str) -> None:
    """``loopline retrain POLICY``: queue a manual trigger; the controller starts the retraining."""
    from loopline.automation.store import open_automation_store

    store = open_automation_store(context or Context())
    store.get_policy(policy)  # NotFound with its hint when there is none
    store.add_trigger(policy, "manual", source_event=None, change_ms=now_ms())
