"""Long requests through ``loopline server``: a 202 with a job id, then polling until it is done.

A route that can run for minutes (a materialisation, a monitor run…) answers as usual when the work
ends within the server's ``LOOPLINE_JOB_WAIT`` seconds, else ``202 {"job_id", "status"}``. The
client asks for that with ``Prefer: respond-async`` (RFC 7240; a request without it is answered
when done, as before), then polls ``GET /api/2.0/loopline/jobs/{id}`` with a back-off from 0.2 s
to 2 s until the job succeeded (its result is the route's answer) or failed (its error is the one
the route would have sent, raised as the same Loopline error).

There is no client-side deadline: a job either ends or, when the server running it dies, stops
heartbeating and reads as failed.

Example::

    body = request_job(client, "POST", "/api/2.0/loopline/features/materialize",
                       json={...}, progress=lambda p: print(p.done, p.total, p.message))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # httpx is not imported by embedded work that only reports Progress
    from loopline.protocol.http import RestClient

JOBS_API = "/api/2.0/loopline/jobs"
PREFER_ASYNC = {"Prefer": "respond-async"}
FIRST_POLL, MAX_POLL = 0.2, 2.0  # seconds between polls: doubles from the first to the most
STATUSES = ("queued", "running", "succeeded", "failed")


@dataclass(frozen=True)
class Progress:
    """How far long work is: ``done`` of ``total`` units (None: not known ahead), and what it is at.

    ``job_id`` is set when a server runs the work as a job (a caller that does not want to wait
    may stop there and follow the job later).
    """

    done: int = 0
    total: int | None = None
    message: str = ""
    job_id: str | None = None


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Follow:
    """A progress callback that also says how long a server may hold the request before it answers
    202 (``Prefer: wait=N``; 0 answers at once, for a caller that will not wait for the job)."""

    on_progress: ProgressFn
    wait: float | None = None

    def __call__(self, p: Progress) -> None:
        self.on_progress(p)


@dataclass(frozen=True)
class Job:
    """A job as ``GET /jobs/{id}`` describes it."""

    id: str
    kind: str
    status: str  # queued | running | succeeded | failed
    progress: Progress
    result: Any  # the route's answer, once succeeded
    error: dict[str, Any] | None  # error_code, message, hint, status_code, once failed
    actor: str
    created_ms: int
    started_ms: int | None
    finished_ms: int | None
    heartbeat_ms: int

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")

    def outcome(self) -> Any:
        """The result of a job that succeeded; the Loopline error of one that failed, raised."""
        if self.status == "failed":
            from loopline.protocol.http import error_from

            e = self.error or {}
            raise error_from(
                int(e.get("status_code", 500)),
                str(e.get("error_code", "")),
                str(e.get("message")),
                str(e.get("hint") or ""),
            )
        return self.result


def job_from_json(body: dict[str, Any]) -> Job:
    p = body.get("progress") or {}
    return Job(
        id=body["job_id"],
        kind=body["kind"],
        status=body["status"],
        progress=Progress(int(p.get("done", 0)), p.get("total"), str(p.get("message", "")), body["job_id"]),
        result=body.get("result"),
        error=body.get("error"),
        actor=body.get("actor", ""),
        created_ms=int(body["created_ms"]),
        started_ms=body.get("started_ms"),
        finished_ms=body.get("finished_ms"),
        heartbeat_ms=int(body["heartbeat_ms"]),
    )


def get_job(client: RestClient, job_id: str) -> Job:
    """The job ``job_id`` of the caller's workspace (NotFound for another id)."""
    return job_from_json(client.call("GET", f"{JOBS_API}/{job_id}")["job"])


def list_jobs(
    client: RestClient, *, kind: str | None = None, status: str | None = None, limit: int = 50
) -> list[Job]:
    """The workspace's jobs, newest first."""
    body = client.call("GET", JOBS_API, {"kind": kind, "status": status, "max_results": limit})
    return [job_from_json(j) for j in body["jobs"]]


def wait_job(client: RestClient, job_id: str, *, progress: ProgressFn | None = None) -> Job:
    """Poll ``job_id`` until it ends (0.2 s back-off doubling to 2 s); ``progress`` hears each poll."""
    delay = FIRST_POLL
    while True:
        job = get_job(client, job_id)
        if progress is not None:
            progress(job.progress)
        if job.finished:
            return job
        time.sleep(delay)
        delay = min(delay * 2, MAX_POLL)


def request_job(
    client: RestClient,
    method: str,
    path: str,
    *,
    json: Any = None,
    progress: ProgressFn | None = None,
    **kwargs: Any,
) -> Any:
    """A long request's JSON answer: at once if the server finished within its wait, else the job's
    result once it ends (its error raised). ``kwargs`` go to ``RestClient.request`` (params,
    content, headers, timeout)."""
    headers = {**kwargs.pop("headers", {}), **PREFER_ASYNC}
    if isinstance(progress, Follow) and progress.wait is not None:
        headers["Prefer"] += f", wait={max(0, int(progress.wait))}"
    if json is not None:
        kwargs["content"] = orjson.dumps(json)
        headers["Content-Type"] = "application/json"
    resp = client.request(method, path, headers=headers, **kwargs)
    body = orjson.loads(resp.content) if resp.content else {}
    if resp.status_code != 202 or "job_id" not in body:
        return body
    if progress is not None:
        progress(Progress(job_id=body["job_id"], message="accepted"))
    return wait_job(client, body["job_id"], progress=progress).outcome()


__all__ = [
    "JOBS_API",
    "PREFER_ASYNC",
    "Follow",
    "Job",
    "Progress",
    "ProgressFn",
    "get_job",
    "job_from_json",
    "list_jobs",
    "request_job",
    "wait_job",
]
