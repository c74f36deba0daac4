"""What an automation store does, whichever backend does it, and which one a context gets.

It holds the loop's own state: policies (declared as code), rollouts (one per candidate) and
triggers waiting to be debounced. This Protocol is what clients do (declare policies, ask for a
retraining, read and approve rollouts); ``SqlAutomationStore`` keeps them in the metadata database
and adds what only the controller does, next to the database (read events, take triggers, move
rollouts, hold leases); ``RestAutomationStore`` asks a ``loopline server`` to.

Every write appends its ``loop.*`` event (``automation/events.py``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from loopline.automation.types import Policy, Rollout

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

    def record_apply(self, source: str, changes: Mapping[str, Any]) -> None:
        """The ``loop.apply`` event of one ``loopline apply`` of ``source`` (a file name), on
        ``apply:/<source>``; ``changes``: the URIs it created, changed and deleted."""
        ...

    # ---- triggers and rollouts ---------------------------------------------------------------
    def add_trigger(self, policy: str, kind: str, *, source_event: int | None, change_ms: int) -> None:
        """Queue a reason to retrain ``policy`` (a ``loop.trigger`` event; ``loopline retrain`` queues
        a ``manual`` one). Triggers queued while a rollout of the policy is training or within its
        ``debounce_s`` join one retraining."""
        ...

    def get_rollout(self, rollout_id: int) -> Rollout: ...

    def list_rollouts(
        self, *, policy: str | None = None, active: bool | None = None, limit: int = 100
    ) -> list[Rollout]:
        """Newest first; ``active`` True: only those not in a terminal state."""
        ...

    def approve(self, rollout_id: int, reason: str) -> Rollout:
        """A maintainer's approval of a rollout waiting for it (``Conflict`` otherwise): the
        controller promotes it at its next tick."""
        ...


def open_automation_store(context: Context) -> AutomationStore:
    """The automation store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        from loopline.automation.rest_store import RestAutomationStore

        return RestAutomationStore(context.http)
    from loopline.automation.sql_store import SqlAutomationStore

    return SqlAutomationStore(context)
