"""The pipelines' pages: ``/ui/pipelines`` (runs) and ``/ui/pipelines/runs/<id>`` (the DAG, live)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.errors import LooplineError
from loopline.pipelines.types import RUN_STATUSES
from loopline.server.http import blocking
from loopline.server.state import context
from loopline.server.ui import pipeline_view
from loopline.server.ui.pages import POLL_S, error_page, is_fragment
from loopline.server.ui.templating import render

router = APIRouter()


@router.get("/pipelines")
async def pipeline_runs(request: Request) -> Response:
    """``?name=&status=``: the newest runs, of one pipeline or in one state if asked."""
    name = request.query_params.get("name", "").strip()
    status = request.query_params.get("status", "")
    if status not in RUN_STATUSES:
        status = ""
    runs = await blocking(pipeline_view.list_runs, context(request), name, status)
    return render(
        request,
        "pipelines.html",
        title="Pipeline runs",
        runs=runs,
        name=name,
        status=status,
        statuses=RUN_STATUSES,
        nav="pipelines",
    )


@router.get("/pipelines/runs/{run_id}")
async def pipeline_run(request: Request, run_id: str) -> Response:
    """The run's page; htmx's poll (while the run runs) gets its live part alone."""
    try:
        p = await blocking(pipeline_view.load, context(request), run_id)
    except LooplineError as e:
        return error_page(request, e)
    template = "_pipeline_live.html" if is_fragment(request) else "pipeline_run.html"
    title = f"Pipeline {p.run.name}, run {run_id[:8]}"
    return render(
        request, template, title=title, p=p, look=pipeline_view.LOOK, nav="pipelines", poll_s=POLL_S
    )


__all__ = ["router"]
