"""Long requests as jobs: ``await run_job(request, kind, fn)`` in a route, and ``GET jobs/{id}``.

A route hands its blocking work to ``run_job`` as ``fn(progress)``. The work runs in a thread of its
own, not the request's, so a client that disconnects does not stop it. The route waits for it up to
``LOOPLINE_JOB_WAIT`` seconds (2) when the client sent ``Prefer: respond-async`` (RFC 7240;
``wait=N`` there shortens it), and answers as it always did (200 and the result, or the error) if
it ended; else ``202 {"job_id", "kind", "status"}`` with ``Location: /api/2.0/loopline/jobs/{id}``.
Without the header the route waits until the end, as before jobs (curl, older clients).

Every job is a row of the ``jobs`` table (``metadata/schema_jobs.py``): status, progress and
outcome live in the database, so any replica on the same database answers ``GET jobs/{id}`` for
a job another one runs. The job's server writes a heartbeat every 5 s; a queued or running job
whose heartbeat is 30 s old reads as failed (its server died or lost the database). Routes::

    GET  jobs/{id}                           → {"job": Job}; 404 for an id not of this workspace
    GET  jobs?kind=&status=&max_results=50   → {"jobs": [Job…]}, newest first

``Job`` is ``{"job_id", "kind", "status", "progress": {"done", "total", "message"}, "result",
"error": {"error_code", "message", "hint", "status_code"} | null, "actor", "created_ms",
"started_ms", "finished_ms", "heartbeat_ms"}``; ``result`` is the body the route answers with 200.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine, and_, delete, insert, or_, select, update

from loopline.clock import now_ms
from loopline.context import Context
from loopline.errors import InvalidInput, LooplineError, NotFound
from loopline.metadata.engine import write_transaction
from loopline.metadata.schema_jobs import jobs
from loopline.protocol.jobs import JOBS_API, Progress, ProgressFn
from loopline.server.errors import error_body
from loopline.server.http import blocking, json_response, optional_int, optional_str, query_dict
from loopline.server.openapi_models import DocumentedRoute, documented
from loopline.server.state import context

log = logging.getLogger("loopline.server")
router = APIRouter(prefix=JOBS_API.removesuffix("/jobs"), tags=["jobs"], route_class=DocumentedRoute)

HEARTBEAT_S = 5.0
STALE_MS = 30_000  # six missed heartbeats: the job's server is gone
PROGRESS_EVERY_S = 0.25  # progress reaches the database at most this often (and once at the end)
KEEP_MS = 7 * 86_400_000  # finished (or dead) jobs are dropped after a week
JOB_STATUSES = ("queued", "running", "succeeded", "failed")
SLOTS = 8  # jobs running at once per server process; later ones are queued
_SLOTS_LOCK = threading.Lock()

JobFn = Callable[[ProgressFn], Any]


# ---- the table ---------------------------------------------------------------------------------


class _Recorder:
    """One job's row, written from its threads: status, throttled progress, heartbeat, outcome."""

    def __init__(self, engine: Engine, job_id: str) -> None:
        self.engine = engine
        self.id = job_id
        self._lock = threading.Lock()
        self._latest = Progress()
        self._written = 0.0

    def _set(self, **values: Any) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(update(jobs).where(jobs.c.id == self.id).values(heartbeat_ms=now_ms(), **values))

    def _progress_values(self) -> dict[str, Any]:
        p = self._latest
        return {"done": p.done, "total": p.total, "message": p.message[:2000]}

    def progress(self, p: Progress) -> None:
        """What the work reports; kept in memory, written when the last write is old enough."""
        with self._lock:
            self._latest = p
            due = time.monotonic() - self._written >= PROGRESS_EVERY_S
            if due:
                self._written = time.monotonic()
        if due:
            self._set(**self._progress_values())

    def beat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                self._set()
            except Exception:  # a missed beat is not fatal; many in a row make the job read as failed
                log.warning("job %s: heartbeat failed", self.id, exc_info=True)

    def running(self) -> None:
        self._set(status="running", started_ms=now_ms())

    def finished(self, result: Any = None, error: dict[str, Any] | None = None) -> None:
        self._set(
            status="failed" if error is not None else "succeeded",
            finished_ms=now_ms(),
            result=None if error is not None else orjson.dumps(result).decode(),
            error=orjson.dumps(error).decode() if error is not None else None,
            **self._progress_values(),
        )


def _create(engine: Engine, job_id: str, workspace: str, actor: str, kind: str) -> None:
    now = now_ms()
    with write_transaction(engine) as conn:
        # Old jobs go as new ones come: the table stays as small as a week of long requests.
        conn.execute(
            delete(jobs).where(
                jobs.c.workspace == workspace,
                jobs.c.created_ms < now - KEEP_MS,
                jobs.c.heartbeat_ms < now - STALE_MS,
            )
        )
        conn.execute(
            insert(jobs).values(
                id=job_id,
                workspace=workspace,
                kind=kind,
                status="queued",
                actor=actor,
                done=0,
                total=None,
                message="",
                created_ms=now,
                heartbeat_ms=now,
            )
        )


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, LooplineError):
        return {**error_body(exc), "hint": exc.hint, "status_code": exc.status_code}
    return {
        "error_code": "INTERNAL_ERROR",
        "message": f"{type(exc).__name__}: {exc}",
        "hint": "",
        "status_code": 500,
    }


def _as_json(row: Any, now: int) -> dict[str, Any]:
    status, error = row.status, orjson.loads(row.error) if row.error else None
    if status in ("queued", "running") and row.heartbeat_ms < now - STALE_MS:
        # No write here: if the server only stalled, its next heartbeat makes the job live again.
        status = "failed"
        error = {
            "error_code": "TEMPORARILY_UNAVAILABLE",
            "message": f"Job {row.id} ({row.kind}) stopped: the server running it has not reported for "
            f"{(now - row.heartbeat_ms) // 1000} s (it stopped, or lost the database).",
            "hint": "Send the request again; a materialisation resumes after the last batch it wrote.",
            "status_code": 503,
        }
    return {
        "job_id": row.id,
        "kind": row.kind,
        "status": status,
        "progress": {"done": row.done, "total": row.total, "message": row.message},
        "result": orjson.loads(row.result) if row.result else None,
        "error": error,
        "actor": row.actor,
        "created_ms": row.created_ms,
        "started_ms": row.started_ms,
        "finished_ms": row.finished_ms,
        "heartbeat_ms": row.heartbeat_ms,
    }


# ---- reading -----------------------------------------------------------------------------------


def read_job(ctx: Context, job_id: str) -> dict[str, Any] | None:
    """Job ``job_id`` of the context's workspace as ``GET jobs/{id}`` answers it, or None."""
    with ctx.engine.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id, jobs.c.workspace == ctx.workspace)).first()
    return None if row is None else _as_json(row, now_ms())


def read_jobs(
    ctx: Context, kind: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The workspace's jobs (of ``kind``, in ``status`` as read: a dead job's is ``failed``), newest
    first, as ``GET jobs`` answers them."""
    now = now_ms()
    q = select(jobs).where(jobs.c.workspace == ctx.workspace)
    if kind is not None:
        q = q.where(jobs.c.kind == kind)
    live = jobs.c.heartbeat_ms >= now - STALE_MS
    if status in ("queued", "running"):
        q = q.where(jobs.c.status == status, live)
    elif status == "failed":  # failed as recorded, or dead as read
        q = q.where(or_(jobs.c.status == "failed", and_(jobs.c.status.in_(("queued", "running")), ~live)))
    elif status == "succeeded":
        q = q.where(jobs.c.status == status)
    with ctx.engine.connect() as conn:
        rows = list(conn.execute(q.order_by(jobs.c.created_ms.desc(), jobs.c.id).limit(limit)))
    return [_as_json(r, now) for r in rows]


# ---- running -----------------------------------------------------------------------------------


def _slots(request: Request) -> threading.BoundedSemaphore:
    with _SLOTS_LOCK:
        slots: threading.BoundedSemaphore | None = getattr(request.app.state, "loopline_job_slots", None)
        if slots is None:
            slots = request.app.state.loopline_job_slots = threading.BoundedSemaphore(SLOTS)
    return slots


def _work(
    rec: _Recorder, fn: JobFn, slots: threading.BoundedSemaphore, out: concurrent.futures.Future[Any]
) -> None:
    stop = threading.Event()
    threading.Thread(target=rec.beat, args=(stop,), name=f"{rec.id[:8]}-heartbeat", daemon=True).start()
    try:
        with slots:
            rec.running()
            result = fn(rec.progress)
        rec.finished(result)
        out.set_result(result)
    except BaseException as e:
        if not isinstance(e, LooplineError):  # refusals are routine; anything else is a bug to see
            log.exception("job %s failed", rec.id)
        try:
            rec.finished(error=_error(e))
        except Exception:  # the database is gone too: the job will read as failed once stale
            log.exception("job %s: could not record its failure", rec.id)
        out.set_exception(e)
    finally:
        stop.set()


_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)")


def _wait(request: Request, default: float) -> float | None:
    """Seconds to wait before answering 202, or None (until done) when the client did not ask."""
    prefer = ",".join(request.headers.getlist("prefer")).lower()
    if "respond-async" not in prefer:
        return None
    asked = _PREFER_WAIT.search(prefer)
    return max(0.0, min(default, float(asked.group(1))) if asked else default)


async def run_job(request: Request, kind: str, fn: JobFn, *, wait: float | None = None) -> Response:
    """Run ``fn(progress)`` as a job of the caller's workspace and answer its result (200) if it ends
    within the wait, else ``202`` with the job's id; ``fn`` returns the JSON body of the 200.

    ``wait`` overrides what the request's ``Prefer`` header and ``LOOPLINE_JOB_WAIT`` decide (0:
    answer 202 at once). An error ``fn`` raises within the wait is answered as the route would.
    """
    ctx = context(request)
    if wait is None:
        wait = _wait(request, ctx.settings.job_wait)
    rec = _Recorder(ctx.engine, uuid.uuid4().hex)
    await blocking(_create, ctx.engine, rec.id, ctx.workspace, ctx.actor, kind)
    out: concurrent.futures.Future[Any] = concurrent.futures.Future()
    worker = threading.Thread(
        target=_work, args=(rec, fn, _slots(request), out), name=f"job-{rec.id[:8]}", daemon=True
    )
    worker.start()
    done = asyncio.wrap_future(out)
    try:
        result = await asyncio.wait_for(asyncio.shield(done), wait)
    except TimeoutError:
        # The outcome is the job row's now; taking it here keeps asyncio from logging it as unretrieved.
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        return json_response(
            {"job_id": rec.id, "kind": kind, "status": "running"},
            202,
            headers={"Location": f"{JOBS_API}/{rec.id}", "Preference-Applied": "respond-async"},
        )
    except LooplineError:
        raise
    except Exception as e:  # logged with its traceback by the job's thread already
        return json_response({k: v for k, v in _error(e).items() if k in ("error_code", "message")}, 500)
    return json_response(result)


# ---- routes ------------------------------------------------------------------------------------


class JobAccepted(BaseModel):
    job_id: str
    kind: str
    status: Literal["queued", "running"]


# For the routes that run jobs: their 202 in the OpenAPI page (/docs).
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": JobAccepted, "description": "Still running: poll Location (GET jobs/{job_id})."}
}


class ProgressOut(BaseModel):
    done: int
    total: int | None
    message: str


class JobErrorOut(BaseModel):
    error_code: str
    message: str
    hint: str
    status_code: int


class JobOut(BaseModel):
    job_id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: ProgressOut
    result: Any = None
    error: JobErrorOut | None = None
    actor: str
    created_ms: int
    started_ms: int | None
    finished_ms: int | None
    heartbeat_ms: int


class JobResponse(BaseModel):
    job: JobOut


class JobsResponse(BaseModel):
    jobs: list[JobOut]


class ListJobs(BaseModel):
    kind: str | None = Field(None, description="e.g. features.materialize")
    status: Literal["queued", "running", "succeeded", "failed"] | None = None
    max_results: Annotated[int, Field(ge=1, le=1000)] = 50


@router.get("/jobs/{job_id}", response_model=JobResponse)
async def get_job(job_id: str, request: Request) -> Response:
    """A job of the caller's workspace: its status, progress, and result or error."""
    ctx = context(request)
    job = await blocking(read_job, ctx, job_id)
    if job is None:
        raise NotFound(
            f"No job {job_id!r} in workspace {ctx.workspace!r}.",
            hint="Use the job_id a 202 answer gave; `loopline jobs list` shows recent jobs "
            "(finished jobs are kept for 7 days).",
        )
    return json_response({"job": job})


@router.get("/jobs", response_model=JobsResponse)
@documented(ListJobs, errors=())
async def list_jobs(request: Request) -> Response:
    """The workspace's jobs, newest first (``status`` as read: a dead job's is ``failed``)."""
    ctx = context(request)
    query = query_dict(request)
    kind, status = optional_str(query, "kind"), optional_str(query, "status")
    limit = optional_int(query, "max_results", 50)
    if limit is None or not 1 <= limit <= 1000:
        raise InvalidInput(
            f"Invalid value {limit} for parameter 'max_results': it must be between 1 and 1000."
        )
    if status is not None and status not in ("queued", "running", "succeeded", "failed"):
        raise InvalidInput(f"Unknown status {status!r}.", hint="Use queued, running, succeeded or failed.")
    return json_response({"jobs": await blocking(read_jobs, ctx, kind, status, limit)})


__all__ = ["ACCEPTED", "JOB_STATUSES", "JobFn", "read_job", "read_jobs", "router", "run_job"]
