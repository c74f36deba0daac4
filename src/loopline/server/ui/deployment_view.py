"""A deployment as its page shows it: each route's share of traffic, the rollouts moving it, its history.

Read from the deployment store (the spec at its current revision, and past revisions) and the
automation store (the rollouts of the loop on this deployment, with their policy's steps for the
progress). The page's live part polls this every few seconds, so it is a handful of small queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import Rollout, RolloutStep
from loopline.clock import now_ms
from loopline.context import Context
from loopline.errors import NotFound
from loopline.monitoring.traffic import deployment_traffic
from loopline.serving.sql_store import SqlDeploymentStore
from loopline.serving.types import Deployment, DeploymentRevision, DeploymentSpec
from loopline.uris import parse

HISTORY = 25  # revisions shown
TRAFFIC_MS = 3_600_000  # the traffic chart's last hour, in minutes
TRAFFIC_BUCKET_MS = 60_000
ROLLOUTS = 10


@dataclass(frozen=True, slots=True)
class Share:
    model: str
    resolved: str  # the version an alias named at this revision (models:/m/3); "" when the URI is one
    weight: float
    percent: float  # weight / total weight, in %


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an active rollout is among its policy's steps."""

    rollout: Rollout
    steps: tuple[RolloutStep, ...]
    baked_percent: float  # of the current step's bake time, 0 before the first step

    @property
    def current(self) -> RolloutStep | None:
        return self.steps[self.rollout.step] if 0 <= self.rollout.step < len(self.steps) else None


@dataclass(frozen=True, slots=True)
class DeploymentPage:
    deployment: Deployment
    shares: list[Share]
    revisions: list[DeploymentRevision]
    active: list[Progress]
    finished: list[Rollout]


def shares(spec: DeploymentSpec, resolved: dict[str, str]) -> list[Share]:
    total = sum(r.weight for r in spec.routes) or 1.0
    return [
        Share(
            r.model,
            "" if resolved.get(r.model, r.model) == r.model else resolved[r.model],
            r.weight,
            100 * r.weight / total,
        )
        for r in spec.routes
    ]


def load(context: Context, name: str) -> DeploymentPage:
    """``NotFound`` when there is no deployment ``name``."""
    store = SqlDeploymentStore(context)
    d = store.get_deployment(name)
    revisions = store.list_revisions(name, HISTORY).items
    loop = SqlAutomationStore(context)
    rollouts = [r for r in loop.list_rollouts(limit=200) if r.deployment == name]
    active, policies = [], {}
    for r in (r for r in rollouts if not r.state.terminal):
        if r.policy not in policies:
            try:
                policies[r.policy] = loop.get_policy(r.policy).rollout
            except NotFound:  # deleted since: the rollout still shows, without its steps
                policies[r.policy] = ()
        steps = policies[r.policy]
        baked = 0.0
        if 0 <= r.step < len(steps) and steps[r.step].bake_s > 0:
            baked = min(100.0, (now_ms() - r.step_started_ms) / 10 / steps[r.step].bake_s)
        active.append(Progress(r, steps, baked))
    finished = [r for r in rollouts if r.state.terminal][:ROLLOUTS]
    return DeploymentPage(d, shares(d.spec, dict(d.resolved)), revisions, active, finished)


def traffic(context: Context, name: str) -> dict[str, object]:
    """The chart's series over the last hour: per minute (``x`` in s), requests, the share of them
    that failed and their p99 latency (``None`` where no request came). ``NotFound`` for no ``name``."""
    spec = SqlDeploymentStore(context).get_deployment(name).spec
    uris = [r.model for r in spec.routes] + ([spec.shadow.model] if spec.shadow else [])
    models = {parse(u).name for u in uris if u.startswith("models:/")}
    until = now_ms()
    buckets = deployment_traffic(
        context.artifacts, name, models, until - TRAFFIC_MS, TRAFFIC_BUCKET_MS, until
    )
    per_min = 60_000 / TRAFFIC_BUCKET_MS
    return {
        "x": [b.start_ms / 1000 for b in buckets],
        "requests_per_min": [b.requests * per_min for b in buckets],
        "error_rate": [b.errors / b.requests if b.requests else None for b in buckets],
        "p99_ms": [b.p99_ms for b in buckets],
        "buckets": [b.to_json() for b in buckets],
    }


def list_all(context: Context) -> list[tuple[Deployment, list[Share]]]:
    page = SqlDeploymentStore(context).list_deployments(1000)
    return [(d, shares(d.spec, dict(d.resolved))) for d in page.items]


__all__ = ["DeploymentPage", "Progress", "Share", "list_all", "load", "shares", "traffic"]
