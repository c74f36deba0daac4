"""``AutomationStore`` over ``loopline server``'s REST API (``loopline.server.automation_api``).

The server answers with its SQL store and runs the controller next to its database, so a policy
declared or a retraining asked for through it is acted on there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopline.automation.types import (
    Policy,
    Rollout,
    policy_from_json,
    policy_to_json,
    rollout_from_json,
)
from loopline.names import check_name
from loopline.protocol.http import RestClient

API = "/api/2.0/loopline/automation"


class RestAutomationStore:
    """Policies and rollouts of the server's workspace, through its REST API."""

    def __init__(self, client: RestClient) -> None:
        self.rest = client  # the context's: one connection pool for every domain

    def put_policy(self, policy: Policy) -> tuple[Policy, bool]:
        body = self.rest.call("POST", f"{API}/policies/put", {"policy": policy_to_json(policy)})
        return policy_from_json(body["policy"]), bool(body["changed"])

    def get_policy(self, name: str) -> Policy:
        body = self.rest.call("GET", f"{API}/policies/get", {"name": check_name("policy", name)})
        return policy_from_json(body["policy"])

    def list_policies(self) -> list[Policy]:
        return [policy_from_json(p) for p in self.rest.call("GET", f"{API}/policies/list", {})["policies"]]

    def delete_policy(self, name: str) -> None:
        self.rest.call("POST", f"{API}/policies/delete", {"name": check_name("policy", name)})

    def record_apply(self, source: str, changes: Mapping[str, Any]) -> None:
        self.rest.call("POST", f"{API}/applies/record", {"source": source, "changes": dict(changes)})

    def add_trigger(self, policy: str, kind: str, *, source_event: int | None, change_ms: int) -> None:
        body = {"policy": policy, "kind": kind, "source_event": source_event, "change_ms": change_ms}
        self.rest.call("POST", f"{API}/triggers/add", body)

    def get_rollout(self, rollout_id: int) -> Rollout:
        return rollout_from_json(self.rest.call("GET", f"{API}/rollouts/get", {"id": rollout_id})["rollout"])

    def list_rollouts(
        self, *, policy: str | None = None, active: bool | None = None, limit: int = 100
    ) -> list[Rollout]:
        query = {"policy": policy, "active": None if active is None else str(active).lower(), "limit": limit}
        body = self.rest.call(
            "GET", f"{API}/rollouts/list", {k: v for k, v in query.items() if v is not None}
        )
        return [rollout_from_json(r) for r in body["rollouts"]]

    def approve(self, rollout_id: int, reason: str) -> Rollout:
        body = self.rest.call("POST", f"{API}/rollouts/approve", {"id": rollout_id, "reason": reason})
        return rollout_from_json(body["rollout"])
