"""``loopline runs``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import (
    Format,
    FormatOption,
    TrackingUri,
    client,
    fmt_duration,
    fmt_time,
    fmt_value,
    print_json,
)
from loopline.errors import NotFound

if TYPE_CHECKING:
    from loopline.tracking.client import Client

app = typer.Typer(help="List, inspect, compare and delete runs.", no_args_is_help=True)


def _experiment_ids(c: Client, experiment: str | None) -> list[str]:
    if experiment is None:
        return []
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        if experiment.isdigit():
            return [experiment]
        raise NotFound(f"No experiment named {experiment!r}.", hint="See `loopline experiments list`.")
    return [exp.experiment_id]


@app.command("list")
def list_(
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Experiment name or ID. Default: all.")
    ] = None,
    filter_string: Annotated[
        str | None, typer.Option("--filter", "-F", help='MLflow filter, e.g. "metrics.acc > 0.9".')
    ] = None,
    order_by: Annotated[
        list[str] | None, typer.Option("--order-by", "-o", help='e.g. "metrics.acc DESC"; repeatable.')
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", "-n", help="At most this many runs.")] = 50,
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """List runs, newest first (or as ordered), with their metrics.

    [bold]--format json[/]: a list of runs as MLflow's REST API returns them ([bold]info[/], [bold]data[/]
    with metrics, params and tags as key/value lists, [bold]inputs[/])."""
    from loopline.tracking.mlflow_json import run_to_json

    c = client(tracking_uri)
    runs = c.search_runs(_experiment_ids(c, experiment), filter_string, order_by, max_results)
    if fmt is Format.json:
        print_json([run_to_json(r) for r in runs])
        return
    keys = sorted({k for r in runs for k in r.data.metrics})[:8]
    table = Table()
    table.add_column("Run ID", no_wrap=True, min_width=32)  # whole, so it can be copied into `runs show`
    for header in ("Name", "Exp", "Status", "Started", "Duration", *keys):
        table.add_column(header)
    for r in runs:
        i = r.info
        m = r.data.metrics
        table.add_row(
            i.run_id,
            i.run_name,
            i.experiment_id,
            i.status.value,
            fmt_time(i.start_time),
            fmt_duration(i.start_time, i.end_time),
            *(fmt_value(m[k]) if k in m else "" for k in keys),
        )
    Console().print(table)


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="The run's ID.")],
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Show a run: info, params, latest metrics, tags and artifacts.

    [bold]--format json[/]: the run as [bold]runs list[/] gives it, plus [bold]artifacts[/] (path, is_dir,
    file_size)."""
    c = client(tracking_uri)
    r = c.get_run(run_id)
    if fmt is Format.json:
        from loopline.tracking.mlflow_json import run_to_json

        listed = [
            {"path": a.path, "is_dir": a.is_dir, "file_size": a.file_size} for a in c.list_artifacts(run_id)
        ]
        print_json({**run_to_json(r), "artifacts": listed})
        return
    con = Console()
    i = r.info
    con.print(
        f"[bold]{i.run_name}[/] ({i.run_id}) experiment {i.experiment_id} · {i.status.value} · "
        f"{fmt_time(i.start_time)} · {fmt_duration(i.start_time, i.end_time)}"
    )
    for title, items in (("Params", r.data.params), ("Metrics", r.data.metrics), ("Tags", r.data.tags)):
        table = Table("Key", "Value", title=title, title_justify="left")
        for k in sorted(items):
            table.add_row(k, fmt_value(items[k]))
        con.print(table)
    arts = c.list_artifacts(run_id)
    table = Table("Path", "Size", title="Artifacts", title_justify="left")
    for a in arts:
        table.add_row(a.path + ("/" if a.is_dir else ""), "" if a.is_dir else str(a.file_size))
    con.print(table)


@app.command("compare")
def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run IDs.")],
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Compare runs side by side: params and latest metrics; differing rows are highlighted.

    [bold]--format json[/]: the runs, as [bold]runs list[/] gives them."""
    c = client(tracking_uri)
    runs = [c.get_run(r) for r in run_ids]
    if fmt is Format.json:
        from loopline.tracking.mlflow_json import run_to_json

        print_json([run_to_json(r) for r in runs])
        return
    table = Table("", *(f"{r.info.run_name}\n{r.info.run_id[:8]}" for r in runs))
    for section in ("param", "metric"):
        rows = [dict(r.data.params) if section == "param" else r.data.metrics for r in runs]
        for key in sorted({k for row in rows for k in row}):
            values = [fmt_value(row[key]) if key in row else "-" for row in rows]
            style = "bold yellow" if len(set(values)) > 1 else None
            table.add_row(f"{section}s.{key}", *values, style=style)
    Console().print(table)


@app.command("delete")
def delete(
    run_ids: Annotated[list[str], typer.Argument(help="Run IDs to delete.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Mark runs deleted. `loopline gc` frees their storage for good."""
    c = client(tracking_uri)
    for r in run_ids:
        c.delete_run(r)
        typer.echo(f"Deleted run {r}")


@app.command("restore")
def restore(
    run_ids: Annotated[list[str], typer.Argument(help="Run IDs to restore.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Restore deleted runs (before `loopline gc` purged them)."""
    c = client(tracking_uri)
    for r in run_ids:
        c.restore_run(r)
        typer.echo(f"Restored run {r}")


@app.command("download")
def download(
    run_id: Annotated[str, typer.Argument(help="The run's ID.")],
    path: Annotated[str, typer.Argument(help="File or folder inside the run's artifacts ('' for all).")] = "",
    dst: Annotated[Path, typer.Option("--dst", "-d", help="Folder to download into.")] = Path("."),
    tracking_uri: TrackingUri = None,
) -> None:
    """Download a run's artifact file or folder (artifacts are stored by content, not browsable on disk)."""
    out = client(tracking_uri).download_artifacts(run_id, path, dst)
    typer.echo(f"Downloaded to {out}")
