"""The monitoring routes under ``/api/2.0/loopline/monitors``, ``GET /metrics``, and the monitor scheduler.

Monitors run here, on the server: it holds the inference logs, window buffers, reference profiles and
reports in its artifact store. Routes (GET takes the query string, POST a JSON object; errors are 4xx
``{"error_code", "message"}``):

==============================================  ===================================================
``GET  list``                                   ``{"monitors": [Monitor…]}``
``GET  get?name=``                              ``{"monitor": Monitor}``
``POST create`` ``{"name", "target",            ``{"monitor": Monitor}``; the same definition again
``"reference", "window", "schedule", "config",  answers the existing monitor (a retry is no error),
"replace"}``                                    another one is 409 unless ``replace``
``POST delete`` ``{"name"}``                    ``{}``; the monitor, its runs and figures
``GET  due?at_ms=``                             ``{"monitors": [Monitor…]}`` scheduled and due then
``GET  runs?name=&max_results=``                ``{"runs": [MonitorRun…]}`` newest first
``POST run`` ``{"name", "at_ms"?, "wait"?}``    run it now, as a job: when done ``{"run":
                                                MonitorRun, "metrics", "alerts", "deliveries",
                                                "reference", "report": DriftReport|null}`` (+ flat
                                                ``run_id``, ``status``, ``rows``, ``new_rows``), or
                                                ``202 {"job_id"}`` past LOOPLINE_JOB_WAIT with
                                                ``Prefer: respond-async`` (``GET jobs/{id}`` has
                                                its stages, then this body); ``"wait": false``:
                                                202 at once
``GET  history?name=&key=…&since_ms=&           its metrics over time, as columns:
max_results=``                                  ``{"time_ms": [], "key": [], "value": []}``
``GET  report?name=&run_id=``                   ``{"report": DriftReport|null}`` of that run
                                                (default: the newest run that has one)
``GET  latest-metrics``                         ``{"monitors": {name: {key: value}}}``
``GET  /metrics``                               Prometheus gauges of every monitor's latest figures
==============================================  ===================================================

``Monitor`` and ``MonitorRun`` are ``loopline.monitoring.types``' JSON shapes; ``DriftReport`` is
``DriftReport.to_dict(histograms=True)``.

``background(app)`` runs, while ``loopline server`` is up, every scheduled monitor that is due (its
cron ``schedule``) in every workspace, checking every ``LOOPLINE_MONITOR_POLL`` seconds (30) with one
query for all workspaces, on worker threads so that the event loop keeps answering and a slow
workspace holds up no other. Each due slot is claimed in the database first, so several server
processes or replicas on one PostgreSQL run it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from loopline.context import Context
from loopline.errors import InvalidInput
from loopline.server.http import blocking, json_response, optional_int, params, required_str
from loopline.server.jobs import ACCEPTED, run_job
from loopline.server.openapi_models import DocumentedRoute, Empty, Name, documented
from loopline.server.state import context

if TYPE_CHECKING:
    from loopline.monitoring.sql_store import SqlMonitoringStore
    from loopline.protocol.jobs import ProgressFn

T = TypeVar("T")
log = logging.getLogger("loopline.server")
router = APIRouter(prefix="/api/2.0/loopline/monitors", tags=["monitors"], route_class=DocumentedRoute)
metrics_router = APIRouter()  # GET /metrics at the root, where Prometheus looks for it
MAX_RUNS = 1000
MAX_POINTS = 100_000


def _store(ctx: Context) -> SqlMonitoringStore:
    """The SQL store of the context's database, able to run monitors on its artifact store.

    Imported on first use: monitoring brings NumPy, which the server's start does not need.
    """
    from loopline.monitoring.sql_store import SqlMonitoringStore

    return SqlMonitoringStore(ctx.engine, workspace=ctx.workspace, actor=ctx.actor, context=ctx)


def _types() -> Any:
    from loopline.monitoring import types

    return types


async def on_store(request: Request, fn: Callable[[SqlMonitoringStore], T]) -> T:
    """``fn(store)`` in the threadpool, the store made there too (its first import brings NumPy)."""
    ctx = context(request)
    return await blocking(lambda: fn(_store(ctx)))


# ---- typed shapes, for the OpenAPI page (/docs) ----------------------------------------------


class MonitorOut(BaseModel):
    name: str
    uri: str
    target: str
    reference: str | None
    window: str
    schedule: str | None
    webhooks: list[str]
    config: dict[str, Any]
    state: dict[str, Any]
    created_ms: int
    updated_ms: int
    last_run_ms: int | None
    next_run_ms: int | None
    id: int


class MonitorResponse(BaseModel):
    monitor: MonitorOut


class MonitorsResponse(BaseModel):
    monitors: list[MonitorOut]


class RunOut(BaseModel):
    id: int
    monitor: str
    started_ms: int
    finished_ms: int
    rows: int
    new_rows: int
    status: str
    dataset_drift: bool
    drift_share: float | None
    summary: dict[str, Any]


class RunsResponse(BaseModel):
    runs: list[RunOut]


class RunResultResponse(BaseModel):
    run: RunOut
    run_id: int
    status: str
    rows: int
    new_rows: int
    reference: str
    metrics: dict[str, float]
    alerts: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    report: dict[str, Any] | None


class HistoryResponse(BaseModel):
    time_ms: list[int]
    key: list[str]
    value: list[float]


class ReportResponse(BaseModel):
    report: dict[str, Any] | None


class CreateMonitorRequest(BaseModel):
    name: Name
    target: str = Field(  # the pattern is documented; check_definition refuses with a hint
        json_schema_extra={"pattern": r"^(deployments|models):/"},
        description="deployments:/name, models:/name@alias or models:/name/3",
    )
    reference: str = Field("", description="a datasets:/ URI, a file on the server, or '' for lineage")
    window: str = Field(
        "1h",
        json_schema_extra={"pattern": r"^0*[1-9][0-9]{0,9}(?:s|m|h|d|rows)$"},  # Window.parse checks
        description="the rows a run looks at: 1h, 30m, 7d, or 1000 (the last rows)",
    )
    schedule: str = Field("", description="a cron expression (five fields), or '' to run only when asked")
    config: dict[str, Any] = Field(default_factory=dict)
    replace: bool = False


class NameRequest(BaseModel):
    name: str


class NameQuery(BaseModel):
    name: Name


class DueQuery(BaseModel):
    at_ms: Annotated[int, Field(ge=0, le=2**53 - 1)] | None = Field(None, description="default: now")


class RunsQuery(NameQuery):
    max_results: Annotated[int, Field(ge=1, le=MAX_RUNS)] = 100


class HistoryQuery(NameQuery):
    key: list[str] = Field([], description="the metrics to return (repeat it; default: all)")
    since_ms: Annotated[int, Field(ge=0, le=2**53 - 1)] | None = None
    max_results: Annotated[int, Field(ge=1, le=MAX_POINTS)] = 10_000


class ReportQuery(NameQuery):
    run_id: Annotated[int, Field(ge=1, le=2**53 - 1)] | None = Field(
        None, description="default: the newest run that has a report"
    )


class LatestMetricsResponse(BaseModel):
    monitors: dict[str, dict[str, float]] = Field(description="monitor -> figure -> value")


class RunRequest(BaseModel):
    name: str
    at_ms: int | None = None
    wait: bool = Field(True, description="false: answer 202 with the job id at once")


def _limit(body: dict[str, Any], default: int, most: int) -> int:
    n = optional_int(body, "max_results", default)
    if n is None or not 1 <= n <= most:
        raise InvalidInput(f"Invalid value {n} for parameter 'max_results': it must be between 1 and {most}.")
    return n


# ---- routes ------------------------------------------------------------------------------------


@router.get("/list", response_model=MonitorsResponse)
async def list_monitors(request: Request) -> Response:
    items = await on_store(request, lambda s: s.list_monitors())
    return json_response({"monitors": [_types().monitor_to_json(m) for m in items]})


@router.get("/get", response_model=MonitorResponse)
@documented(NameQuery)
async def get_monitor(request: Request) -> Response:
    body = await params(request)
    name = required_str(body, "name")
    m = await on_store(request, lambda s: s.get_monitor(name))
    return json_response({"monitor": _types().monitor_to_json(m)})


@router.post("/create", response_model=MonitorResponse)
async def create_monitor(req: CreateMonitorRequest, request: Request) -> Response:
    from loopline.clock import now_ms
    from loopline.monitoring.schedule import next_run

    due = next_run(req.schedule, now_ms())  # the server's clock decides when it is due
    m = await on_store(
        request,
        lambda s: s.create_monitor(
            req.name,
            req.target,
            reference=req.reference,
            window=req.window,
            schedule=req.schedule,
            config=req.config,
            next_run_ms=due,
            replace=req.replace,
        ),
    )
    return json_response({"monitor": _types().monitor_to_json(m)})


@router.post("/delete")
@documented(answer=Empty)
async def delete_monitor(req: NameRequest, request: Request) -> Response:
    await on_store(request, lambda s: s.delete_monitor(req.name))
    return json_response({})


@router.get("/due", response_model=MonitorsResponse)
@documented(DueQuery, errors=())
async def due_monitors(request: Request) -> Response:
    body = await params(request)
    from loopline.clock import now_ms

    at = optional_int(body, "at_ms") or now_ms()
    items = await on_store(request, lambda s: s.due_monitors(at))
    return json_response({"monitors": [_types().monitor_to_json(m) for m in items]})


@router.get("/runs", response_model=RunsResponse)
@documented(RunsQuery)
async def list_runs(request: Request) -> Response:
    body = await params(request)
    name, limit = required_str(body, "name"), _limit(body, 100, MAX_RUNS)
    runs = await on_store(request, lambda s: s.list_runs(name, limit))
    return json_response({"runs": [_types().run_to_json(r) for r in runs]})


@router.post("/run", response_model=RunResultResponse, responses=ACCEPTED)
async def run_monitor(req: RunRequest, request: Request) -> Response:
    """Run a monitor now, as a job (``server/jobs.py``): its result when done, or ``202 {"job_id"}``
    to poll. ``"wait": false`` answers 202 at once; the outcome is then also in ``runs``/``report``."""
    if not req.wait:  # 404 now, not only in the job
        await on_store(request, lambda s: s.get_monitor(req.name))
    ctx = context(request)

    def run(progress: ProgressFn) -> dict[str, Any]:
        result = _store(ctx).run_monitor(req.name, at_ms=req.at_ms, progress=progress)
        return dict(_types().result_to_json(result))

    return await run_job(request, "monitors.run", run, wait=None if req.wait else 0.0)


@router.get("/history", response_model=HistoryResponse)
@documented(HistoryQuery)
async def monitor_history(request: Request) -> Response:
    body = await params(request)
    keys = request.query_params.getlist("key") or None
    name, since = required_str(body, "name"), optional_int(body, "since_ms")
    limit = _limit(body, 10_000, MAX_POINTS)
    points = await on_store(request, lambda s: s.history(name, keys, since_ms=since, limit=limit))
    return json_response(
        {"time_ms": [p[0] for p in points], "key": [p[1] for p in points], "value": [p[2] for p in points]}
    )


@router.get("/report", response_model=ReportResponse)
@documented(ReportQuery)
async def monitor_report(request: Request) -> Response:
    body = await params(request)
    name, run_id = required_str(body, "name"), optional_int(body, "run_id")
    report = await on_store(request, lambda s: s.get_report(name, run_id))
    return json_response({"report": report.to_dict(histograms=True) if report is not None else None})


@router.get("/latest-metrics")
@documented(answer=LatestMetricsResponse, errors=())
async def latest_metrics(request: Request) -> Response:
    return json_response({"monitors": await on_store(request, lambda s: s.latest_metrics())})


def _prometheus(latest: dict[str, dict[str, float]]) -> Iterator[Any]:
    """Gauges named by what they measure, labelled by monitor (and column or metric)."""
    from prometheus_client.core import GaugeMetricFamily

    share = GaugeMetricFamily(
        "loopline_monitor_drift_share", "Share of drifted columns in the latest run.", labels=["monitor"]
    )
    dataset = GaugeMetricFamily(
        "loopline_monitor_dataset_drift", "1 when the latest run found dataset drift.", labels=["monitor"]
    )
    rows = GaugeMetricFamily(
        "loopline_monitor_window_rows", "Rows in the latest run's window.", labels=["monitor"]
    )
    stat = GaugeMetricFamily(
        "loopline_monitor_drift_score",
        "Drift statistic per column (latest run).",
        labels=["monitor", "column"],
    )
    drifted = GaugeMetricFamily(
        "loopline_monitor_column_drifted",
        "1 when the column drifted (latest run).",
        labels=["monitor", "column"],
    )
    perf = GaugeMetricFamily(
        "loopline_monitor_performance",
        "Model performance on labelled rows (latest run).",
        labels=["monitor", "metric"],
    )
    quality = GaugeMetricFamily(
        "loopline_monitor_data_quality",
        "Data-quality shares per column (latest run).",
        labels=["monitor", "check", "column"],
    )
    for monitor, figures in sorted(latest.items()):
        for key, value in figures.items():
            head, _, rest = key.partition(".")
            if key == "drift_share":
                share.add_metric([monitor], value)
            elif key == "dataset_drift":
                dataset.add_metric([monitor], value)
            elif key == "rows":
                rows.add_metric([monitor], value)
            elif head == "drift":
                stat.add_metric([monitor, rest], value)
            elif head == "drifted":
                drifted.add_metric([monitor, rest], value)
            elif head == "performance":
                perf.add_metric([monitor, rest], value)
            elif head in ("missing_share", "new_category_share", "out_of_range_share"):
                quality.add_metric([monitor, head, rest], value)
    yield from (share, dataset, rows, stat, drifted, perf, quality)


@metrics_router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every monitor's latest figures and the loop's DORA figures as Prometheus gauges (read from the
    metadata store per scrape)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    from loopline.automation.dora import DoraCollector, compute_dora
    from loopline.automation.sql_store import SqlAutomationStore
    from loopline.clock import now_ms

    latest = await on_store(request, lambda s: s.latest_metrics())
    ctx, now = context(request), now_ms()
    # The loop's DORA figures over the last 30 days ride along (computed here, off the event loop).
    dora = await blocking(
        compute_dora, ctx.engine, ctx.workspace, since_ms=now - 30 * 86_400_000, until_ms=now
    )
    rollouts = await blocking(SqlAutomationStore(ctx).rollout_counts)

    class _Collector:
        def collect(self) -> Iterator[Any]:
            return _prometheus(latest)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    registry.register(DoraCollector(lambda: dora))
    registry.register(_RolloutCollector(rollouts))
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _RolloutCollector:
    """The loop's rollouts per policy and state, and when each state was last reached: a rollback
    shows as ``loopline_loop_rollouts{state="rolled_back"}`` going up (alert on its increase)."""

    def __init__(self, counts: dict[tuple[str, str], tuple[int, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["policy", "state"]
        total = GaugeMetricFamily("loopline_loop_rollouts", "Rollouts by policy and state.", labels=labels)
        last = GaugeMetricFamily(
            "loopline_loop_last_change_timestamp_seconds",
            "When a rollout of the policy last reached the state.",
            labels=labels,
        )
        for (policy, state), (n, ms) in sorted(self.counts.items()):
            total.add_metric([policy, state], n)
            last.add_metric([policy, state], ms / 1000)
        yield total
        yield last


MONITOR_WORKERS = 2  # workspaces whose due monitors run at once (their statistics are CPU-bound)


def _run_due_in(ctx: Context, at_ms: int | None) -> int:
    """Run every monitor of ``ctx``'s workspace due at ``at_ms`` (default: when the round begins,
    which may be a while after it was asked for) whose slot this process claims."""
    from loopline.monitoring.runner import MonitorRunner  # here, in the thread: it imports NumPy

    return len(MonitorRunner(ctx, _store(ctx)).run_due(at_ms))


class MonitorScheduler:
    """The server's monitor scheduler, for every workspace. A round asks the database once which
    workspaces have a monitor due (``due_workspaces``), then runs each such workspace's due monitors
    on a small pool, in its own context (its artifact store; events as the server's user, in it).
    A workspace still busy with its last round is skipped, never waited for: one slow monitor holds
    up its own workspace only. Each due slot is claimed in the database before it runs."""

    def __init__(self, context: Context, workers: int = MONITOR_WORKERS) -> None:
        self.context = context
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="loopline-monitors")
        self.running: dict[str, asyncio.Future[int]] = {}

    async def start_due(self, at_ms: int | None = None) -> list[asyncio.Future[int]]:
        """Start a round in each workspace with a monitor due and no round running; returns them."""
        from loopline.clock import now_ms
        from loopline.monitoring.sql_store import due_workspaces

        at = now_ms() if at_ms is None else at_ms
        self.running = {w: f for w, f in self.running.items() if not f.done()}
        loop = asyncio.get_running_loop()
        # Not on the pool: its workers may all be busy with slow workspaces, which must not stop
        # the others' rounds from starting.
        due = await asyncio.to_thread(due_workspaces, self.context.engine, at)
        started = []
        for workspace in due:
            if workspace in self.running:
                continue
            ctx = self.context.scoped(workspace=workspace)
            future = self.running[workspace] = loop.run_in_executor(self.pool, _run_due_in, ctx, at_ms)
            future.add_done_callback(functools.partial(_log_round, workspace))
            started.append(future)
        return started

    async def serve(self, poll: float) -> None:
        try:
            while True:
                # Wait first: a round imports the statistics stack (NumPy, SciPy), which must not slow
                # the server's start; schedules have minute granularity anyway.
                await asyncio.sleep(poll)
                try:
                    await self.start_due()
                except Exception:
                    log.exception("monitor scheduler round failed")
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _log_round(workspace: str, future: asyncio.Future[int]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("monitors of workspace %s failed", workspace, exc_info=future.exception())


@contextlib.asynccontextmanager
async def background(app: FastAPI) -> AsyncIterator[None]:
    """Work the long-running server does for monitoring while it is up (entered by the app's lifespan).

    Also serves ``GET /metrics`` if the app did not include ``metrics_router`` itself.
    """
    if not any(getattr(r, "path", None) == "/metrics" for r in app.router.routes):
        app.include_router(metrics_router)
    state = app.state.loopline
    poll = state.settings.monitor_poll
    task = asyncio.create_task(MonitorScheduler(state.context).serve(poll)) if poll > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["MonitorScheduler", "background", "metrics_router", "router"]
