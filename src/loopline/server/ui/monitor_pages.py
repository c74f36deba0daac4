"""The monitors' pages: ``/ui/monitors``, ``/ui/monitors/<name>`` and its runs' HTML drift reports."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from loopline.errors import LooplineError
from loopline.server.http import blocking
from loopline.server.state import context
from loopline.server.ui import monitor_view
from loopline.server.ui.pages import error_page, int_param
from loopline.server.ui.templating import render

router = APIRouter()

# A report is a page of its own that may hold anything a column's values held: it is served so that
# no script of it can run, and framed (or opened) only as a sandboxed document.
SANDBOXED = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


@router.get("/monitors")
async def monitors(request: Request) -> Response:
    rows = await blocking(monitor_view.list_all, context(request))
    return render(request, "monitors.html", title="Monitors", rows=rows, nav="monitors")


@router.get("/monitors/{name}")
async def monitor(request: Request, name: str) -> Response:
    try:
        m = await blocking(monitor_view.load, context(request), name)
    except LooplineError as e:
        return error_page(request, e)
    return render(request, "monitor.html", title=f"Monitor {name}", m=m, nav="monitors")


@router.get("/monitors/{name}/report")
async def monitor_report(request: Request, name: str) -> Response:
    """``?run_id=``: that run's drift report as a self-contained page (default: the newest one)."""
    try:
        run_id = int_param(request.query_params.get("run_id"), 0, "run_id") or None
        page = await blocking(monitor_view.report_html, context(request), name, run_id)
    except LooplineError as e:
        return error_page(request, e)
    return HTMLResponse(page, headers=SANDBOXED)


__all__ = ["router"]
