"""``loopline db``: schema migrations, and copying a store onto new backends."""

from __future__ import annotations

from typing import Annotated

import typer

from loopline.errors import InvalidInput

app = typer.Typer(help="Manage the metadata database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    store_uri: Annotated[
        str | None,
        typer.Argument(
            envvar="LOOPLINE_TRACKING_URI",
            help="Database URI. Default: ./.loopline/loopline.db",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Apply pending schema migrations. Loopline also does this when it opens a store; run it by hand
    to upgrade a shared PostgreSQL database at a time of your choosing."""
    from loopline.config import Settings
    from loopline.metadata.engine import HEAD_REVISION, create_store_engine

    settings = Settings.from_env(tracking_uri=store_uri)
    create_store_engine(settings.tracking_uri).dispose()
    typer.echo(f"{settings.tracking_uri} is at schema revision {HEAD_REVISION}.")


@app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="The store to copy: sqlite:///./.loopline/loopline.db")],
    dest: Annotated[str, typer.Argument(help="A new, empty database: postgresql+psycopg://user@host/db")],
    artifacts_from: Annotated[
        str | None,
        typer.Option(help="The source's artifact root. Default: artifacts/ beside a SQLite source."),
    ] = None,
    artifacts_to: Annotated[
        str | None,
        typer.Option(help="The destination's artifact root (s3://bucket/prefix or a folder)."),
    ] = None,
) -> None:
    """Move a store onto a shared server's backends: every row of SOURCE into the empty DEST with its
    ids (runs, models, datasets, lineage and events stay linked), and the artifact root's files to
    --artifacts-to. Then start [bold]loopline server --store-uri DEST --artifacts-uri …[/].

    Example: [bold]loopline db copy sqlite:///.loopline/loopline.db postgresql+psycopg://me@db/loopline
    --artifacts-to s3://ml/loopline[/]
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from loopline.artifacts.mirror import listing, mirror
    from loopline.config import Settings
    from loopline.metadata.copy import copy_store, count_rows
    from loopline.metadata.engine import create_store_engine

    src = Settings.from_env({}, tracking_uri=source, artifacts_uri=artifacts_from)
    dst = Settings.from_env({}, tracking_uri=dest)
    if src.tracking_uri == dst.tracking_uri:
        raise InvalidInput("SOURCE and DEST are the same database.")
    if artifacts_to is not None and artifacts_to == src.artifacts_uri:
        raise InvalidInput("--artifacts-to is the source's artifact root.")
    src_engine, dst_engine = (
        create_store_engine(src.tracking_uri, create=False),
        create_store_engine(dst.tracking_uri),
    )
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f}")) as bar:
        task = bar.add_task("metadata rows", total=sum(count_rows(src_engine).values()))
        report = copy_store(src_engine, dst_engine, lambda _table, n: bar.advance(task, n))
    typer.echo(f"Copied {report.total:,} rows in {len(report.rows)} tables into {dst.tracking_uri}.")
    if artifacts_to is None:
        typer.echo(
            f"Artifacts stay at {src.artifacts_uri}: give the server --artifacts-uri {src.artifacts_uri}"
        )
        return
    with Progress(TextColumn("artifacts"), BarColumn(), DownloadColumn()) as bar:
        task = bar.add_task("artifacts", total=sum(listing(src.artifacts_uri).values()))
        files = mirror(src.artifacts_uri, artifacts_to, lambda n: bar.advance(task, n))
    typer.echo(
        f"Copied {files.files:,} files ({files.bytes:,} bytes; {files.skipped:,} already there) "
        f"to {artifacts_to}."
    )
    typer.echo(f"Start: loopline server --store-uri '{dst.tracking_uri}' --artifacts-uri {artifacts_to}")
