"""``loopline`` on the command line: one Typer sub-app per domain, one module each.

``main`` answers ``loopline data status`` and ``loopline data add`` before importing Typer and
the command modules: they are the commands scripts run in loops, and they need none of them (see
``loopline.data.status`` and ``loopline.data.add_command``). Other commands load only their own
module (``loopline.cli.main``).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (`data status` is lean)
if TYPE_CHECKING:
    from typing import Any


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["data", "status"] and not {"--help", "-h"} & set(argv):
        from loopline.data.status import main as status

        sys.exit(status(argv[2:]))
    if argv[:2] == ["data", "add"] and "--help" not in argv:
        from loopline.data.add_command import main as add

        code = add(argv[2:])
        if code is not None:  # None: arguments the full CLI explains better
            sys.exit(code)
    from loopline.cli.main import main as typer_main

    typer_main()


def __getattr__(name: str) -> Any:
    if name == "app":
        from loopline.cli.main import app

        return app
    raise AttributeError(name)


__all__ = ["app", "main"]
