"""``loopline experiments``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import TrackingUri, client, fmt_time

app = typer.Typer(help="List and create experiments.", no_args_is_help=True)


@app.command("list")
def list_(
    tracking_uri: TrackingUri = None,
    all_: Annotated[bool, typer.Option("--all", help="Include deleted experiments.")] = False,
) -> None:
    """List experiments, newest first."""
    c = client(tracking_uri)
    exps = c.search_experiments(view_type="ALL" if all_ else "ACTIVE_ONLY")  # type: ignore[attr-defined]
    table = Table("ID", "Name", "Created", "Stage", "Artifact location")
    for e in exps:
        table.add_row(
            e.experiment_id, e.name, fmt_time(e.creation_time), e.lifecycle_stage.value, e.artifact_location
        )
    Console().print(table)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Experiment name.")], tracking_uri: TrackingUri = None
) -> None:
    """Create an experiment and print its ID."""
    typer.echo(client(tracking_uri).create_experiment(name))  # type: ignore[attr-defined]
