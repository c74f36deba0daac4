"""The jobs' pages: ``/ui/jobs`` and ``/ui/jobs/<id>``, with each job's progress, live while it runs.

Jobs are the long requests a server runs in the background (``server/jobs.py``: materialisations,
monitor runs, data gc…). Both pages read them as ``GET jobs`` does; the live part asks again every
few seconds while a job it shows is queued or running, and stops once none is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.errors import NotFound
from loopline.server.http import blocking
from loopline.server.jobs import JOB_STATUSES, read_job, read_jobs
from loopline.server.state import context
from loopline.server.ui.pages import POLL_S, error_page, is_fragment
from loopline.server.ui.templating import render

router = APIRouter()
JOBS = 100


def _active(jobs: list[dict[str, Any]]) -> bool:
    return any(j["status"] in ("queued", "running") for j in jobs)


@router.get("/jobs")
async def jobs(request: Request) -> Response:
    """``?kind=&status=``: the newest jobs; htmx's poll gets the table alone."""
    kind = request.query_params.get("kind", "").strip()
    status = request.query_params.get("status", "")
    if status not in JOB_STATUSES:
        status = ""
    rows = await blocking(read_jobs, context(request), kind or None, status or None, JOBS)
    template = "_jobs_live.html" if is_fragment(request) else "jobs.html"
    return render(
        request,
        template,
        title="Jobs",
        jobs=rows,
        live=_active(rows),
        kind=kind,
        status=status,
        statuses=JOB_STATUSES,
        poll_s=POLL_S,
        nav="jobs",
    )


@router.get("/jobs/{job_id}")
async def job(request: Request, job_id: str) -> Response:
    j = await blocking(read_job, context(request), job_id)
    if j is None:
        return error_page(request, NotFound(f"No job {job_id!r}.", hint="Finished jobs are kept for 7 days."))
    template = "_job_live.html" if is_fragment(request) else "job.html"
    return render(
        request, template, title=f"Job {job_id[:8]}", j=j, live=_active([j]), poll_s=POLL_S, nav="jobs"
    )


__all__ = ["router"]
