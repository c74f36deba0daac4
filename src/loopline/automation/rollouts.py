"""How a rollout moves traffic: the deployment specs of each step, promotion and rollback.

A rollout never edits the deployment in place: each step writes the deployment's next revision
(through the deployment store, so serving processes pick it up at their next poll, and the history,
events and lineage record it), derived from the spec the rollout began from (``base``):

- shadow w%: the base routes, and the candidate as the shadow sampling w% of requests;
- canary w%: the base routes scaled to (100 - w)% in total, and the candidate at w%;
- promote: the champion alias moves to the candidate, then the base spec is written back (its
  routes name the alias, so they now serve the candidate);
- rollback: the base revision's spec is written back (``DeploymentStore.rollback``).

Each write passes the revision the rollout last saw, so an operator's change made meanwhile is not
overwritten: the rollout sees a ``Conflict`` and rolls back instead of fighting the operator.
"""

from __future__ import annotations

from loopline.automation.types import RolloutStep
from loopline.serving.types import DeploymentSpec, Route, Shadow


def step_spec(base: DeploymentSpec, step: RolloutStep, candidate: str) -> DeploymentSpec:
    """The deployment spec while ``step`` of a rollout of ``candidate`` runs."""
    if step.stage == "shadow":
        return DeploymentSpec(
            base.name, base.routes, Shadow(candidate, step.weight / 100), base.sticky_header
        )
    total = sum(r.weight for r in base.routes) or 1.0
    keep = 100.0 - step.weight
    routes = tuple(Route(r.model, r.weight / total * keep) for r in base.routes if r.weight > 0)
    return DeploymentSpec(
        base.name, (*routes, Route(candidate, step.weight)), base.shadow, base.sticky_header
    )


def candidate_share(spec: DeploymentSpec, candidate: str) -> float:
    """The share (0..100) of requests ``spec`` sends to ``candidate``."""
    total = sum(r.weight for r in spec.routes) or 1.0
    return sum(r.weight for r in spec.routes if r.model == candidate) / total * 100
