"""What the closed loop is made of: policies (what triggers retraining, which pipeline trains, which
gate judges, how the rollout goes) and rollouts (one candidate's way from gate to champion).

A :class:`Policy` is declared as code (``loopline.yaml`` or Python) and stored in the metadata store;
a :class:`Rollout` is the controller's state for one candidate, kept in the store so a restarted
controller resumes where it was. Their JSON shapes live here too (``*_to_json`` / ``*_from_json``),
so the SQL store, the REST store, the server's routes and ``loopline.yaml`` agree.

    Policy(name="churn", model="churn", deployment="churn-prod", pipeline="train.py:train",
           triggers=(Trigger("alert", monitor="churn-drift"),),
           gate=Gate(dataset="datasets:/churn-holdout@latest", target="churned",
                     rules=(GateRule("metric", metric="roc_auc", max_loss=0.005),)),
           rollout=(RolloutStep("shadow", 100, bake_s=60), RolloutStep("canary", 5, bake_s=120),
                    RolloutStep("canary", 25, bake_s=300)))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from loopline.errors import InvalidInput
from loopline.names import check_name

TriggerKind = Literal["alert", "dataset", "schedule"]
RuleKind = Literal["metric", "latency", "validation", "signature"]
StageKind = Literal["shadow", "canary"]
TRIGGER_KINDS: tuple[str, ...] = ("alert", "dataset", "schedule")
RULE_KINDS: tuple[str, ...] = ("metric", "latency", "validation", "signature")
STAGE_KINDS: tuple[str, ...] = ("shadow", "canary")
MANAGED_LABEL = "managed-by"  # labels[MANAGED_LABEL] == "apply": made by `loopline apply` (pruned by it)


def _finite(value: object, what: str, *, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{what} must be a number, got {value!r}.")
    if not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low:g} and {high:g}, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class Trigger:
    """What starts a retraining: a monitor's alert (``monitor``: its name; any ``monitor.*`` alert
    event of it, such as ``monitor.drift_detected``), a new version of a dataset (``dataset``: its
    name), or a cron schedule (``cron``, UTC). ``loopline retrain POLICY`` starts one by hand."""

    kind: TriggerKind
    monitor: str | None = None
    dataset: str | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        needs = {"alert": "monitor", "dataset": "dataset", "schedule": "cron"}
        if self.kind not in needs:
            raise InvalidInput(f"Unknown trigger kind {self.kind!r}.", hint="Use alert, dataset or schedule.")
        if not getattr(self, needs[self.kind]):
            raise InvalidInput(f"A {self.kind} trigger needs '{needs[self.kind]}'.")
        if self.cron:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise InvalidInput(f"Invalid cron expression {self.cron!r}.", hint="For example: 0 3 * * *")


@dataclass(frozen=True)
class GateRule:
    """One rule a candidate must pass against the serving champion.

    - ``metric``: the candidate's ``metric`` (a name ``loopline.evaluate`` computes, e.g. ``roc_auc``)
      is not worse than the champion's by more than ``max_loss``; with ``method="bootstrap"`` judged
      by the one-sided ``confidence`` bound of a paired bootstrap of the difference (``resamples``
      resamples of the held-out rows), with ``"point"`` by the point estimates;
    - ``latency``: the candidate's p99 latency of one-row predictions, measured by loading and
      calling it, is under ``p99_ms``;
    - ``validation``: the validation suite ``suite`` (a suite file) passes on the held-out data;
    - ``signature``: the candidate's input signature accepts what the champion's accepted.
    """

    kind: RuleKind
    metric: str | None = None
    max_loss: float = 0.0
    higher_is_better: bool | None = None  # None: the metric's own direction (roc_auc up, log_loss down)
    method: Literal["bootstrap", "point"] = "bootstrap"
    confidence: float = 0.95
    resamples: int = 1000
    p99_ms: float | None = None
    suite: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise InvalidInput(f"Unknown gate rule {self.kind!r}.", hint="Use " + ", ".join(RULE_KINDS) + ".")
        if self.kind == "metric" and not self.metric:
            raise InvalidInput("A metric rule needs 'metric' (e.g. roc_auc).")
        if self.kind == "latency" and self.p99_ms is None:
            raise InvalidInput("A latency rule needs 'p99_ms'.")
        if self.kind == "validation" and not self.suite:
            raise InvalidInput("A validation rule needs 'suite' (a suite file).")
        if self.method not in ("bootstrap", "point"):
            raise InvalidInput(f"Unknown method {self.method!r}.", hint="Use bootstrap or point.")
        _finite(self.max_loss, "max_loss", low=0)
        _finite(self.confidence, "confidence", low=0.5, high=0.9999)
        if not 100 <= self.resamples <= 100_000:
            raise InvalidInput(f"resamples must be between 100 and 100000, got {self.resamples}.")
        if self.p99_ms is not None:
            _finite(self.p99_ms, "p99_ms", low=0)


@dataclass(frozen=True)
class Gate:
    """Where and how a candidate is judged: the held-out ``dataset`` (a ``datasets:/`` URI; empty:
    the newest version of the dataset the candidate's run used as ``eval``/``test`` input, found
    through lineage), its label column ``target``, and the rules, all of which must pass."""

    rules: tuple[GateRule, ...]
    dataset: str = ""
    target: str = "label"
    model_type: Literal["classifier", "regressor"] = "classifier"

    def __post_init__(self) -> None:
        if self.model_type not in ("classifier", "regressor"):
            raise InvalidInput(
                f"Unknown model_type {self.model_type!r}.", hint="Use classifier or regressor."
            )


@dataclass(frozen=True)
class RolloutStep:
    """One stage of a rollout: ``shadow`` (the candidate sees ``weight`` % of live traffic, answers
    only logged) or ``canary`` (it answers ``weight`` % of requests), held ``bake_s`` seconds while
    online health is checked. After the last step the candidate is promoted (the alias moves)."""

    stage: StageKind
    weight: float
    bake_s: float = 60.0

    def __post_init__(self) -> None:
        if self.stage not in STAGE_KINDS:
            raise InvalidInput(f"Unknown rollout stage {self.stage!r}.", hint="Use shadow or canary.")
        _finite(self.weight, f"The {self.stage} step's weight", low=0.0001, high=100)
        _finite(self.bake_s, f"The {self.stage} step's bake_s", low=0)


@dataclass(frozen=True)
class Health:
    """Online health a rollout step must keep (judged on the candidate's requests of the step, once
    at least ``min_requests`` arrived; a step with fewer at the end of its bake waits longer)."""

    max_error_rate: float = 0.01
    max_p99_ms: float | None = None
    min_agreement: float | None = None  # the shadow's agreement with the champion (0..1)
    max_accuracy_drop: float | None = None  # online accuracy vs the champion's, once feedback arrived
    min_requests: int = 20

    def __post_init__(self) -> None:
        _finite(self.max_error_rate, "max_error_rate", low=0, high=1)
        if self.min_agreement is not None:
            _finite(self.min_agreement, "min_agreement", low=0, high=1)
        if self.max_accuracy_drop is not None:
            _finite(self.max_accuracy_drop, "max_accuracy_drop", low=0, high=1)
        if self.max_p99_ms is not None:
            _finite(self.max_p99_ms, "max_p99_ms", low=0)
        if self.min_requests < 0:
            raise InvalidInput("min_requests must not be negative.")


@dataclass(frozen=True)
class Policy:
    """How the loop closes for one model served by one deployment."""

    name: str
    model: str  # the registered model the pipeline registers versions of
    deployment: str  # the deployment that serves models:/<model>@<champion_alias>
    pipeline: str  # a pipeline target: "path/to/file.py:fn" or "package.module:fn"
    gate: Gate
    triggers: tuple[Trigger, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    rollout: tuple[RolloutStep, ...] = ()
    health: Health = field(default_factory=Health)
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    approval: bool = False  # a maintainer must `loopline approve` before promotion
    webhooks: tuple[str, ...] = ()
    debounce_s: float = 60.0  # triggers within this long of a retraining start join it
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("policy", self.name)
        check_name("model", self.model)
        check_name("deployment", self.deployment)
        if not isinstance(self.pipeline, str) or ":" not in self.pipeline:
            raise InvalidInput(
                f"Policy {self.name!r}: pipeline {self.pipeline!r} is not a pipeline target.",
                hint="Use 'path/to/file.py:function' or 'package.module:function'.",
            )
        if self.champion_alias == self.challenger_alias:
            raise InvalidInput(f"Policy {self.name!r}: the champion and challenger aliases must differ.")
        _finite(self.debounce_s, "debounce_s", low=0)
        for url in self.webhooks:
            if not url.startswith(("http://", "https://")):
                raise InvalidInput(f"Policy {self.name!r}: webhook {url!r} is not an http(s) URL.")

    @property
    def uri(self) -> str:
        return f"policies:/{self.name}"

    @property
    def managed(self) -> bool:
        """Made by ``loopline apply`` (so ``apply --prune`` may delete it)."""
        return self.labels.get(MANAGED_LABEL) == "apply"


class RolloutState(StrEnum):
    """Where a candidate is. Terminal: rejected, promoted, rolled_back, failed."""

    TRAINING = "training"  # the policy's pipeline is running
    GATING = "gating"  # the candidate is being judged
    REJECTED = "rejected"  # the gate failed it: kept, tagged, explained, never served
    ROLLING = "rolling"  # at step ``step`` of the policy's rollout
    AWAITING_APPROVAL = "awaiting_approval"
    PROMOTED = "promoted"  # the champion alias moved to the candidate
    ROLLED_BACK = "rolled_back"  # online health failed: previous weights and alias restored
    FAILED = "failed"  # retraining failed (no candidate)

    @property
    def terminal(self) -> bool:
        return self in (
            RolloutState.REJECTED,
            RolloutState.PROMOTED,
            RolloutState.ROLLED_BACK,
            RolloutState.FAILED,
        )


@dataclass(frozen=True)
class Rollout:
    """One candidate's way through the loop, as the store holds it."""

    id: int
    policy: str
    deployment: str
    state: RolloutState
    candidate: str = ""  # models:/<model>/<version> once trained
    champion: str = ""  # models:/<model>/<version> serving when the rollout began ("" when none)
    step: int = -1  # index into the policy's rollout steps; -1 before the first
    step_started_ms: int = 0
    base_revision: int = 0  # the deployment revision before the rollout touched it (restored on rollback)
    trigger: Mapping[str, Any] = field(default_factory=dict)  # kind, event ids, time of the change
    verdict: Mapping[str, Any] = field(default_factory=dict)  # the gate's rules with their numbers
    reason: str = ""
    pipeline_run: str = ""
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def uri(self) -> str:
        return f"rollouts:/{self.id}"


# The fields each kind of trigger and rule takes: a policy's JSON carries just those.
TRIGGER_FIELDS = {"alert": ("monitor",), "dataset": ("dataset",), "schedule": ("cron",)}
RULE_FIELDS = {
    "metric": ("metric", "max_loss", "higher_is_better", "method", "confidence", "resamples"),
    "latency": ("p99_ms",),
    "validation": ("suite",),
    "signature": (),
}


def policy_to_json(policy: Policy) -> dict[str, Any]:
    out = asdict(policy)
    out["params"] = dict(policy.params)
    out["labels"] = dict(policy.labels)
    out["triggers"] = [
        {"kind": t.kind, **{k: getattr(t, k) for k in TRIGGER_FIELDS[t.kind]}} for t in policy.triggers
    ]
    out["gate"]["rules"] = [
        {"kind": r.kind, **{k: getattr(r, k) for k in RULE_FIELDS[r.kind]}} for r in policy.gate.rules
    ]
    return out


def policy_from_json(data: Mapping[str, Any]) -> Policy:
    """A policy from its JSON shape (or a parsed ``loopline.yaml`` entry); bad input: ``InvalidInput``."""
    try:
        body = dict(data)
        gate = dict(body.pop("gate"))
        gate["rules"] = tuple(GateRule(**r) for r in gate.get("rules", ()))
        return Policy(
            **{k: v for k, v in body.items() if k not in ("triggers", "rollout", "health", "webhooks")},
            gate=Gate(**gate),
            triggers=tuple(Trigger(**t) for t in body.get("triggers", ())),
            rollout=tuple(RolloutStep(**s) for s in body.get("rollout", ())),
            health=Health(**body.get("health", {})),
            webhooks=tuple(body.get("webhooks", ())),
        )
    except InvalidInput:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(
            f"Invalid policy: {e}.", hint="See docs/loop.md for the policy's fields."
        ) from None


def rollout_to_json(rollout: Rollout) -> dict[str, Any]:
    out = asdict(rollout)
    out["state"] = rollout.state.value
    out["trigger"] = dict(rollout.trigger)
    out["verdict"] = dict(rollout.verdict)
    return out


def rollout_from_json(data: Mapping[str, Any]) -> Rollout:
    body = dict(data)
    body["state"] = RolloutState(body["state"])
    return Rollout(**body)


__all__ = [
    "MANAGED_LABEL",
    "Gate",
    "GateRule",
    "Health",
    "Policy",
    "Rollout",
    "RolloutState",
    "RolloutStep",
    "Trigger",
    "policy_from_json",
    "policy_to_json",
    "rollout_from_json",
    "rollout_to_json",
]
