"""``loopline gc``."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer

from loopline.cli.common import ArtifactsUri
from loopline.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> int:
    """'30d', '12h', '0s' → milliseconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not m:
        raise InvalidInput(f"Invalid age {text!r}.", hint="Use a number and a unit: 30s, 15m, 12h or 7d.")
    return int(float(m[1]) * _UNITS[m[2]] * 1000)


def gc(
    older_than: Annotated[
        str, typer.Option(help="Only runs deleted at least this long ago (30s, 15m, 12h, 7d).")
    ] = "0s",
    run_ids: Annotated[
        list[str] | None, typer.Option("--run-id", help="Only these runs (repeatable).")
    ] = None,
    grace: Annotated[
        str, typer.Option(help="Keep unreferenced blobs younger than this (protects writes in flight).")
    ] = "1h",
    store_uri: Annotated[
        str | None,
        typer.Option(
            "--store-uri",
            "--backend-store-uri",
            envvar="LOOPLINE_TRACKING_URI",
            help="Metadata database. Default: ./.loopline",
            show_default=False,
        ),
    ] = None,
    artifacts_uri: ArtifactsUri = None,
) -> None:
    """Permanently remove deleted runs (with their metrics, params, tags and artifacts) and free the
    storage of every blob no live run still uses. Blobs shared with live runs stay."""
    from rich.progress import Progress

    from loopline.artifacts.blobs import BlobArtifactStore
    from loopline.artifacts.workspaces import workspace_root
    from loopline.cli.common import settings as settings_for
    from loopline.metadata.engine import create_store_engine
    from loopline.tracking.gc import collect_garbage
    from loopline.tracking.sql_store import SqlTrackingStore

    settings = settings_for(store_uri, artifacts_uri=artifacts_uri)
    if settings.is_remote:
        raise InvalidInput(
            "gc works on the database and artifact root directly, not through a server.",
            hint="Pass --store-uri and --artifacts-uri (as for `loopline server`).",
        )
    store = SqlTrackingStore(
        create_store_engine(settings.tracking_uri, create=False),
        workspace=settings.workspace,
        actor=settings.user,
    )
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("Purging deleted runs", total=None)
        report = collect_garbage(
            store,
            BlobArtifactStore(workspace_root(settings.artifacts_uri, settings.workspace)),
            older_than_ms=parse_age(older_than),
            grace_seconds=parse_age(grace) / 1000,
            run_ids=run_ids,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    typer.echo(
        f"Purged {report.runs_purged} runs and {report.artifact_files_removed} artifact files; "
        f"removed {report.blobs_removed} blobs, freeing {report.bytes_freed:,} bytes."
    )
