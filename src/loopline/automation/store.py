"""What an automation store does, whichever backend does it, and which one a context gets.

It holds the loop's own state, so a controller that restarts resumes and two controllers never act
twice: policies (declared as code), rollouts (one per candidate), triggers waiting to be debounced,
and leases (which controller acts on which deployment, until when). ``SqlAutomationStore`` keeps
them in the metadata database; ``RestAutomationStore`` asks a ``loopline server`` to.

Every write appends its ``loop.*`` event (``automation/events.py``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from loopline.automation.types import Policy, Rollout, RolloutState

if TYPE_CHECKING:
    from loopline.context import Context


class AutomationStore(Protocol):
    """Policies, rollouts, pending triggers and leases, scoped to one workspace."""

    # ---- policies ----------------------------------------------------------------------------
    def put_policy(self, policy: Policy) -> tuple[Policy, bool]:
        """Create or replace ``policy.name``; returns it and whether anything changed (writing the
        same policy again changes nothing and appends no event)."""
        ...

    def get_policy(self, name: str) -> Policy:
        """``NotFound`` when there is none."""
        ...

    def list_policies(self) -> list[Policy]: ...
    def delete_policy(self, name: str) -> None: ...

    # ---- triggers ------------------------------------------------------------------------------
    def event_cursor(self) -> int:
        """The id of the last event the controller has looked at (0 at first)."""
        ...

    def set_event_cursor(self, event_id: int) -> None: ...

    def add_trigger(self, policy: str, kind: str, *, source_event: int | None, change_ms: int) -> None:
        """Queue a reason to retrain ``policy`` (a ``loop.trigger`` event). Triggers queued while a
        rollout of the policy is training or within its ``debounce_s`` join one retraining."""
        ...

    def take_triggers(self, policy: str) -> list[Mapping[str, Any]]:
        """Remove and return the queued triggers of ``policy`` (kind, source_event, change_ms)."""
        ...

    # ---- rollouts ------------------------------------------------------------------------------
    def create_rollout(
        self, policy: Policy, *, trigger: Mapping[str, Any], base_revision: int, champion: str
    ) -> Rollout:
        """A new rollout in state ``training`` (a ``loop.retrain_start`` event)."""
        ...

    def get_rollout(self, rollout_id: int) -> Rollout: ...

    def list_rollouts(
        self, *, policy: str | None = None, active: bool | None = None, limit: int = 100
    ) -> list[Rollout]:
        """Newest first; ``active`` True: only those not in a terminal state."""
        ...

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
        """Move a rollout on (``changes``: state, step, candidate, verdict, reason, …) only if it is
        still in ``expected_state`` at ``expected_step`` — a compare-and-set, so two controllers or a
        retried step act once (``Conflict`` otherwise) — appending ``event`` with ``payload``."""
        ...

    # ---- leases --------------------------------------------------------------------------------
    def acquire_lease(self, key: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease ``key`` (e.g. ``deployments:/churn-prod``) for ``holder`` until
        now + ``ttl_s``; False while another holder's lease has not expired."""
        ...

    def release_lease(self, key: str, holder: str) -> None: ...


def open_automation_store(context: Context) -> AutomationStore:
    """The automation store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        from loopline.automation.rest_store import RestAutomationStore

        return RestAutomationStore(context.http)
    from loopline.automation.sql_store import SqlAutomationStore

    return SqlAutomationStore(context)
