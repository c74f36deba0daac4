"""The monitoring routes under ``/api/2.0/loopline``, ``GET /metrics``, and the monitor scheduler.

Routes:

=======================================  ==========================================================
``GET  monitors/list``                   every monitor, with its last and next run
``GET  monitors/get?name=``              one monitor
``POST monitors/run`` ``{"name"}``       run it now; returns the run's status, metrics and alerts
``GET  monitors/history?name=&key=``     its metrics over time, as columns
``GET  /metrics``                        Prometheus gauges of every monitor's latest figures
=======================================  ==========================================================

``background(app)`` runs, while ``loopline server`` is up, every scheduled monitor that is due (its
cron ``schedule``), checking every ``LOOPLINE_MONITOR_POLL`` seconds (30), each run in a worker thread
so that the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from loopline.server.http import blocking, json_response, params, required_str

log = logging.getLogger("loopline.server")
router = APIRouter(prefix="/api/2.0/loopline")
metrics_router = APIRouter()  # GET /metrics at the root, where Prometheus looks for it


def _monitors(request_or_app: Any) -> Any:
    """One ``Monitors`` per app, made on first use (the route modules hold no global state)."""
    app = request_or_app.app if isinstance(request_or_app, Request) else request_or_app
    mons = getattr(app.state, "loopline_monitors", None)
    if mons is None:
        from loopline.monitoring.monitors import Monitors

        st = app.state.loopline
        mons = Monitors(st.settings, engine=st.tracking.engine, artifacts=st.artifacts)
        app.state.loopline_monitors = mons
    return mons


def _monitor_json(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "uri": m.uri,
        "target": m.target,
        "reference": m.reference or None,
        "window": m.window,
        "schedule": m.schedule or None,
        "webhooks": m.config.get("webhooks", []),
        "last_run_ms": m.last_run_ms,
        "next_run_ms": m.next_run_ms,
        "created_ms": m.created_ms,
    }


@router.get("/monitors/list")
async def list_monitors(request: Request) -> Response:
    mons = _monitors(request)
    items = await blocking(mons.list_monitors)
    return json_response({"monitors": [_monitor_json(m) for m in items]})


@router.get("/monitors/get")
async def get_monitor(request: Request) -> Response:
    body = await params(request)
    m = await blocking(_monitors(request).get, required_str(body, "name"))
    return json_response({"monitor": _monitor_json(m)})


@router.post("/monitors/run")
async def run_monitor(request: Request) -> Response:
    body = await params(request)
    result = await blocking(_monitors(request).run, required_str(body, "name"))
    return json_response(
        {
            "run_id": result.run.id,
            "status": result.run.status,
            "rows": result.run.rows,
            "new_rows": result.run.new_rows,
            "reference": result.reference,
            "metrics": result.metrics,
            "alerts": result.alerts,
            "report": result.report.to_dict() if result.report is not None else None,
        }
    )


@router.get("/monitors/history")
async def monitor_history(request: Request) -> Response:
    body = await params(request)
    keys = request.query_params.getlist("key") or None
    points = await blocking(_monitors(request).history, required_str(body, "name"), keys)
    return json_response(
        {"time_ms": [p[0] for p in points], "key": [p[1] for p in points], "value": [p[2] for p in points]}
    )


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
    """Every monitor's latest figures as Prometheus gauges (read from the metadata store per scrape)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    latest = await blocking(_monitors(request).store.latest_metrics)

    class _Collector:
        def collect(self) -> Iterator[Any]:
            return _prometheus(latest)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def run_due(app: FastAPI) -> int:
    """Run every monitor that is due now (each in a thread); returns how many ran."""
    mons = _monitors(app)
    due = await asyncio.to_thread(mons.due)
    for m in due:
        try:
            result = await asyncio.to_thread(mons.run, m.name)
            log.info("monitor %s: %s (%d rows)", m.name, result.run.status, result.run.rows)
        except Exception:  # one broken monitor (its failure is recorded) must not stop the others
            log.exception("monitor %s failed", m.name)
    return len(due)


async def _schedule_loop(app: FastAPI, poll: float) -> None:
    while True:
        # Wait first: a round imports the statistics stack (NumPy, SciPy), which must not slow
        # the server's start; schedules have minute granularity anyway.
        await asyncio.sleep(poll)
        try:
            await run_due(app)
        except Exception:
            log.exception("monitor scheduler round failed")


@contextlib.asynccontextmanager
async def background(app: FastAPI) -> AsyncIterator[None]:
    """Work the long-running server does for monitoring while it is up (entered by the app's lifespan).

    Also serves ``GET /metrics`` if the app did not include ``metrics_router`` itself.
    """
    if not any(getattr(r, "path", None) == "/metrics" for r in app.router.routes):
        app.include_router(metrics_router)
    poll = float(os.environ.get("LOOPLINE_MONITOR_POLL", "30") or 30)
    task = asyncio.create_task(_schedule_loop(app, poll)) if poll > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["background", "metrics_router", "router", "run_due"]
