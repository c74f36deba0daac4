"""The CLI's error boundary: every exception that reaches it becomes a message, a hint and an exit code.

    0  done            1  refused or failed (a failed check, a conflict with the store's state)
    2  bad input or configuration (usage, an unknown name, a bad file, a missing database)
    3  a service that can't be reached (database, object store, server)

Loopline's own errors carry their code (``LooplineError.exit_code``); a dependency's exception is
translated by ``loopline.errors.translate``; anything else is a bug, reported in one line with its
type. ``--debug`` (or ``LOOPLINE_DEBUG=1``) prints the traceback too.
"""

from __future__ import annotations

import os
import sys
import traceback

from loopline.errors import LooplineError, translate

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 1, 2, 3, 130

_debug = False


def set_debug(on: bool) -> None:
    """``--debug`` given on the command line (the environment's LOOPLINE_DEBUG is read as well)."""
    global _debug
    _debug = on


def debugging() -> bool:
    return _debug or os.environ.get("LOOPLINE_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def print_error(error: LooplineError) -> None:
    """``Error: message`` and ``Hint: hint`` on stderr, unwrapped so paths and URIs stay whole."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, soft_wrap=True)
    err.print(f"[bold red]Error:[/] {escape(error.message)}", highlight=False)
    if error.hint:
        err.print(f"[dim]Hint:[/] {escape(error.hint)}", highlight=False)


def exit_code_of(exc: BaseException) -> tuple[int, LooplineError]:
    """The exit code and the Loopline error (translated, or a stand-in for a bug) of ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, LooplineError("Interrupted.")
    error = translate(exc)
    if error is None:
        error = LooplineError(
            f"Unexpected {type(exc).__name__}: {str(exc).strip() or '(no message)'}",
            hint="This is a case Loopline does not handle yet: run again with --debug (or "
            "LOOPLINE_DEBUG=1) for the traceback, and report it.",
        )
    return error.exit_code, error


def fail(exc: BaseException) -> int:
    """Print ``exc`` as the boundary does (with its traceback when debugging); its exit code."""
    if debugging():
        traceback.print_exception(exc, file=sys.stderr)
    code, error = exit_code_of(exc)
    print_error(error)
    return code
