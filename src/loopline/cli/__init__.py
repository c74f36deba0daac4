"""``loopline`` on the command line: one Typer sub-app per domain, one module each.

``main`` answers ``loopline data status`` before importing Typer and the command modules: it
is the command scripts run in loops, and it needs none of them (see ``loopline.data.status``).
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["data", "status"] and not {"--help", "-h"} & set(argv):
        from loopline.data.status import main as status

        sys.exit(status(argv[2:]))
    from loopline.cli.main import main as typer_main

    typer_main()


def __getattr__(name: str) -> Any:
    if name == "app":
        from loopline.cli.main import app

        return app
    raise AttributeError(name)


__all__ = ["app", "main"]
