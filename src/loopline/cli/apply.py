"""``loopline apply``: make the deployments, monitors and policies that run match ``loopline.yaml``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli.common import Format, TrackingUri

if TYPE_CHECKING:
    from rich.console import Console

    from loopline.automation.apply import Plan


_SIGN = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "delete": ("-", "red"),
    "held": ("!", "magenta"),
}


def _value(v: Any) -> str:
    return "(none)" if v is None else v if isinstance(v, str) else json.dumps(v)


def render_plan(plan: Plan, console: Console) -> None:
    """The plan as terraform shows one: a line per object, and under it the fields that change."""
    for c in plan.changes:
        sign, style = _SIGN.get(c.action, (" ", "dim"))
        note = f"  ({c.note})" if c.note else ""
        console.print(
            f"{sign} {c.kind} {c.name}: {c.action}{note}", style=style, markup=False, highlight=False
        )
        if c.action == "unchanged":
            continue
        for f in c.fields:
            if c.action == "create":
                line = f"{f.path}: {_value(f.after)}"
            elif c.action == "delete":
                line = f"{f.path}: {_value(f.before)}"
            else:
                line = f"{f.path}: {_value(f.before)} -> {_value(f.after)}"
            console.print(f"    {line}", markup=False, highlight=False)
    held = f", {plan.count('held')} held" if plan.count("held") else ""
    console.print(
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{plan.count('delete')} to delete, {plan.count('unchanged')} unchanged{held}.",
        markup=False,
        highlight=False,
    )


def apply(
    file: Annotated[Path, typer.Argument(help="The file that declares them.")] = Path("loopline.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "--plan", help="Show what would change; change nothing.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Change nothing; exit 1 when what runs differs from the file (drift, for CI)."
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also delete the objects an earlier apply made that the file no longer declares "
            "(never ones made by hand).",
        ),
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table (for people) or json.")] = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Make the deployments, monitors and policies that run match FILE, and show what changed.

    Prints a plan (create / update / delete per object, with the fields that differ), then applies
    it: deployments, then monitors, then policies. Applying the same file again changes nothing. A
    file with a problem gets every problem with its line, and nothing is applied. Objects the
    file no longer declares are listed; --prune deletes them if apply made them.

    Examples:
      [bold]loopline apply[/]                      (./loopline.yaml)
      [bold]loopline apply deploy/loopline.yaml --dry-run[/]
      [bold]loopline apply --check[/]              (CI: exit 1 on drift)
    """
    from rich.console import Console
    from rich.markup import escape

    from loopline.automation import apply as service
    from loopline.automation.spec import InvalidSpec, load_spec
    from loopline.cli.common import client

    only_look = dry_run or check
    try:
        spec = load_spec(file)
        c = client(tracking_uri, create=not only_look)
        run = service.plan if only_look else service.apply
        plan = run(spec, prune=prune, client=c)
    except InvalidSpec as e:  # one line per problem, unwrapped: `file:line:` stays whole for editors
        err = Console(stderr=True, soft_wrap=True)
        err.print(f"[bold red]Error:[/] {escape(e.message)}", highlight=False)
        err.print(f"[dim]Hint:[/] {escape(e.hint)}", highlight=False)
        raise typer.Exit(e.exit_code) from None  # 2: bad input, as everywhere
    if fmt is Format.json:
        typer.echo(
            json.dumps({**service.plan_to_json(plan), "applied": not only_look}, indent=2, default=str)
        )
    else:
        console = Console(soft_wrap=True)
        render_plan(plan, console)
        if check:
            console.print(
                f"Drift: what runs differs from {file.name}."
                if plan.drift
                else f"No drift: {file.name} matches.",
                markup=False,
                highlight=False,
            )
        elif dry_run:
            console.print(f"Nothing was changed (--dry-run). To apply: loopline apply {file}", markup=False)
        elif not plan.writes:
            console.print(f"No changes: what runs matches {file.name}.", markup=False, highlight=False)
        else:
            made = {a: sum(1 for w in plan.writes if w.action == a) for a in ("create", "update", "delete")}
            console.print(
                f"Applied: {made['create']} created, {made['update']} updated, {made['delete']} deleted.",
                markup=False,
                highlight=False,
            )
    if check and plan.drift:
        raise typer.Exit(1)
