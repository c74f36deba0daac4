"""``loopline`` on the command line: one Typer sub-app per domain, one module each."""

from loopline.cli.main import app, main

__all__ = ["app", "main"]
