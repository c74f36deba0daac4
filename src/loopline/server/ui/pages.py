"""What every page route of the UI shares: the error page, htmx's fragment requests, query numbers."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from loopline.errors import InvalidInput, LooplineError
from loopline.server.ui.templating import render

POLL_S = 2  # how often a live part of a page asks again


def error_page(request: Request, e: LooplineError) -> Response:
    """The page with the error's message (a user's mistake is shown, never answered as JSON)."""
    return render(request, "error.html", status_code=e.status_code, title="Error", error=e)


def is_fragment(request: Request) -> bool:
    """True for htmx's own requests, except a history restore, which needs the whole page."""
    return "hx-request" in request.headers and "hx-history-restore-request" not in request.headers


def int_param(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"Invalid {name} {value!r}: expected an integer.") from None


__all__ = ["POLL_S", "error_page", "int_param", "is_fragment"]
