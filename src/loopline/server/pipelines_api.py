"""The pipelines routes under ``/api/2.0/loopline/pipelines``, and the server's pipeline scheduler.

Steps run on the client (they are the user's code); the server keeps the records, answers cache
lookups across the whole team, and stores outputs through its artifact proxy. Every route is one
method of ``loopline.pipelines.store.PipelineStore``; ``RestPipelineStore`` is its client. Records
travel as the JSON of ``loopline.pipelines.types`` (``StepRecord``, ``RunRecord``, ``ScheduleRecord``:
their fields by name), checked field by field: bad input is a 400 ``{"error_code", "message"}``.

Runs and steps (``{run_id}``: 32 hex digits, chosen by the client)::

    GET  runs?name=&status=&sweep_id=&max_results=&include_packages=   {"runs": [run]}, newest first
    POST runs/create       {"run": run, "steps": [[node, step], …]}     {}  (a retry is a no-op)
    GET  runs/{run_id}?include_packages=                                 {"run": run, "steps": [step]}
    GET  runs/{run_id}/steps                                             {"steps": [step]}
    POST runs/{run_id}/restart   {"host", "pid", "executor"}             {}
    POST runs/{run_id}/inputs    {"name", "dataset_uris": [uri]}         {}
    POST runs/{run_id}/finish    {"status", "outputs", "error"}          {}
    POST runs/{run_id}/progress  {"finished": [{"step": step, "upstream": [node], "datasets": [uri],
                                  "produced": [uri]}], "started": [node], "start_time"}      {}
    POST steps/known-keys  {"fingerprints": [fp], "limit"}  {"keys": [key] | null (too many)}
    GET  steps/cached?cache_key=                            {"step": step | null}
    GET  steps/last?pipeline=&before_run=                   {"steps": {node: step}}

Schedules (by ``name`` in the body or query, since a name may hold any character)::

    GET  schedules?enabled_only=              {"schedules": [schedule + last_slot_ms, last_run_id]}
    POST schedules/create   {"schedule": schedule}                    {}  (the same again is a no-op)
    POST schedules/enable   {"name", "enabled"}                       {}
    POST schedules/delete   {"name"}                                  {}
    POST schedules/claim    {"name", "slot_ms", "claimed_by"}         {"claimed": bool}
    POST schedules/slot-result  {"name", "slot_ms", "run_id", "error"}  {}
    GET  schedules/slots?name=    {"slots": [[slot_ms, claimed_by, run_id, error]]}

Sweeps::

    POST sweeps/create  {"sweep_id", "name", "target", "method", "metric", "direction", "space"}  {}
    POST sweeps/{sweep_id}/finish  {"status", "best_run_id", "best_value"}  {}
    GET  sweeps/{sweep_id}         {"sweep": {…, "space": …}}

Every call is a short transaction, answered synchronously. ``background(app)`` runs the scheduler
while the server is up: every ``LOOPLINE_SCHEDULER_INTERVAL`` seconds (default 30; ``0`` turns it
off) it claims the due slots of every workspace's schedules in the database and launches their runs
as separate processes, each in its schedule's workspace (see ``loopline.pipelines.schedule``),
schedules added through these routes included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from loopline.errors import InvalidInput
from loopline.pipelines.store import PipelineStore, open_pipeline_store
from loopline.pipelines.types import (
    RUN_STATUSES,
    RunRecord,
    ScheduleRecord,
    StepRecord,
    check_run,
    check_status,
    check_text,
    finished_from_json,
    record_from_json,
)
from loopline.server import pipelines_models as pm
from loopline.server.http import blocking, json_body, json_response, optional_int, params, required_str
from loopline.server.openapi_models import DocumentedRoute, Empty, documented
from loopline.server.state import context

router = APIRouter(prefix="/api/2.0/loopline/pipelines", tags=["pipelines"], route_class=DocumentedRoute)
_EMPTY: dict[str, Any] = {}


# Response shapes, for the OpenAPI document only: routes build their JSON by hand (orjson), and
# check request bodies by hand too (``record_from_json``), so a 400 names the field that was wrong;
# the request shapes are in ``pipelines_models.py``.
class Runs(BaseModel):
    runs: list[RunRecord]


class RunWithSteps(BaseModel):
    run: RunRecord
    steps: list[StepRecord]


class Steps(BaseModel):
    steps: list[StepRecord]


class CachedStep(BaseModel):
    step: StepRecord | None


class LastSteps(BaseModel):
    steps: dict[str, StepRecord]


class KnownKeys(BaseModel):
    keys: list[str] | None


class Schedule(BaseModel):
    name: str
    target: str
    cron: str
    params: dict[str, Any]
    executor: str
    enabled: bool
    created_time: int
    last_slot_ms: int | None = None
    last_run_id: str | None = None


class Schedules(BaseModel):
    schedules: list[Schedule]


class Claimed(BaseModel):
    claimed: bool


class Slots(BaseModel):
    # A list, not a tuple: prefixItems trips OpenAPI 3.0 tools (schemathesis among them).
    slots: list[list[int | str]] = Field(description="[slot_ms, claimed_by, run_id, error] each")


class Sweep(BaseModel):
    sweep: dict[str, Any]


def _store(request: Request) -> PipelineStore:
    return open_pipeline_store(context(request))


def _run_json(r: RunRecord, packages: bool = False) -> dict[str, Any]:
    out = asdict(r)
    if not packages:  # hundreds of entries nobody listing runs wants
        out["environment"] = {k: v for k, v in r.environment.items() if k != "packages"}
    out["uri"] = r.uri
    return out


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if isinstance(value, bool):
        return value
    if value in ("true", "1", "false", "0", ""):
        return value in ("true", "1")
    raise InvalidInput(f"Invalid value {value!r:.40} for parameter '{name}': expected true or false.")


def _str(body: dict[str, Any], name: str, limit: int | None = None, *, required: bool = True) -> str:
    value = required_str(body, name) if required else body.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"Invalid value {value!r:.80} for parameter '{name}': expected a string.")
    return check_text(value, name, limit)


def _int(body: dict[str, Any], name: str) -> int:
    value = optional_int(body, name)
    if value is None:
        raise InvalidInput(f"Missing value for required parameter '{name}'.")
    return value


def _strings(body: dict[str, Any], name: str, limit: int | None = None) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"Invalid value for parameter '{name}': expected a list of strings.")
    return [check_text(v, name, limit) for v in value]


# ---- runs ----------------------------------------------------------------------------------


@router.get("/runs", response_model=Runs)
@documented(pm.ListRuns, errors=())
async def list_runs(request: Request) -> Response:
    body = await params(request)
    limit = _int(body, "max_results") if body.get("max_results") is not None else 50
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"Invalid value {limit} for parameter 'max_results': it must be 1 to 1000.")
    runs = await blocking(
        _store(request).list_runs, body.get("name"), body.get("status"), body.get("sweep_id"), limit
    )
    packages = _flag(body, "include_packages")
    return json_response({"runs": [_run_json(r, packages) for r in runs]})


@router.post("/runs/create", response_model=Empty)
@documented(pm.CreateRun, errors=(409,))
async def create_run(request: Request) -> Response:
    body = await json_body(request)
    run = check_run(record_from_json(RunRecord, body.get("run"), "run"))
    steps_in = body.get("steps", [])
    if not isinstance(steps_in, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in steps_in
    ):
        raise InvalidInput("Invalid value for parameter 'steps': expected a list of [node, step] pairs.")
    steps = [(check_text(n, "steps", 256), check_text(s, "steps", 256)) for n, s in steps_in]
    if len({n for n, _ in steps}) != len(steps):
        raise InvalidInput("Invalid value for parameter 'steps': a node is listed twice.")
    await blocking(_store(request).create_run, run, steps)
    return json_response(_EMPTY)


@router.get("/runs/{run_id}", response_model=RunWithSteps)
@documented(pm.IncludePackages)
async def get_run(run_id: str, request: Request) -> Response:
    body = await params(request)
    store = _store(request)
    run = await blocking(store.get_run, run_id)
    steps = await blocking(store.steps, run_id)
    return json_response(
        {"run": _run_json(run, _flag(body, "include_packages")), "steps": [asdict(s) for s in steps]}
    )


@router.get("/runs/{run_id}/steps", response_model=Steps)
async def list_steps(run_id: str, request: Request) -> Response:
    steps = await blocking(_store(request).steps, run_id)
    return json_response({"steps": [asdict(s) for s in steps]})


@router.post("/runs/{run_id}/restart", response_model=Empty)
@documented(pm.RestartRun)
async def restart_run(run_id: str, request: Request) -> Response:
    body = await json_body(request)
    host, executor = _str(body, "host", 255, required=False), _str(body, "executor", 256)
    pid = _int(body, "pid")
    if not -(2**31) <= pid < 2**31:  # an Integer column
        raise InvalidInput(f"Invalid value {pid} for parameter 'pid': expected a 32-bit integer.")
    await blocking(_store(request).restart_run, run_id, host=host, pid=pid, executor=executor)
    return json_response(_EMPTY)


@router.post("/runs/{run_id}/inputs", response_model=Empty)
@documented(pm.AddInputs)
async def add_inputs(run_id: str, request: Request) -> Response:
    body = await json_body(request)
    name, uris = _str(body, "name", 256), _strings(body, "dataset_uris", 2048)
    await blocking(_store(request).add_inputs, run_id, name, uris)
    return json_response(_EMPTY)


@router.post("/runs/{run_id}/finish", response_model=Empty)
@documented(pm.FinishRun)
async def finish_run(run_id: str, request: Request) -> Response:
    body = await json_body(request)
    status = check_status(body.get("status"), RUN_STATUSES[1:], "status")
    error = _str(body, "error", required=False)
    await blocking(_store(request).finish_run, run_id, status, body.get("outputs"), error)
    return json_response(_EMPTY)


@router.post("/runs/{run_id}/progress", response_model=Empty)
@documented(pm.Progress)
async def progress(run_id: str, request: Request) -> Response:
    body = await json_body(request)
    raw = body.get("finished", [])
    if not isinstance(raw, list):
        raise InvalidInput("Invalid value for parameter 'finished': expected a list.")
    finished = [finished_from_json(f, f"finished[{i}]") for i, f in enumerate(raw)]
    if any(f.step.run_id != run_id for f in finished):
        raise InvalidInput(f"A finished step is not of run {run_id}: its run_id differs.")
    started = _strings(body, "started", 256)
    start_time = optional_int(body, "start_time")
    await blocking(
        _store(request).progress, run_id, finished=finished, started=started, start_time=start_time
    )
    return json_response(_EMPTY)


# ---- the cache -----------------------------------------------------------------------------


@router.post("/steps/known-keys", response_model=KnownKeys)
@documented(pm.KnownKeys, errors=())
async def known_keys(request: Request) -> Response:
    body = await json_body(request)
    fingerprints = _strings(body, "fingerprints", 64)
    limit = _int(body, "limit") if "limit" in body else 100_000
    if not 0 <= limit <= 1_000_000:
        raise InvalidInput(f"Invalid value {limit} for parameter 'limit': it must be 0 to 1000000.")
    keys = await blocking(_store(request).known_keys, fingerprints, limit)
    return json_response({"keys": None if keys is None else sorted(keys)})


@router.get("/steps/cached", response_model=CachedStep)
@documented(pm.CachedStepQuery, errors=())
async def find_cached(request: Request) -> Response:
    body = await params(request)
    hit = await blocking(_store(request).find_cached, _str(body, "cache_key", 64))
    return json_response({"step": None if hit is None else asdict(hit)})


@router.get("/steps/last", response_model=LastSteps)
@documented(pm.LastStepsQuery, errors=())
async def last_steps(request: Request) -> Response:
    body = await params(request)
    pipeline, before = _str(body, "pipeline", 256), _str(body, "before_run", 32, required=False)
    steps = await blocking(_store(request).last_steps, pipeline, before)
    return json_response({"steps": {n: asdict(s) for n, s in steps.items()}})


# ---- schedules -----------------------------------------------------------------------------


@router.get("/schedules", response_model=Schedules)
@documented(pm.ListSchedules, errors=())
async def list_schedules(request: Request) -> Response:
    body = await params(request)
    store = _store(request)
    out = []
    for s in await blocking(store.list_schedules, _flag(body, "enabled_only")):
        slots = await blocking(store.slots, s.name)
        last = slots[-1] if slots else None
        out.append(
            {**asdict(s), "last_slot_ms": last[0] if last else None, "last_run_id": last[2] if last else None}
        )
    return json_response({"schedules": out})


@router.post("/schedules/create", response_model=Empty)
@documented(pm.AddSchedule, errors=(409,))
async def add_schedule(request: Request) -> Response:
    from loopline.pipelines.schedule import validate_cron

    body = await json_body(request)
    schedule = record_from_json(ScheduleRecord, body.get("schedule"), "schedule")
    if not schedule.name:
        raise InvalidInput("Invalid value '' for parameter 'schedule.name': expected a non-empty string.")
    validate_cron(schedule.cron)
    await blocking(_store(request).add_schedule, schedule)
    return json_response(_EMPTY)


@router.post("/schedules/enable", response_model=Empty)
@documented(pm.EnableSchedule)
async def set_schedule_enabled(request: Request) -> Response:
    body = await json_body(request)
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidInput("Invalid value for parameter 'enabled': expected true or false.")
    await blocking(_store(request).set_schedule_enabled, _str(body, "name", 256), enabled)
    return json_response(_EMPTY)


@router.post("/schedules/delete", response_model=Empty)
@documented(pm.ScheduleName)
async def remove_schedule(request: Request) -> Response:
    body = await json_body(request)
    await blocking(_store(request).remove_schedule, _str(body, "name", 256))
    return json_response(_EMPTY)


@router.post("/schedules/claim", response_model=Claimed)
@documented(pm.ClaimSlot)
async def claim_slot(request: Request) -> Response:
    body = await json_body(request)
    name, slot, by = _str(body, "name", 256), _int(body, "slot_ms"), _str(body, "claimed_by", 255)
    return json_response({"claimed": await blocking(_store(request).claim_slot, name, slot, by)})


@router.post("/schedules/slot-result", response_model=Empty)
@documented(pm.SlotResult)
async def set_slot_result(request: Request) -> Response:
    body = await json_body(request)
    name, slot = _str(body, "name", 256), _int(body, "slot_ms")
    run_id, error = _str(body, "run_id", 32, required=False), _str(body, "error", required=False)
    await blocking(_store(request).set_slot_result, name, slot, run_id=run_id, error=error)
    return json_response(_EMPTY)


@router.get("/schedules/slots", response_model=Slots)
@documented(pm.ScheduleName)
async def list_slots(request: Request) -> Response:
    body = await params(request)
    slots = await blocking(_store(request).slots, _str(body, "name", 256))
    return json_response({"slots": [list(s) for s in slots]})


# ---- sweeps --------------------------------------------------------------------------------


@router.post("/sweeps/create", response_model=Empty)
@documented(pm.CreateSweep, errors=(409,))
async def create_sweep(request: Request) -> Response:
    body = await json_body(request)
    await blocking(
        _store(request).create_sweep,
        _str(body, "sweep_id", 32),
        _str(body, "name", 256),
        _str(body, "target", 1024),
        _str(body, "method", 16),
        _str(body, "metric", 256),
        _str(body, "direction", 8),
        body.get("space"),
    )
    return json_response(_EMPTY)


@router.post("/sweeps/{sweep_id}/finish", response_model=Empty)
@documented(pm.FinishSweep)
async def finish_sweep(sweep_id: str, request: Request) -> Response:
    body = await json_body(request)
    status, best = _str(body, "status", 16), _str(body, "best_run_id", 32, required=False)
    value = body.get("best_value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidInput("Invalid value for parameter 'best_value': expected a number or null.")
    await blocking(
        _store(request).finish_sweep, sweep_id, status, best, None if value is None else float(value)
    )
    return json_response(_EMPTY)


@router.get("/sweeps/{sweep_id}", response_model=Sweep)
async def get_sweep(sweep_id: str, request: Request) -> Response:
    return json_response({"sweep": await blocking(_store(request).get_sweep, sweep_id)})


@contextlib.asynccontextmanager
async def background(app: FastAPI) -> AsyncIterator[None]:
    """Run the pipeline scheduler of every workspace while the server is up (entered by the app's
    lifespan): each workspace's runs launched in it, as the server's user."""
    from loopline.pipelines.schedule import WorkspaceSchedulers, launch_process

    st = app.state.loopline
    interval = st.settings.scheduler_interval
    if interval <= 0:
        yield
        return
    scheduler = WorkspaceSchedulers(st.context, lambda workspace: launch_process(st.settings, workspace))
    task = asyncio.create_task(scheduler.serve(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["background", "router"]
