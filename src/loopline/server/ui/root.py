"""``GET /``: browsers go to the UI, programs get a pointer to what the server offers.

A browser's navigation sends ``Accept: text/html``; curl, MLflow's client and probes do not. The JSON
answer is a placeholder the server's own ``/`` pointer may replace: the redirect is what the UI needs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from loopline._version import __version__
from loopline.server.http import json_response

router = APIRouter(include_in_schema=False)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def to_ui() -> Response:
    return RedirectResponse("/ui/", status_code=307, headers={"Vary": "Accept"})


@router.get("/")
async def root(request: Request) -> Response:
    if wants_html(request):
        return to_ui()
    return json_response(
        {
            "server": "loopline",
            "version": __version__,
            "ui": "/ui/",
            "docs": "/docs",
            "openapi": "/openapi.json",
        },
        headers={"Vary": "Accept"},
    )
