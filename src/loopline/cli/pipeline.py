"""``loopline pipeline …``."""

from __future__ import annotations

import typer

app = typer.Typer(help="pipeline", no_args_is_help=True)


def sweep() -> None:
    """Run a parameter search as parallel tracked runs (registered as ``loopline sweep``)."""
