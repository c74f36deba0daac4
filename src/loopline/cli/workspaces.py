"""``loopline workspaces``: list, create and show workspaces (tenants).

Every other command acts in one workspace: ``loopline --workspace NAME …`` (``-w``) or
``LOOPLINE_WORKSPACE`` picks it (default: ``default``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import Format, FormatOption, TrackingUri, fmt_time, print_json, settings

if TYPE_CHECKING:
    from loopline.tracking.workspaces import WorkspaceStore

app = typer.Typer(
    help="List, create and show workspaces. Objects of one workspace are invisible to every other; "
    "`loopline -w NAME …` (or LOOPLINE_WORKSPACE) picks the one a command acts in.",
    no_args_is_help=True,
)
NameArg = Annotated[str, typer.Argument(help="The workspace's name (up to 63 letters, digits, _ - .).")]


def _store(tracking_uri: str | None, *, create: bool = False) -> WorkspaceStore:
    from loopline.context import Context
    from loopline.tracking.workspaces import open_workspaces

    return open_workspaces(Context(settings(tracking_uri, create=create)))


@app.command("list")
def list_(tracking_uri: TrackingUri = None, fmt: FormatOption = Format.table) -> None:
    """List the workspaces, by name.

    [bold]--format json[/]: a list of {name, description, created_at}."""
    from loopline.tracking.workspaces import workspace_to_json

    items = _store(tracking_uri).list_workspaces()
    if fmt is Format.json:
        print_json([workspace_to_json(w) for w in items])
        return
    table = Table("Name", "Created", "Description")
    for w in items:
        table.add_row(w.name, fmt_time(w.created_at), w.description)
    Console().print(table)


@app.command("create")
def create(
    name: NameArg,
    description: Annotated[str, typer.Option("--description", "-d", help="What it is for.")] = "",
    tracking_uri: TrackingUri = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Create a workspace (with its Default experiment). Fails if it exists: a workspace is also made
    on first use, by the first command that names it."""
    from loopline.tracking.workspaces import workspace_to_json

    made = _store(tracking_uri, create=True).create_workspace(name, description)
    if fmt is Format.json:
        print_json(workspace_to_json(made))
        return
    typer.echo(f"Created workspace {made.name}")


@app.command("show")
def show(name: NameArg, tracking_uri: TrackingUri = None, fmt: FormatOption = Format.table) -> None:
    """Show a workspace and how many objects of each kind it holds.

    [bold]--format json[/]: {name, description, created_at, counts: {kind: n}}."""
    from loopline.tracking.workspaces import workspace_to_json

    w = _store(tracking_uri).get_workspace(name)
    if fmt is Format.json:
        print_json(workspace_to_json(w))
        return
    console = Console()
    console.print(f"[bold]{w.name}[/]  created {fmt_time(w.created_at)}")
    if w.description:
        console.print(w.description)
    table = Table("Kind", "Count")
    for kind, n in w.counts.items():
        table.add_row(kind.replace("_", " "), str(n))
    console.print(table)
