"""``loopline monitor …``."""

from __future__ import annotations

import typer

app = typer.Typer(help="monitor", no_args_is_help=True)
