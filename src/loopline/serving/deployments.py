"""Deployments: a name for "these model versions, with these traffic weights, and this shadow".

    set_deployment("churn-prod",
                   routes=[("models:/churn@champion", 90), ("models:/churn@challenger", 10)],
                   shadow="models:/churn/9")
    # loopline serve --deployment churn-prod

A deployment is a metadata-store object (``serving/store.py``): each change is a numbered revision
with its author, time and comment, an event (``loopline events deployments:/churn-prod``) and
lineage edges from the model versions it routes to (aliases resolved as of that revision). Writers
may pass the ``expected_revision`` they read, so two operators cannot silently overwrite each
other (``Conflict``, 409). A serving process polls the revision every few seconds and re-reads the
spec only when it moved; it follows alias moves too, so a change takes effect without a restart.

Routing is weighted at random per request, or sticky when the request carries the deployment's
``sticky_header`` (the same key always lands on the same version while the weights stay put).

The functions take ``client``: a tracking ``Client`` (default: ``default_client()``), whose context
says where the deployments are (its database, or its ``loopline server``).
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from loopline.errors import InvalidInput
from loopline.serving.store import DeploymentStore, open_deployment_store
from loopline.serving.types import Deployment, DeploymentRevision, DeploymentSpec, Route, Shadow

T = TypeVar("T")


def deployment_store(client: Any = None) -> DeploymentStore:
    """The deployment store of ``client``'s context (default: the default client's)."""
    from loopline.tracking import Client, default_client

    c = client if isinstance(client, Client) else default_client()
    return open_deployment_store(c.context)


def set_deployment(
    name: str,
    routes: Sequence[tuple[str, float]] | str,
    *,
    shadow: str | Shadow | None = None,
    sticky_header: str | None = None,
    expected_revision: int | None = None,
    comment: str = "",
    client: Any = None,
) -> Deployment:
    """Create or change deployment ``name`` (its next revision); servers pick it up at their next poll.

    With ``expected_revision`` (the revision you read; 0 to create only), a deployment someone
    else changed meanwhile is a ``Conflict`` instead of being overwritten.

    >>> set_deployment("churn-prod", [("models:/churn@champion", 90), ("models:/churn/8", 10)])
    """
    if isinstance(routes, str):
        routes = [(routes, 100.0)]
    spec = DeploymentSpec(
        name,
        tuple(Route(m, w) for m, w in routes),
        Shadow(shadow) if isinstance(shadow, str) else shadow,
        sticky_header.lower() if sticky_header else None,
    )
    return deployment_store(client).set_deployment(spec, expected_revision=expected_revision, comment=comment)


def get_deployment(name: str, *, client: Any = None) -> Deployment:
    return deployment_store(client).get_deployment(name)


def list_deployments(*, client: Any = None) -> list[Deployment]:
    """Every deployment, by name."""
    store = deployment_store(client)
    out: list[Deployment] = []
    token = None
    while True:
        page = store.list_deployments(1000, token)
        out += page.items
        if not (token := page.next_page_token):
            return out


def delete_deployment(name: str, *, expected_revision: int | None = None, client: Any = None) -> None:
    """Delete a deployment and its history (servers already running it keep their last state)."""
    deployment_store(client).delete_deployment(name, expected_revision=expected_revision)


def deployment_history(name: str, *, limit: int = 100, client: Any = None) -> list[DeploymentRevision]:
    """The newest ``limit`` revisions of ``name``, newest first."""
    return deployment_store(client).list_revisions(name, limit).items


def rollback_deployment(
    name: str,
    to_revision: int,
    *,
    expected_revision: int | None = None,
    comment: str = "",
    client: Any = None,
) -> Deployment:
    """Make the spec of revision ``to_revision`` current again, as a new revision."""
    return deployment_store(client).rollback(
        name, to_revision, expected_revision=expected_revision, comment=comment
    )


class Router(Generic[T]):
    """Picks one of ``choices`` with probability weight / total, or by a sticky key."""

    def __init__(self, choices: Sequence[tuple[T, float]], rng: random.Random | None = None) -> None:
        picked = [(c, float(w)) for c, w in choices if w > 0]
        if not picked:
            raise InvalidInput("A router needs a choice with weight > 0.")
        self.choices = [c for c, _ in picked]
        self.cumulative: list[float] = []
        total = 0.0
        for _, w in picked:
            total += w
            self.cumulative.append(total)
        self.total = total
        self._random = (rng or random.Random()).random

    def choose(self, key: str | None = None) -> T:
        if len(self.choices) == 1:
            return self.choices[0]
        if key is not None:
            h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
            point = h / 2**64 * self.total
        else:
            point = self._random() * self.total
        i = bisect.bisect_right(self.cumulative, point)
        return self.choices[min(i, len(self.choices) - 1)]


__all__ = [
    "Deployment",
    "DeploymentRevision",
    "DeploymentSpec",
    "Route",
    "Router",
    "Shadow",
    "delete_deployment",
    "deployment_history",
    "deployment_store",
    "get_deployment",
    "list_deployments",
    "rollback_deployment",
    "set_deployment",
]
