"""The UI's pages under ``/ui/``, its chart data under ``/ui/api/``, and its files under ``/ui/static/``.

Each page reads the request's stores (``server/state.py``) off the event loop and renders a template;
a request from htmx (``HX-Request``) for the runs table gets the table alone. Errors a user can cause
(a bad filter, a run that is not there) come back as the page with the message, not as JSON.
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from loopline.artifacts.digests import CHUNK
from loopline.automation.dora import read_dora
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import RolloutState
from loopline.errors import InvalidInput, LooplineError, NotFound
from loopline.metadata.lineage import list_events
from loopline.server import mlflow_artifacts
from loopline.server.http import blocking, json_response
from loopline.server.state import context, registry, tracking
from loopline.server.ui import (
    artifact_view,
    compare,
    dataset_pages,
    deployment_view,
    downsample,
    feature_pages,
    job_pages,
    lineage_view,
    monitor_pages,
    pipeline_pages,
    runs_table,
)
from loopline.server.ui.pages import POLL_S, error_page, int_param, is_fragment
from loopline.server.ui.templating import STATIC, render
from loopline.tracking.lineage import SqlLineageReader
from loopline.uris import experiment_uri, parse, run_uri

router = APIRouter(prefix="/ui", include_in_schema=False)

MAX_CHART_BUCKETS = 2_000  # up to 4,000 points per series: more than a chart has pixel columns
DEFAULT_CHART_BUCKETS = 500


# ---- experiments and runs ------------------------------------------------------------------------


@router.get("/")
async def experiments(request: Request) -> Response:
    token = request.query_params.get("page_token") or None
    try:
        page = await blocking(tracking(request).search_experiments, "ACTIVE_ONLY", 100, None, None, token)
    except LooplineError as e:
        return error_page(request, e)
    return render(request, "experiments.html", title="Experiments", page=page, nav="experiments")


@router.get("/experiments/{experiment_id}")
async def experiment(request: Request, experiment_id: str) -> Response:
    q = runs_table.RunsQuery.from_params(request.query_params, request.query_params.getlist("col"))
    store = tracking(request)
    try:
        exp = await blocking(store.get_experiment, experiment_id)
    except LooplineError as e:
        return error_page(request, e)
    error: LooplineError | None = None
    table: runs_table.RunsTable | None = None
    try:
        table = await blocking(runs_table.load, store, experiment_id, q)
    except InvalidInput as e:  # a bad filter or sort: the page shows why, with the form to fix it
        error = e
    args: dict[str, Any] = dict(
        title=exp.name, experiment=exp, q=q, table=table, error=error, nav="experiments", uri=experiment_uri
    )
    status = 400 if error else 200
    if is_fragment(request):
        return render(request, "_runs_table.html", status_code=status, **args)
    return render(request, "runs.html", status_code=status, **args)


@router.get("/runs/{run_id}")
async def run(request: Request, run_id: str) -> Response:
    store = tracking(request)
    try:
        r = await blocking(store.get_run, run_id)
        exp = await blocking(store.get_experiment, r.info.experiment_id)
    except LooplineError as e:
        return error_page(request, e)
    metrics = sorted(r.data.latest_metrics, key=lambda m: m.key)
    tags = {k: v for k, v in sorted(r.data.tags.items()) if not k.startswith("mlflow.")}
    system_tags = {k: v for k, v in sorted(r.data.tags.items()) if k.startswith("mlflow.")}
    return render(
        request,
        "run.html",
        title=r.info.run_name or r.info.run_id,
        run=r,
        experiment=exp,
        metrics=metrics,
        tags=tags,
        system_tags=system_tags,
        lineage_uri=run_uri(r.info.run_id),
        series=[
            {"id": r.info.run_id, "label": r.info.run_name or r.info.run_id[:8], "color": compare.COLORS[0]}
        ],
        nav="experiments",
    )


@router.get("/runs/{run_id}/artifacts")
async def run_artifacts(request: Request, run_id: str) -> Response:
    """``?path=``: a folder's listing, or a file's preview beside its folder's listing; the fragment
    alone for htmx (the run page's artifact browser), else a page of its own."""
    args: dict[str, Any] = dict(run_id=run_id, folder="", files=[], preview=None, error=None)
    status = 200
    try:
        rel = mlflow_artifacts.artifact_rel_path(request.query_params.get("path", ""))
        r = await blocking(tracking(request).get_run, run_id)
        location = r.info.artifact_uri
        files = await mlflow_artifacts.list_location(request, location, rel)
        folder = rel
        if rel and not files:  # a file (a folder lists something; an empty or missing one is NotFound)
            args["preview"] = await blocking(_preview, request, location, rel)
            folder = posixpath.dirname(rel)
            files = await mlflow_artifacts.list_location(request, location, folder)
        args.update(folder=folder, files=files, crumbs=artifact_view.crumbs(folder))
    except LooplineError as e:
        args.update(error=e, crumbs=artifact_view.crumbs(""))
        status = e.status_code
    template = "_artifacts.html" if is_fragment(request) else "artifacts.html"
    return render(request, template, status_code=status, title="Artifacts", nav="experiments", **args)


def _preview(request: Request, location: str, rel: str) -> artifact_view.Preview:
    with mlflow_artifacts.open_location(request, location, rel) as f:
        return artifact_view.preview(f, rel)


@router.get("/runs/{run_id}/artifacts/raw")
async def run_artifact_raw(request: Request, run_id: str) -> Response:
    """One file of the run, as an image or HTML report the browser shows (sandboxed: no script of
    it runs as the UI's origin) or, any other kind, as a download."""
    rel = mlflow_artifacts.artifact_rel_path(request.query_params.get("path", ""))
    r = await blocking(tracking(request).get_run, run_id)
    f = await blocking(mlflow_artifacts.open_location, request, r.info.artifact_uri, rel)
    media = artifact_view.media_type(rel)
    disposition = "attachment" if media == "application/octet-stream" else "inline"
    name = quote(posixpath.basename(rel))
    headers = {
        "Content-Security-Policy": "sandbox",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{name}",
    }
    return StreamingResponse(_chunks(f), media_type=media, headers=headers)


async def _chunks(f: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await blocking(f.read, CHUNK):
            yield chunk
    finally:
        f.close()


@router.get("/compare")
async def compare_runs(request: Request) -> Response:
    """``?run=<id>&run=<id>…``: the runs' params diff, latest metrics, curves and parallel axes."""
    try:
        c = await blocking(compare.load, tracking(request), request.query_params.getlist("run"))
    except LooplineError as e:
        return error_page(request, e)
    series = [
        {"id": r.info.run_id, "label": r.info.run_name or r.info.run_id[:8], "color": color}
        for r, color in zip(c.runs, c.colors, strict=True)
    ]
    return render(request, "compare.html", title="Compare runs", c=c, series=series, nav="experiments")


@router.get("/api/metric")
async def metric_points(request: Request) -> Response:
    """``?run_id=&key=&x=step|time&buckets=&min=&max=`` → ``{"x": […], "y": […], "exact", "total"}``:
    the points of one metric in x order, downsampled on the server (min and max per bucket) unless the
    range holds at most ``2 * buckets`` points; a zoomed chart asks again with ``min``/``max``."""
    qp = request.query_params
    run_id, key = qp.get("run_id", ""), qp.get("key", "")
    if not run_id or not key:
        raise InvalidInput("Missing run_id or key.", hint="Call /ui/api/metric?run_id=<run>&key=<metric>.")
    x_axis = qp.get("x", "step")
    if x_axis not in ("step", "time"):
        raise InvalidInput(f"Invalid x {x_axis!r}.", hint="Use x=step or x=time.")
    buckets = int_param(qp.get("buckets"), DEFAULT_CHART_BUCKETS, "buckets")
    if not 1 <= buckets <= MAX_CHART_BUCKETS:
        raise InvalidInput(f"buckets must be between 1 and {MAX_CHART_BUCKETS}, got {buckets}.")
    lo, hi = _float(qp.get("min"), "min"), _float(qp.get("max"), "max")
    store = tracking(request)

    def points() -> downsample.Series:
        within = None  # a zoom reads its range only (time bounds in ms, as stored)
        if lo is not None or hi is not None:
            scale = 1 if x_axis == "step" else 1000
            column = "step" if x_axis == "step" else "timestamp"
            within = (column, None if lo is None else lo * scale, None if hi is None else hi * scale)
        rows, _ = store.metric_history_rows(run_id, key, within=within)
        if not rows and within is not None:
            return downsample.Series([], [], True, 0)
        if not rows:
            raise NotFound(f"Run {run_id} has no metric {key!r}.", hint="Pick a metric the run logged.")
        a = np.array(rows, dtype=np.float64)  # columns: timestamp, step, value, is_nan
        y = np.where(a[:, 3] > 0, np.nan, a[:, 2])
        return downsample.min_max(a[:, 1] if x_axis == "step" else a[:, 0] / 1000, y, buckets, lo, hi)

    s = await blocking(points)
    return json_response({"x": s.x, "y": s.y, "exact": s.exact, "total": s.total})


def _float(value: str | None, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"Invalid {name} {value!r}: expected a number.") from None


# ---- models ----------------------------------------------------------------------------------------


@router.get("/models")
async def models(request: Request) -> Response:
    token = request.query_params.get("page_token") or None
    try:
        page = await blocking(registry(request).search_registered_models, None, 100, ["name ASC"], token)
    except LooplineError as e:
        return error_page(request, e)
    return render(request, "models.html", title="Models", page=page, nav="models")


@router.get("/models/{name}")
async def model(request: Request, name: str) -> Response:
    store = registry(request)
    try:
        m = await blocking(store.get_registered_model, name)
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        versions = await blocking(
            store.search_model_versions, f"name = '{quoted}'", 1000, ["version_number DESC"]
        )
    except LooplineError as e:
        return error_page(request, e)
    aliases_of: dict[int, list[str]] = {}
    for alias, version in sorted(m.aliases.items()):
        aliases_of.setdefault(version, []).append(alias)
    return render(
        request,
        "model.html",
        title=m.name,
        model=m,
        versions=versions.items,
        aliases_of=aliases_of,
        nav="models",
    )


# ---- deployments -----------------------------------------------------------------------------------


@router.get("/deployments")
async def deployments(request: Request) -> Response:
    rows = await blocking(deployment_view.list_all, context(request))
    return render(request, "deployments.html", title="Deployments", rows=rows, nav="deployments")


@router.get("/deployments/{name}")
async def deployment(request: Request, name: str) -> Response:
    """The deployment's page; htmx's poll (every few seconds) gets its live part alone."""
    try:
        d = await blocking(deployment_view.load, context(request), name)
    except LooplineError as e:
        return error_page(request, e)
    template = "_deployment_live.html" if is_fragment(request) else "deployment.html"
    return render(request, template, title=name, d=d, nav="deployments", poll_s=POLL_S)


@router.get("/api/deployment-traffic")
async def deployment_traffic(request: Request) -> Response:
    """``?name=`` → the deployment's requests/min, error rate and p99 latency per minute of the last
    hour (``deployment_view.traffic``), which its page re-fetches every few seconds."""
    name = request.query_params.get("name", "")
    if not name:
        raise InvalidInput("Missing name.", hint="Call /ui/api/deployment-traffic?name=<deployment>.")
    return json_response(await blocking(deployment_view.traffic, context(request), name))


# ---- the loop and its audit trail ------------------------------------------------------------------


@router.get("/loop")
async def loop(request: Request) -> Response:
    """Policies, approvals waiting, and the newest rollouts with the gate's verdict on each."""
    store = SqlAutomationStore(context(request))
    policies = await blocking(store.list_policies)
    rollouts = await blocking(store.list_rollouts, limit=100)
    waiting = [r for r in rollouts if r.state is RolloutState.AWAITING_APPROVAL]
    return render(
        request,
        "loop.html",
        title="The loop",
        policies=policies,
        rollouts=rollouts,
        waiting=waiting,
        nav="loop",
    )


EVENT_WINDOWS = ("7d", "30d", "90d")


@router.get("/events")
async def events(request: Request) -> Response:
    """``?uri=&limit=&window=``: the audit trail (newest first, of one object if ``uri``) under the
    DORA figures of the window."""
    qp = request.query_params
    uri, window = qp.get("uri", "").strip(), qp.get("window", "30d")
    if window not in EVENT_WINDOWS:
        window = "30d"
    limit = min(max(int_param(qp.get("limit"), 200, "limit"), 1), 1000)
    ctx = context(request)
    trail = await blocking(list_events, ctx.engine, ctx.workspace, uri or None, limit)
    dora = await blocking(read_dora, ctx, window)
    return render(
        request,
        "events.html",
        title="Events",
        events=trail,
        dora=dora,
        uri=uri,
        window=window,
        windows=EVENT_WINDOWS,
        limit=limit,
        nav="events",
    )


# ---- lineage ---------------------------------------------------------------------------------------


@router.get("/lineage")
async def lineage(request: Request) -> Response:
    uri = request.query_params.get("uri", "").strip()
    if not uri:
        return render(request, "lineage.html", title="Lineage", graph=None, uri="", nav="lineage")
    try:
        parse(uri)
    except InvalidInput as e:
        return render(
            request,
            "lineage.html",
            status_code=400,
            title="Lineage",
            graph=None,
            uri=uri,
            error=e,
            nav="lineage",
        )
    ctx = context(request)
    reader = SqlLineageReader(ctx.engine, ctx.workspace)
    up = await blocking(reader.upstream, uri)
    down = await blocking(reader.downstream, uri)
    graph = lineage_view.build(uri, up, down)
    return render(request, "lineage.html", title=f"Lineage of {uri}", graph=graph, uri=uri, nav="lineage")


# ---- files -----------------------------------------------------------------------------------------


@router.get("/static/{path:path}")
async def static(path: str) -> Response:
    """A file of the installed package's ``static/``: the UI never loads anything from elsewhere."""
    root = STATIC.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.name == "VENDOR.json":
        raise NotFound(f"No UI file {path!r}.")
    # Vendored files are named by version in VENDOR.json; ours change with Loopline: revalidate them.
    return FileResponse(target, headers={"Cache-Control": "no-cache"}, media_type=_media_type(target))


def _media_type(p: Path) -> str | None:
    return {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}.get(p.suffix)


# ---- the other domains' pages, each in a module of its own ------------------------------------------

router.include_router(dataset_pages.router)
router.include_router(monitor_pages.router)
router.include_router(pipeline_pages.router)
router.include_router(job_pages.router)
router.include_router(feature_pages.router)

__all__ = ["router"]
