"""The root command, and the error boundary around every command (``loopline.cli.failures``):
errors print as message + hint with their exit code, no traceback unless ``--debug``.

Command modules load lazily: ``loopline data add`` imports ``loopline.cli.data`` and no other
command module (each pulls in its own domain — serving, monitoring, pipelines… — which together
cost more start-up time than a small command's work). ``--help`` loads them all to list them.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from loopline._version import __version__

# Command name -> (module, attribute): a Typer sub-app, or a function for a single command.
# In the order `loopline --help` lists them.
_COMMANDS: dict[str, tuple[str, str]] = {
    "server": ("loopline.cli.server", "server"),
    "ui": ("loopline.cli.ui", "ui"),
    "gc": ("loopline.cli.gc", "gc"),
    "serve": ("loopline.cli.serve", "serve"),
    "sweep": ("loopline.cli.pipeline", "sweep"),
    "lineage": ("loopline.cli.lineage", "lineage"),
    "events": ("loopline.cli.lineage", "events"),
    "why": ("loopline.cli.loop_reports", "why"),
    "dora": ("loopline.cli.loop_reports", "dora"),
    "experiments": ("loopline.cli.experiments", "app"),
    "runs": ("loopline.cli.runs", "app"),
    "db": ("loopline.cli.db", "app"),
    "models": ("loopline.cli.models", "app"),
    "deploy": ("loopline.cli.deploy", "app"),
    "data": ("loopline.cli.data", "app"),
    "features": ("loopline.cli.features", "app"),
    "pipeline": ("loopline.cli.pipeline", "app"),
    "monitor": ("loopline.cli.monitor", "app"),
    "jobs": ("loopline.cli.jobs", "app"),
    "apply": ("loopline.cli.apply", "apply"),
    "policies": ("loopline.cli.loop", "policies"),
    "rollouts": ("loopline.cli.loop", "rollouts"),
    "retrain": ("loopline.cli.loop", "retrain"),
    "approve": ("loopline.cli.loop", "approve"),
    "controller": ("loopline.cli.loop", "controller"),
    "ci": ("loopline.cli.ci", "app"),
    "users": ("loopline.cli.access", "users"),
    "tokens": ("loopline.cli.access", "tokens"),
    "roles": ("loopline.cli.access", "roles"),
    "whoami": ("loopline.cli.access", "whoami"),
    "workspaces": ("loopline.cli.workspaces", "app"),
}


def _load(name: str) -> Any:
    module, attr = _COMMANDS[name]
    target = getattr(importlib.import_module(module), attr)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(rich_markup_mode="rich")
    single.command(name)(target)
    return typer.main.get_command(single)


class _LazyGroup(TyperGroup):
    """Resolves a command's module only when that command is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*_COMMANDS, *(n for n in super().list_commands(ctx) if n not in _COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            self.commands[cmd_name] = _load(cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="loopline",
    cls=_LazyGroup,
    help="Loopline: track experiments, version data, train, register, serve and monitor models "
    "as one closed loop.\n\nConfiguration comes from LOOPLINE_* environment variables "
    "(LOOPLINE_TRACKING_URI, LOOPLINE_ARTIFACTS_URI, …) or the options of each command; "
    "--workspace (LOOPLINE_WORKSPACE) picks the workspace every command acts in.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar="LOOPLINE_DEBUG",
        help="Print the traceback of an error as well as its message (or LOOPLINE_DEBUG=1).",
    ),
    workspace: str | None = typer.Option(
        None,
        "--workspace",
        "-w",
        envvar="LOOPLINE_WORKSPACE",
        help="The workspace every command acts in (or LOOPLINE_WORKSPACE). Default: default.",
        show_default=False,
    ),
) -> None:
    # A root callback also keeps `app` a group: with its one eager command it would be that command.
    if workspace:
        import os

        from loopline.names import WORKSPACE, check_name

        # Through the environment: every command's settings, and the processes they start, read it.
        os.environ["LOOPLINE_WORKSPACE"] = check_name("workspace", workspace, WORKSPACE)
    if debug:  # imported only then: a command that succeeds loads no module but its own
        from loopline.cli.failures import set_debug

        set_debug(True)


@app.command("version")
def version() -> None:
    """Print Loopline's version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()  # standalone mode: usage errors print themselves and exit with 2
    except (Exception, KeyboardInterrupt) as e:
        from loopline.cli.failures import fail

        sys.exit(fail(e))
