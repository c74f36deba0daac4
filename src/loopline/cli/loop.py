"""``loopline policies``, ``rollouts``, ``retrain``, ``approve`` and ``controller``: the closed loop.

Policies are declared with ``loopline apply loopline.yaml``; these commands show them, ask for a
retraining by hand, follow and approve rollouts, and run the controller outside a server.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from loopline.cli.common import Format, TrackingUri, fmt_time

if TYPE_CHECKING:
    from loopline.automation.store import AutomationStore
    from loopline.automation.types import Rollout


FormatOption = Annotated[
    Format, typer.Option("--format", "-f", help="table (for people) or json (for scripts).")
]


def _store(tracking_uri: str | None) -> AutomationStore:
    from loopline.automation.store import open_automation_store
    from loopline.cli.common import client

    return open_automation_store(client(tracking_uri).context)


def _print_rollouts(rollouts: list[Rollout], fmt: Format) -> None:
    from rich.console import Console
    from rich.table import Table

    from loopline.automation.types import rollout_to_json

    if fmt is Format.json:
        typer.echo(json.dumps([rollout_to_json(r) for r in rollouts], indent=2))
        return
    table = Table("id", "policy", "state", "step", "candidate", "champion", "started", "reason")
    for r in rollouts:
        step = "-" if r.step < 0 else str(r.step)
        table.add_row(
            str(r.id),
            r.policy,
            r.state.value,
            step,
            r.candidate,
            r.champion,
            fmt_time(r.created_ms),
            r.reason,
        )
    Console().print(table)


def policies(fmt: FormatOption = Format.table, tracking_uri: TrackingUri = None) -> None:
    """List the loop's policies: what triggers retraining, which pipeline trains, which deployment."""
    from rich.console import Console
    from rich.table import Table

    from loopline.automation.types import policy_to_json

    found = _store(tracking_uri).list_policies()
    if fmt is Format.json:
        typer.echo(json.dumps([policy_to_json(p) for p in found], indent=2))
        return
    table = Table("policy", "model", "deployment", "pipeline", "triggers", "steps", "approval")
    for p in found:
        triggers = ", ".join(f"{t.kind}:{t.monitor or t.dataset or t.cron}" for t in p.triggers) or "-"
        steps = " → ".join(f"{s.stage} {s.weight:g}%" for s in p.rollout) or "promote"
        table.add_row(
            p.name, p.model, p.deployment, p.pipeline, triggers, steps, "yes" if p.approval else "no"
        )
    Console().print(table)


def rollouts(
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="Only this policy's.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only those in flight.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """List rollouts, newest first: each candidate's way from retraining through the gate, shadow
    and canary steps to champion, or why it stopped."""
    found = _store(tracking_uri).list_rollouts(policy=policy, active=True if active else None, limit=limit)
    _print_rollouts(found, fmt)


def retrain(
    policy: Annotated[str, typer.Argument(help="The policy whose pipeline should retrain.")],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait", help="Follow the rollout until it ends (--no-wait: queue and exit)."
        ),
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to follow it before giving up (exit 1).")] = 3600,
    tracking_uri: TrackingUri = None,
) -> None:
    """Ask for a retraining by hand: queued as a trigger that the controller (inside `loopline server`,
    or `loopline controller`) takes. On the embedded default, with no controller running, this
    command runs one until the rollout ends.

    Example: [bold]loopline retrain churn[/]
    """
    from loopline.automation.controller import Controller
    from loopline.automation.store import open_automation_store
    from loopline.cli.common import client
    from loopline.clock import now_ms

    context = client(tracking_uri).context
    store = open_automation_store(context)
    asked = now_ms()
    store.add_trigger(policy, "manual", source_event=None, change_ms=asked)
    typer.echo(f"Retraining of {policy} queued.")
    if not wait:
        return
    controller = None if context.is_remote else Controller(context)
    deadline = time.monotonic() + timeout
    seen: tuple[str, int] | None = None
    try:
        while time.monotonic() < deadline:
            if controller is not None:
                for action in controller.tick():
                    typer.echo(f"  {action.uri}: {action.what}")
            mine = [r for r in store.list_rollouts(policy=policy, limit=5) if r.created_ms >= asked - 1000]
            if mine:
                r = mine[-1]
                if controller is None and (r.state.value, r.step) != seen:
                    seen = (r.state.value, r.step)
                    typer.echo(f"  {r.uri}: {r.state.value}" + (f" step {r.step}" if r.step >= 0 else ""))
                if r.state.terminal:
                    typer.echo(f"{r.uri} {r.state.value}: {r.reason or r.candidate}")
                    raise typer.Exit(0 if r.state.value == "promoted" else 1)
            time.sleep(0.5)
    finally:
        if controller is not None:
            controller.close()
    typer.echo(f"The retraining of {policy} did not end within {timeout:g} s.", err=True)
    raise typer.Exit(1)


def approve(
    rollout: Annotated[
        int, typer.Argument(help="The rollout waiting for approval (loopline rollouts --active).")
    ],
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why: kept in the audit trail.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Approve a rollout that waits for a maintainer: the controller promotes it at its next tick."""
    done = _store(tracking_uri).approve(rollout, reason)
    typer.echo(f"Approved {done.uri}: it is promoted at the controller's next tick.")


def controller(
    interval: Annotated[float, typer.Option(help="Seconds between ticks.")] = 1.0,
    lease: Annotated[
        float,
        typer.Option(help="Seconds a dead controller's deployments stay locked before another takes over."),
    ] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Run the loop's controller next to the database (`loopline server` runs one already): it turns
    alerts and new data into retrainings, gates candidates and moves rollouts. Several may run at
    once: leases in the database keep them from acting twice."""
    from loopline.automation.controller import Controller
    from loopline.cli.common import client

    ctl = Controller(client(tracking_uri).context, lease_s=lease)
    if once:
        try:
            for action in ctl.tick():
                typer.echo(f"{action.uri}: {action.what}")
        finally:
            ctl.close()
        return
    stop = threading.Event()
    typer.echo(f"Controller {ctl.holder} running (Ctrl-C to stop).")
    try:
        ctl.run(stop, interval)
    except KeyboardInterrupt:
        stop.set()
