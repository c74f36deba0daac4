"""The root command. Errors Loopline raises on purpose print as message + hint, no traceback."""

from __future__ import annotations

import sys

import typer

from loopline._version import __version__
from loopline.cli import (
    data,
    db,
    deploy,
    experiments,
    features,
    gc,
    lineage,
    models,
    monitor,
    pipeline,
    runs,
    serve,
    server,
)
from loopline.errors import LooplineError

app = typer.Typer(
    name="loopline",
    help="Loopline: track experiments, version data, train, register, serve and monitor models "
    "as one closed loop.\n\nConfiguration comes from LOOPLINE_* environment variables "
    "(LOOPLINE_TRACKING_URI, LOOPLINE_ARTIFACTS_URI, …) or the options of each command.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.command("server")(server.server)
app.command("gc")(gc.gc)
app.command("serve")(serve.serve)
app.command("sweep")(pipeline.sweep)
app.command("lineage")(lineage.lineage)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(db.app, name="db")
app.add_typer(models.app, name="models")
app.add_typer(deploy.app, name="deploy")
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(monitor.app, name="monitor")


@app.command("version")
def version() -> None:
    """Print Loopline's version."""
    typer.echo(__version__)


def main() -> None:
    from rich.console import Console

    try:
        app()  # standalone mode: usage errors print themselves and exit with 2
    except LooplineError as e:
        err = Console(stderr=True)
        err.print(f"[bold red]Error:[/] {e.message}", highlight=False)
        if e.hint:
            err.print(f"[dim]Hint:[/] {e.hint}", highlight=False)
        sys.exit(1)
