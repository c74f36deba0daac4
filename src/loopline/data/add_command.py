"""``loopline data add``: the command itself, shared by the Typer command and the lean entry point.

``loopline.cli.main`` answers ``loopline data add …`` here before importing Typer and the other
command modules (as it does ``data status``): the command runs in loops and scripts, and its
start-up used to cost more than hashing a 1 GiB file. On an existing SQLite store at the current
schema the version row is written with sqlite3 (:mod:`loopline.data.sqlite_versions`), so
SQLAlchemy is not imported either; anything else goes through the full SQL store.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from loopline.errors import LooplineError


def format_size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def run(
    path: Path,
    name: str,
    *,
    description: str = "",
    alias: str | None = None,
    link: bool = False,
    tracking_uri: str | None = None,
) -> None:
    """Version ``path`` as ``name`` and print what happened (raises ``LooplineError``)."""
    from loopline.config import Settings
    from loopline.data.client import DataClient
    from loopline.data.sqlite_versions import SqliteVersions

    settings = Settings.from_env(tracking_uri=tracking_uri)
    versions = SqliteVersions.open(settings.tracking_uri, workspace=settings.workspace, actor=settings.user)
    client = DataClient(settings, versions=versions)
    try:
        with _progress(f"hashing {path.name}", path) as advance:
            result = client.add(
                path, name, description=description, link="link" if link else "auto", progress=advance
            )
        v = result.version
        if alias:
            client.set_alias(v.name, alias, v.version)
    finally:
        client.cache.close()
        if versions is not None:
            versions.close()
    if result.created:
        how = ", ".join(f"{n} by {k}" for k, n in sorted(result.stored_as.items())) or "all already stored"
        _say(
            f"Created [bold]{v.uri}[/] ({v.num_files} files, {format_size(v.size_bytes)}; new blobs: {how})."
        )
    else:
        _say(f"Unchanged: [bold]{v.uri}[/] already holds this content.")
    if v.num_rows is not None:
        _say(f"{v.num_rows:,} rows x {len(v.schema)} columns.")


def _say(markup: str) -> None:
    """Rich output on a terminal; plain text otherwise, without importing rich (~25 ms)."""
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(markup)
    else:
        print(markup.replace("[bold]", "").replace("[/]", ""))


@contextmanager
def _progress(description: str, path: Path) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal; nothing otherwise (a bar in a log is noise)."""
    if not sys.stderr.isatty():
        yield None
        return
    from loopline.data.hashing import walk

    try:
        total: int | None = sum(f.size for f in walk(path))
    except LooplineError:
        total = None  # the add reports the problem
    with byte_progress(description, total) as advance:
        yield advance


@contextmanager
def byte_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A transient bar of bytes done (of ``total``, if known) on stderr; yields ``advance(n)``."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        # Called per file, from several threads: batch the bytes so 10,000 small files make a few
        # dozen redraw requests, not 10,000 (rich redraws 10 times a second anyway).
        lock = threading.Lock()
        pending = [0, time.monotonic()]  # bytes not yet shown, when they were last shown

        def advance(n: int) -> None:
            with lock:
                pending[0] += n
                now = time.monotonic()
                if now - pending[1] >= 0.05:
                    bar.advance(task, pending[0])
                    pending[:] = [0, now]

        try:
            yield advance
        finally:
            bar.advance(task, pending[0])


class _Unparsed(Exception):
    """Arguments the lean parser does not take: the full CLI handles (and explains) them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Unparsed(message)


def main(argv: Sequence[str]) -> int | None:
    """Run ``loopline data add ARGV``; None when the arguments are for the full CLI to handle."""
    parser = _Parser(prog="loopline data add", add_help=False, allow_abbrev=False)
    parser.add_argument("path")
    parser.add_argument("--name", "-n", required=True)
    parser.add_argument("--description", "-d", default="")
    parser.add_argument("--alias", "-a", default=None)
    parser.add_argument("--link", action="store_true")
    parser.add_argument("--tracking-uri", "-t", default=None)
    try:
        args = parser.parse_args(list(argv))
    except _Unparsed:
        return None
    try:
        run(
            Path(args.path),
            args.name,
            description=args.description,
            alias=args.alias,
            link=args.link,
            tracking_uri=args.tracking_uri,  # unset: Settings reads LOOPLINE_TRACKING_URI, as Typer would
        )
    except LooplineError as e:
        _print_error(e)
        return 1
    return 0


def _print_error(e: LooplineError) -> None:
    from rich.console import Console

    err: Any = Console(stderr=True)
    err.print(f"[bold red]Error:[/] {e.message}", highlight=False)
    if e.hint:
        err.print(f"[dim]Hint:[/] {e.hint}", highlight=False)


__all__ = ["format_size", "main", "run"]
