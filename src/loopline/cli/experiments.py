"""``loopline experiments``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import Format, FormatOption, TrackingUri, client, fmt_time, print_json

if TYPE_CHECKING:
    from loopline.tracking.client import Client

app = typer.Typer(help="List, create, rename, delete and restore experiments.", no_args_is_help=True)


@app.command("list")
def list_(
    tracking_uri: TrackingUri = None,
    all_: Annotated[bool, typer.Option("--all", help="Include deleted experiments.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """List experiments, newest first.

    [bold]--format json[/]: a list of experiments as MLflow's REST API returns them."""
    c = client(tracking_uri)
    exps = c.search_experiments(view_type="ALL" if all_ else "ACTIVE_ONLY")
    if fmt is Format.json:
        from loopline.tracking.mlflow_json import experiment_to_json

        print_json([experiment_to_json(e) for e in exps])
        return
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
    typer.echo(client(tracking_uri, create=True).create_experiment(name))


def _experiment_id(c: Client, name_or_id: str) -> str:
    from loopline.errors import NotFound

    for exp in c.search_experiments(view_type="ALL"):
        if name_or_id in (exp.name, exp.experiment_id):
            return str(exp.experiment_id)
    raise NotFound(f"No experiment named {name_or_id!r}.", hint="See `loopline experiments list --all`.")


@app.command("delete")
def delete(
    experiment: Annotated[str, typer.Argument(help="Experiment name or ID.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Mark an experiment and its runs deleted. `loopline gc` frees their storage; `restore` undoes it."""
    c = client(tracking_uri)
    c.delete_experiment(_experiment_id(c, experiment))
    typer.echo(f"Deleted experiment {experiment}")


@app.command("restore")
def restore(
    experiment: Annotated[str, typer.Argument(help="Experiment name or ID.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Restore a deleted experiment and its runs (before `loopline gc` purged them)."""
    c = client(tracking_uri)
    c.restore_experiment(_experiment_id(c, experiment))
    typer.echo(f"Restored experiment {experiment}")


@app.command("rename")
def rename(
    experiment: Annotated[str, typer.Argument(help="Experiment name or ID.")],
    new_name: Annotated[str, typer.Argument(help="The new name.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Rename an experiment."""
    c = client(tracking_uri)
    c.rename_experiment(_experiment_id(c, experiment), new_name)
    typer.echo(f"Renamed experiment {experiment} to {new_name}")
