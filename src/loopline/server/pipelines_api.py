"""The pipelines routes under ``/api/2.0/loopline``, and the server's pipeline scheduler.

- ``GET pipelines/runs?name=&status=&max_results=``: pipeline runs, newest first.
- ``GET pipelines/runs/{run_id}``: one run with its steps (status, reason, output digest, timing).
- ``GET pipelines/schedules``: the cron schedules and their last claimed slot.

``background(app)`` runs the scheduler while the server is up: every
``LOOPLINE_SCHEDULER_INTERVAL`` seconds (default 30; ``0`` turns it off) it claims due slots in
the database and launches their runs as separate processes (see ``loopline.pipelines.schedule``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from loopline.pipelines.sql_store import RunRecord, SqlPipelineStore
from loopline.server.http import blocking, json_response, optional_int, params
from loopline.server.state import state

router = APIRouter(prefix="/api/2.0/loopline")


def _store(request: Request) -> SqlPipelineStore:
    tracking = state(request).tracking
    return SqlPipelineStore(tracking.engine, workspace=tracking.workspace, actor=tracking.actor)


def _run_json(r: RunRecord) -> dict[str, Any]:
    out = asdict(r)
    out["environment"] = {k: v for k, v in r.environment.items() if k != "packages"}
    out["uri"] = r.uri
    return out


@router.get("/pipelines/runs")
async def list_runs(request: Request) -> Response:
    body = await params(request)
    limit = min(optional_int(body, "max_results", 50) or 50, 1000)
    runs = await blocking(
        _store(request).list_runs, body.get("name"), body.get("status"), body.get("sweep_id"), limit
    )
    return json_response({"runs": [_run_json(r) for r in runs]})


@router.get("/pipelines/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> Response:
    store = _store(request)
    run = await blocking(store.get_run, run_id)
    steps = await blocking(store.steps, run_id)
    return json_response({"run": _run_json(run), "steps": [asdict(s) for s in steps]})


@router.get("/pipelines/schedules")
async def list_schedules(request: Request) -> Response:
    store = _store(request)
    out = []
    for s in await blocking(store.list_schedules):
        slots = await blocking(store.slots, s.name)
        last = slots[-1] if slots else None
        out.append(
            {**asdict(s), "last_slot_ms": last[0] if last else None, "last_run_id": last[2] if last else None}
        )
    return json_response({"schedules": out})


@contextlib.asynccontextmanager
async def background(app: FastAPI) -> AsyncIterator[None]:
    """Run the pipeline scheduler while the server is up (entered by the app's lifespan)."""
    from loopline.pipelines.schedule import Scheduler, launch_process

    interval = float(os.environ.get("LOOPLINE_SCHEDULER_INTERVAL", "30") or 0)
    st = app.state.loopline
    if interval <= 0:
        yield
        return
    tracking = st.tracking
    store = SqlPipelineStore(tracking.engine, workspace=tracking.workspace, actor=tracking.actor)
    scheduler = Scheduler(store, launch_process(st.settings))
    task = asyncio.create_task(scheduler.serve(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
