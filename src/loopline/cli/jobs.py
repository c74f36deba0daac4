"""``loopline jobs …``: the long requests a server runs as jobs, and the progress bar of the commands
that start them (``features materialize``, ``monitor run``…).

Those commands pass ``following(...)`` as their call's ``progress``: a bar on stderr while the work
runs, here or on the server; with ``--no-wait`` the command ends as soon as the server has the work
as a job, printing the job id and how to follow it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli.common import Format, FormatOption, TrackingUri, fmt_duration, fmt_time, settings
from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from loopline.protocol.http import RestClient
    from loopline.protocol.jobs import Follow, Job, Progress

app = typer.Typer(
    help="Jobs: the long requests (a materialisation, a monitor run…) a [bold]loopline server[/] "
    "answered with a job id instead of holding the request open. They go on when the client leaves.\n\n"
    "Example: [bold]loopline features materialize-incremental now --no-wait[/] prints a job id; "
    "[bold]loopline jobs wait ID[/] follows it to its end.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

NoWait = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="Through a server: return as soon as it runs the work as a job, printing the job id "
        "(follow it with `loopline jobs wait ID`). Embedded, the work runs here anyway.",
    ),
]


JobId = Annotated[str, typer.Argument(help="The job id a command or a 202 answer printed.")]


class _Detached(Exception):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


@contextlib.contextmanager
def following(
    label: str, *, no_wait: bool = False, remote: bool = True, started: str = "Started"
) -> Iterator[Follow]:
    """The ``progress`` to pass to long work: a rich bar on stderr (gone when done).

    With ``no_wait`` the server is asked to answer 202 at once, and the first job id it gives ends
    the command (exit 0) with "``started`` as job ID" and how to follow it.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress as Bar, SpinnerColumn, TextColumn, TimeElapsedColumn

    from loopline.protocol.jobs import Follow

    err = Console(stderr=True)
    if no_wait and not remote:
        err.print("--no-wait: no server to hand the work to (the tracking URI is a database); it runs here.")
    bar = Bar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("[dim]{task.fields[message]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task(label, total=None, count="", message="")
    seen: list[str] = []  # the job id, once the server gave one

    def update(p: Progress) -> None:
        if p.job_id is not None and not seen:
            seen.append(p.job_id)
        if no_wait and p.job_id is not None:
            raise _Detached(p.job_id)
        count = f"{p.done:,}" if p.total is None else f"{p.done:,}/{p.total:,}"
        bar.update(task, completed=p.done, total=p.total, count=count, message=p.message)

    try:
        with bar:
            yield Follow(update, wait=0 if no_wait else None)
    except _Detached as d:
        typer.echo(f"{started} as job {d.job_id}.")
        typer.echo(f"Follow it with `loopline jobs wait {d.job_id}` (or `loopline jobs show {d.job_id}`).")
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        if not seen:
            raise
        err.print(f"Stopped waiting; job {seen[0]} goes on on the server: `loopline jobs wait {seen[0]}`.")
        raise typer.Exit(130) from None


def _client(tracking_uri: str | None) -> RestClient:
    from loopline.context import Context

    ctx = Context(settings(tracking_uri))
    if not ctx.is_remote:
        raise InvalidInput(
            f"Jobs are a server's, and {ctx.settings.tracking_uri} is a database: embedded work runs "
            "in the command that starts it.",
            hint="Point LOOPLINE_TRACKING_URI (or --tracking-uri) at the server that gave the job id.",
        )
    return ctx.http


def _json(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": {"done": job.progress.done, "total": job.progress.total, "message": job.progress.message},
        "result": job.result,
        "error": job.error,
        "actor": job.actor,
        "created_ms": job.created_ms,
        "started_ms": job.started_ms,
        "finished_ms": job.finished_ms,
    }


_STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "queued": "dim"}


def _print(job: Job) -> None:
    from rich.console import Console

    con = Console()
    p = job.progress
    count = f"{p.done:,}" if p.total is None else f"{p.done:,}/{p.total:,}"
    con.print(f"[bold]{job.id}[/]  {job.kind}  [{_STYLE[job.status]}]{job.status}[/]", highlight=False)
    con.print(f"progress  {count}  {p.message}", highlight=False)
    con.print(
        f"by {job.actor}, created {fmt_time(job.created_ms)}, "
        f"ran {fmt_duration(job.started_ms, job.finished_ms)}",
        highlight=False,
    )
    if job.error:
        con.print(f"[red]{job.error.get('error_code')}[/]: {job.error.get('message')}", highlight=False)
    elif job.result is not None:
        con.print_json(json.dumps(job.result, default=str))


@app.command("show")
def show(job_id: JobId, format: FormatOption = Format.table, tracking_uri: TrackingUri = None) -> None:
    """Show a job: its status, progress, and result or error (a dead server's job reads as failed)."""
    from loopline.protocol.jobs import get_job

    job = get_job(_client(tracking_uri), job_id)
    if format is Format.json:
        typer.echo(json.dumps(_json(job), default=str))
    else:
        _print(job)


@app.command("wait")
def wait(job_id: JobId, format: FormatOption = Format.table, tracking_uri: TrackingUri = None) -> None:
    """Wait for a job with a progress bar, then print its result; a job that failed exits 1 with
    its error, as the command that started it would have."""
    from loopline.protocol.jobs import get_job, wait_job

    client = _client(tracking_uri)
    with following(get_job(client, job_id).kind) as progress:
        job = wait_job(client, job_id, progress=progress)
    result = job.outcome()  # raises the job's error
    if format is Format.json:
        typer.echo(json.dumps(result, default=str))
    else:
        _print(job)


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Option("--kind", help="Only jobs of this kind.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="queued, running, succeeded or failed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 20,
    format: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """The workspace's recent jobs, newest first (kept for 7 days)."""
    from rich.console import Console
    from rich.table import Table

    from loopline.protocol.jobs import list_jobs

    found = list_jobs(_client(tracking_uri), kind=kind, status=status, limit=limit)
    if format is Format.json:
        typer.echo(json.dumps([_json(j) for j in found], default=str))
        return
    t = Table("id", "kind", "status", "progress", "created", "took")
    for j in found:
        p = j.progress
        t.add_row(
            j.id,
            j.kind,
            f"[{_STYLE[j.status]}]{j.status}[/]",
            f"{p.done:,}" if p.total is None else f"{p.done:,}/{p.total:,}",
            fmt_time(j.created_ms),
            fmt_duration(j.started_ms, j.finished_ms),
        )
    Console().print(t)
