"""The web UI at scale, against MLflow's: N runs x 20 metrics, and one metric of 100,000 points.

``python -m benchmarks.ui [--runs N] [--repeat R] [--browser-repeat B]`` (not part of the test suite,
nor of ``python -m benchmarks``: seeding 100,000 runs into each store takes minutes the first time).

**The workload**, the same in both stores (one fixed random seed): an experiment ``wide`` of N runs,
each FINISHED with two params (``lr``, ``depth``) and 20 metrics (``m0``…``m19``, one point each), and
an experiment ``long`` with one run whose metric ``loss`` has 100,000 points (steps 0…99,999).

**Seeding** is done once per N, in a fresh worker process per system, and cached under
``benchmarks/.cache/ui-<N>`` (Loopline) and ``benchmarks/.cache/mlflow-ui-<N>`` (MLflow), each with a
``seeded.json`` written last (a store without it is seeded again from scratch):

* Loopline: ``SqlTrackingStore.create_run`` with each run's params, metrics and final status in its one
  transaction; the long metric through ``log_batch`` in batches of 1,000.
* MLflow: its store's public calls (``SqlAlchemyStore.create_run`` + ``log_batch`` + ``update_run_info``, one
  run at a time) managed 10 runs/s over 1,000 runs on this 2-core machine (2.7 hours for 100,000, 16 minutes
  for 10,000), so the wide experiment is inserted through the ``SqlAlchemyStore``'s own SQLAlchemy models
  (``runs``, ``tags``, ``params``, ``metrics``, ``latest_metrics``) in transactions of 5,000 runs: the same
  rows, column for column, those three calls write (``mlflow.runName`` tag, source type ``UNKNOWN``, the
  artifact URI under the experiment's location). The experiments and the long run go through
  ``SqlAlchemyStore`` itself (``create_experiment``, ``create_run``, ``log_batch`` of 1,000).

On the 2-core machine: Loopline 397 runs/s (100,000 runs and the long metric in 253 s), MLflow
1,235 runs/s (93 s), so both are measured at N = 100,000 (``--runs`` picks another N).

**Measured**, one system at a time (``mlflow server --backend-store-uri sqlite:///… --workers 1`` or
``loopline server --store-uri sqlite:///… --workers 1`` on 127.0.0.1, left to settle after its first
200 on ``/health``):

* In Chromium (Playwright, headless, ``/usr/bin/chromium``, one fresh browser per system, a 1400x900
  viewport): the time from the start of a navigation (``performance.now()`` in the page, whose origin is the
  navigation's start) to the first animation frame in which

  - *runs*: the runs table shows its first row's run link (Loopline: ``#runs-table tbody tr[data-run-id] a``;
    MLflow, ``#/experiments/<id>/runs``: an ag-grid row ``.ag-row[row-id] a`` to the run), for the experiment
    of N runs. Each UI's own first page: 50 rows for Loopline, 100 for MLflow. (MLflow 3.18 opens an
    experiment on its GenAI "Overview"; its "Training runs" page is the runs table. Its assistant side panel
    opens too, as it does for a user.)
  - *chart*: the run's chart of the 100,000-point metric holds its data and has drawn it (Loopline,
    ``/ui/runs/<id>``: ``figure.chart[data-loaded]`` with the points in its uPlot instance; MLflow,
    ``#/experiments/<id>/runs/<id>/model-metrics``, the run page's "Model metrics" tab: the Plotly chart's
    ``data`` holds the points and its line path is drawn).

  The first navigation of each (empty browser cache) is reported alone as "first visit"; then the
  median (and worst) of ``--browser-repeat`` navigations from ``about:blank`` (cache warm, as for a
  returning user).
* Over HTTP (httpx, one keep-alive connection, one warm-up, then the median and worst of ``--repeat``), the
  request each UI makes for the data: the runs table's first page (Loopline: the page itself, HTML; MLflow:
  the ``POST /ajax-api/2.0/mlflow/runs/search`` its runs table sends, JSON, as captured from the browser: the
  last search of that page, for 100 runs, after a first one for 50 that MLflow sends on every page of an
  experiment), the same sorted by ``metrics.m3`` and filtered by ``metrics.m0 < 0.5``; the 100,000-point
  metric as each chart asks for it (Loopline: ``/ui/api/metric`` with 500 buckets, at most 1,000 points;
  MLflow: ``get-history-bulk-interval`` with ``max_results=320``), and a zoom to 1,000 steps (Loopline: exact;
  MLflow: sampled to 320 points, as its chart asks). A request with no answer in 300 s is reported as such;
  after it, or after any request slower than 5 s (then timed once more only), the server is left to settle,
  since it goes on with the request its client gave up on.

Goals (issue 21), on Loopline's figures: the runs page's first page served in < 300 ms and rendered
in < 1 s; the 100,000-point chart in < 1 s. Results: a table, and ``benchmarks/results/ui.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import random
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx

from benchmarks._harness import (
    ForeignLoad,
    Report,
    Row,
    WorkerError,
    bytecode_as_installed,
    clean_env,
    log,
    median,
    run_worker,
    terminating_on_sigterm,
    tracking_server,
    worker_main,
)

METRICS = 20
POINTS = 100_000
CACHE = Path(__file__).parent / ".cache"
CHROMIUM = Path("/usr/bin/chromium")
T0 = 1_700_000_000_000  # the first run's start time (ms)
MLFLOW_CHUNK = 5_000  # runs per transaction when seeding MLflow
HTTP_TIMEOUT = 300.0  # s: MLflow sorts 100,000 runs by a metric for minutes
SLOW_MS, SLOW_REPEAT = 5000.0, 1  # a request slower than SLOW_MS is timed SLOW_REPEAT times only
BROWSER_TIMEOUT = 120.0  # s, for a page to draw
ZOOM_LOOPLINE = "&min=50000&max=50999"  # 1,000 steps, as a drag across the chart asks
ZOOM_MLFLOW = "&start_step=50000&end_step=50999"

# ---- seeding (worker processes) ------------------------------------------------------------------


def _population(runs: int) -> tuple[random.Random, list[tuple[str, str, list[float]]]]:
    """Each run's (lr, depth, 20 metric values), drawn in the same order for both systems."""
    rng = random.Random(0)
    out = []
    for _ in range(runs):
        lr = str(rng.choice([0.1, 0.01, 0.001]))
        depth = str(rng.randint(2, 12))
        out.append((lr, depth, [rng.random() for _ in range(METRICS)]))
    return rng, out


def _loss(rng: random.Random, step: int) -> float:
    return 1 / (1 + step / 1000) + rng.random() * 0.05


def seed_loopline(p: dict[str, Any]) -> dict[str, Any]:
    from loopline.context import shared_engine
    from loopline.tracking.sql_store import SqlTrackingStore
    from loopline.tracking.types import Metric, Param, RunStatus

    runs = int(p["runs"])
    store = SqlTrackingStore(shared_engine(f"sqlite:///{p['db']}"), actor="bench")
    started = time.perf_counter()
    exp_id = store.create_experiment("wide")
    rng, population = _population(runs)
    for i, (lr, depth, values) in enumerate(population):
        t = T0 + i * 1000
        store.create_run(
            exp_id,
            "bench",
            t,
            run_name=f"run-{i}",
            params=[Param("lr", lr), Param("depth", depth)],
            metrics=[Metric(f"m{k}", v, t, 0) for k, v in enumerate(values)],
            status=RunStatus.FINISHED,
            end_time=t + 500,
        )
    wide_seconds = time.perf_counter() - started
    long_exp = store.create_experiment("long")
    long_run = store.create_run(long_exp, "bench", T0, run_name="long").info.run_id
    for start in range(0, POINTS, 1000):
        batch = [Metric("loss", _loss(rng, s), T0 + s, s) for s in range(start, start + 1000)]
        store.log_batch(long_run, batch)
    total = store.count_runs([exp_id])
    if total != runs:
        raise RuntimeError(f"loopline store holds {total} runs, expected {runs}")
    return {
        "experiment_id": exp_id,
        "long_experiment_id": long_exp,
        "long_run_id": long_run,
        "wide_seconds": wide_seconds,
        "seconds": time.perf_counter() - started,
        "method": "SqlTrackingStore.create_run per run (params, metrics, status in one transaction)",
    }


def seed_mlflow(p: dict[str, Any]) -> dict[str, Any]:
    import sqlalchemy as sa
    from mlflow.entities import Metric
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    runs = int(p["runs"])
    store = SqlAlchemyStore(f"sqlite:///{p['db']}", p["artifacts"])  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    exp_id = store.create_experiment("wide")  # type: ignore[no-untyped-call]
    location = store.get_experiment(exp_id).artifact_location  # type: ignore[no-untyped-call]
    rng, population = _population(runs)
    for first in range(0, runs, MLFLOW_CHUNK):
        rows: dict[Any, list[dict[str, Any]]] = {SqlRun: [], SqlTag: [], SqlParam: [], SqlMetric: []}
        for i in range(first, min(runs, first + MLFLOW_CHUNK)):
            lr, depth, values = population[i]
            run_id, t, name = uuid.uuid4().hex, T0 + i * 1000, f"run-{i}"
            # The row create_run + update_run_info(FINISHED) write (checked column by column).
            rows[SqlRun].append(
                {
                    "run_uuid": run_id,
                    "name": name,
                    "source_type": "UNKNOWN",
                    "source_name": "",
                    "entry_point_name": "",
                    "user_id": "bench",
                    "status": "FINISHED",
                    "start_time": t,
                    "end_time": t + 500,
                    "source_version": "",
                    "lifecycle_stage": "active",
                    "artifact_uri": f"{location}/{run_id}/artifacts",
                    "experiment_id": int(exp_id),
                    "deleted_time": None,
                }
            )
            rows[SqlTag].append({"key": "mlflow.runName", "value": name, "run_uuid": run_id})
            rows[SqlParam] += [
                {"key": "lr", "value": lr, "run_uuid": run_id},
                {"key": "depth", "value": depth, "run_uuid": run_id},
            ]
            rows[SqlMetric] += [
                {"key": f"m{k}", "value": v, "timestamp": t, "step": 0, "is_nan": False, "run_uuid": run_id}
                for k, v in enumerate(values)
            ]
        rows[SqlLatestMetric] = rows[SqlMetric]  # one point each: the latest is that point
        with store.ManagedSessionMaker() as session:
            for model, values_ in rows.items():
                session.execute(sa.insert(model.__table__), values_)
    wide_seconds = time.perf_counter() - started
    long_exp = store.create_experiment("long")  # type: ignore[no-untyped-call]
    long_run = store.create_run(long_exp, "bench", T0, [], "long").info.run_id  # type: ignore[no-untyped-call]
    for start in range(0, POINTS, 1000):
        batch = [Metric("loss", _loss(rng, s), T0 + s, s) for s in range(start, start + 1000)]
        store.log_batch(long_run, batch, [], [])  # type: ignore[no-untyped-call]
    with store.ManagedSessionMaker() as session:
        total = session.query(SqlRun).filter(SqlRun.experiment_id == int(exp_id)).count()
    if total != runs:
        raise RuntimeError(f"mlflow store holds {total} runs, expected {runs}")
    return {
        "experiment_id": exp_id,
        "long_experiment_id": long_exp,
        "long_run_id": long_run,
        "wide_seconds": wide_seconds,
        "seconds": time.perf_counter() - started,
        "method": "SqlAlchemyStore's models, bulk INSERT of the rows create_run + log_batch + "
        f"update_run_info write, {MLFLOW_CHUNK:,} runs a transaction",
    }


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "seed_loopline": seed_loopline,
    "seed_mlflow": seed_mlflow,
}


def seeded(system: str, runs: int) -> tuple[Path, dict[str, Any]]:
    """The system's cached store of ``runs`` runs (seeded now if missing or unfinished) and its facts."""
    home = CACHE / (f"ui-{runs}" if system == "loopline" else f"mlflow-ui-{runs}")
    marker = home / "seeded.json"
    if marker.exists():
        return home, dict(json.loads(marker.read_text()))
    if home.exists():
        shutil.rmtree(home)  # an interrupted seeding: start again
    home.mkdir(parents=True)
    log(f"seeding {system}: {runs:,} runs x {METRICS} metrics and one metric of {POINTS:,} points")
    params = {"runs": runs, "db": str(home / "store.db"), "artifacts": str(home / "artifacts")}
    facts = run_worker("ui", f"seed_{system}", params, clean_env(), timeout=4 * 3600)
    facts["runs"] = runs
    marker.write_text(json.dumps(facts, indent=2) + "\n")
    log(f"seeded {system} in {facts['seconds']:.0f} s ({runs / facts['wide_seconds']:,.0f} runs/s)")
    return home, facts


# ---- measuring -----------------------------------------------------------------------------------

# Each returns false until the thing is on screen, then {t: performance.now(), …what was drawn}.
LOOPLINE_ROWS = """() => {
  const a = document.querySelector('#runs-table tbody tr[data-run-id] a[href^="/ui/runs/"]');
  if (!a || a.getBoundingClientRect().height === 0) return false;
  return {t: performance.now(), rows: document.querySelectorAll('#runs-table tbody tr[data-run-id]').length};
}"""
MLFLOW_ROWS = """() => {
  const a = document.querySelector('.ag-row[row-id] a[href*="/runs/"]');
  if (!a || a.getBoundingClientRect().height === 0) return false;
  const rows = [...document.querySelectorAll('.ag-row[row-id]')]
    .filter((r) => r.querySelector('a[href*="/runs/"]')).map((r) => r.getAttribute('row-id'));
  return {t: performance.now(), rows: new Set(rows).size};
}"""
LOOPLINE_CHART = """() => {
  const fig = document.querySelector('figure.chart[data-key="loss"][data-loaded="true"]');
  const plot = fig && window.looplineCharts && window.looplineCharts.loss;
  if (!plot || !plot.data || !plot.data[0] || !plot.data[0].length) return false;
  const xs = plot.data[0];
  return {t: performance.now(), points: xs.length, last_step: xs[xs.length - 1]};
}"""
MLFLOW_CHART = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd.data || !gd.data.length || !gd.data[0].x || !gd.data[0].x.length) return false;
  const line = gd.querySelector('.scatterlayer .trace path.js-line');
  if (!line || (line.getAttribute('d') || '').length < 20) return false;
  const xs = gd.data[0].x;
  return {t: performance.now(), points: xs.length, last_step: xs[xs.length - 1]};
}"""


def browser_times(system: str, url: str, pages: dict[str, str], repeat: int) -> dict[str, Any]:
    """Per page: the first visit's time and ``repeat`` warm ones, what was drawn, and the API
    requests the UI sent (to replay them over HTTP)."""
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    ready = {
        "runs": LOOPLINE_ROWS if system == "loopline" else MLFLOW_ROWS,
        "chart": LOOPLINE_CHART if system == "loopline" else MLFLOW_CHART,
    }
    out: dict[str, Any] = {"requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        out["chromium"] = browser.version
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        visiting = ""  # the page whose first visit is under way, else ""

        def record(request: Any) -> None:
            if visiting and ("/ajax-api/" in request.url or "/ui/api/" in request.url):
                out["requests"].append(
                    {
                        "page": visiting,
                        "method": request.method,
                        "url": request.url,
                        "body": request.post_data,
                    }
                )

        page.on("request", record)
        for name, path in pages.items():
            samples, seen = [], {}
            try:
                for i in range(repeat + 1):
                    visiting = name if i == 0 else ""
                    page.goto("about:blank")
                    page.goto(url + path, wait_until="commit")
                    done = page.wait_for_function(ready[name], polling="raf", timeout=BROWSER_TIMEOUT * 1000)
                    seen = done.json_value()
                    samples.append(float(seen["t"]))
            except PlaywrightError as e:
                out[name] = {"error": str(e).splitlines()[0][:300]}
                continue
            out[name] = {"first": samples[0], "warm": samples[1:], "drawn": seen}
        out["page_errors"] = errors
        browser.close()
    return out


def http_times(
    client: httpx.Client,
    method: str,
    path: str,
    body: Any,
    repeat: int,
    check: Callable[[httpx.Response], None],
) -> dict[str, Any]:
    """``repeat`` timed requests after a checked warm-up (``SLOW_REPEAT`` if the warm-up took over
    ``SLOW_MS``), or the error that stopped them."""

    def once() -> tuple[float, httpx.Response]:
        t = time.perf_counter()
        answer = client.request(method, path, json=body)
        elapsed = (time.perf_counter() - t) * 1000
        answer.raise_for_status()
        return elapsed, answer

    sent = {"method": method, "path": path, "body": body}
    try:
        warm, answer = once()
        check(answer)
        samples = [once()[0] for _ in range(repeat if warm < SLOW_MS else SLOW_REPEAT)]
    except httpx.TimeoutException:
        return {**sent, "error": f"no answer within {HTTP_TIMEOUT:.0f} s"}
    except (httpx.HTTPError, RuntimeError) as e:
        return {**sent, "error": str(e)[:300]}
    return {**sent, "samples": samples, "bytes": len(answer.content)}


def _rows(n: int) -> Callable[[httpx.Response], None]:
    def check(answer: httpx.Response) -> None:
        got = (
            answer.text.count("data-run-id=")
            if "html" in answer.headers.get("content-type", "")
            else (len(answer.json().get("runs", [])))
        )
        if got != n:
            raise RuntimeError(f"{answer.request.url} returned {got} runs, expected {n}")

    return check


def _points(at_most: int, at_least: int) -> Callable[[httpx.Response], None]:
    def check(answer: httpx.Response) -> None:
        body = answer.json()
        got = len(body["x"]) if "x" in body else len(body.get("metrics", []))
        if not at_least <= got <= at_most:
            raise RuntimeError(f"{answer.request.url} returned {got} points, expected {at_least}…{at_most}")

    return check


# What each UI asks for when no browser captured it (MLflow 3.18's runs table and chart).
MLFLOW_RUNS_BODY: dict[str, Any] = {
    "experiment_ids": ["{exp}"],
    "run_view_type": "ACTIVE_ONLY",
    "max_results": 100,
    "order_by": ["attributes.start_time DESC"],
}


def measure(system: str, runs: int, repeat: int, browser_repeat: int) -> dict[str, Any]:
    home, facts = seeded(system, runs)
    exp, long_exp, long_run = facts["experiment_id"], facts["long_experiment_id"], facts["long_run_id"]
    server = tracking_server(system, home, store_uri=f"sqlite:///{home / 'store.db'}")
    out: dict[str, Any] = {"seed": facts}
    try:
        out["startup_seconds"] = server.start()
        out["settle_seconds"] = server.settle()
        if system == "loopline":
            pages = {"runs": f"/ui/experiments/{exp}", "chart": f"/ui/runs/{long_run}"}
        else:
            pages = {
                "runs": f"/#/experiments/{exp}/runs",
                "chart": f"/#/experiments/{long_exp}/runs/{long_run}/model-metrics",
            }
        out["pages"] = pages
        with ForeignLoad() as noise:
            if CHROMIUM.exists():
                out["browser"] = browser_times(system, server.url, pages, browser_repeat)
        out["foreign_cores_browser"] = noise.cores

        captured = out.get("browser", {}).get("requests", [])
        with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT) as client, ForeignLoad() as noise:
            cases: dict[str, tuple[str, str, Any, Callable[[httpx.Response], None]]] = {}
            if system == "loopline":
                runs_path = pages["runs"]
                metric = next(
                    (r["url"] for r in captured if "/ui/api/metric" in r["url"]),
                    f"/ui/api/metric?run_id={long_run}&key=loss&x=step&buckets=500",
                )
                metric = metric.removeprefix(server.url)
                cases = {
                    "runs": ("GET", runs_path, None, _rows(50)),
                    "runs_sorted": ("GET", runs_path + "?sort=metrics.m3&dir=desc", None, _rows(50)),
                    "runs_filtered": ("GET", runs_path + "?filter=metrics.m0+%3C+0.5", None, _rows(50)),
                    "metric": ("GET", metric, None, _points(1000, 500)),
                    "metric_zoom": ("GET", metric + ZOOM_LOOPLINE, None, _points(1000, 1000)),
                }
            else:
                # The runs table's own search is the last one its page sends (MLflow first asks
                # for 50 runs of the experiment, for every page of it, then the table asks for 100).
                searches = [
                    json.loads(r["body"])
                    for r in captured
                    if r["page"] == "runs" and r["url"].endswith("/runs/search")
                ]
                first: dict[str, Any] = (
                    searches[-1] if searches else {**MLFLOW_RUNS_BODY, "experiment_ids": [str(exp)]}
                )
                metric = next(
                    (r["url"] for r in captured if "get-history-bulk-interval" in r["url"]),
                    f"/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
                    f"?run_ids={long_run}&metric_key=loss&max_results=320",
                )
                metric = metric.removeprefix(server.url)
                n = int(first.get("max_results", 50))
                search = "/ajax-api/2.0/mlflow/runs/search"
                cases = {
                    "runs": ("POST", search, first, _rows(n)),
                    "runs_sorted": ("POST", search, {**first, "order_by": ["metrics.`m3` DESC"]}, _rows(n)),
                    "runs_filtered": ("POST", search, {**first, "filter": "metrics.m0 < 0.5"}, _rows(n)),
                    "metric": ("GET", metric, None, _points(320, 300)),
                    "metric_zoom": (
                        "GET",
                        metric + "&start_step=50000&end_step=50999",
                        None,
                        _points(320, 300),
                    ),
                }
            if system == "loopline":
                client.headers["HX-Request"] = "true"
                out["http_fragment"] = http_times(
                    client, "GET", pages["runs"] + "?sort=params.lr&dir=asc", None, repeat, _rows(50)
                )
                del client.headers["HX-Request"]
            out["http"] = {}
            for name, (method, path, body, check) in cases.items():
                timed = out["http"][name] = http_times(client, method, path, body, repeat, check)
                if "error" in timed or max(timed["samples"]) > SLOW_MS:
                    # A server may go on with a request its client gave up on: let it finish first.
                    timed["settle_seconds"] = server.settle(limit=HTTP_TIMEOUT)
        out["foreign_cores_http"] = noise.cores
    finally:
        server.stop()
    return out


# ---- the report ----------------------------------------------------------------------------------

HTTP_ROWS: dict[str, tuple[str, tuple[Literal["<", ">"], float] | None]] = {
    "runs": ("runs table, first page (HTTP)", ("<", 300.0)),
    "runs_sorted": ("runs table sorted by metrics.m3 (HTTP)", None),
    "runs_filtered": ("runs table filtered metrics.m0 < 0.5 (HTTP)", None),
    "metric": ("100,000-point metric, as the chart asks (HTTP)", None),
    "metric_zoom": ("same, zoomed to 1,000 steps (HTTP)", None),
}
BROWSER_ROWS: dict[str, tuple[str, tuple[Literal["<", ">"], float] | None]] = {
    "runs": ("runs table: navigation to first rows drawn", ("<", 1000.0)),
    "chart": ("run page: navigation to 100,000-point chart drawn", ("<", 1000.0)),
}


def _why(system: str, figure: dict[str, Any] | None, errors: dict[str, str]) -> str | None:
    """Why ``system`` has no figure here (None when it has one)."""
    if figure and "error" not in figure:
        return None
    if figure:
        return f"{system}: {figure['error']}"
    if system in errors:
        return f"{system}: {errors[system]}"
    return f"{system}: not measured" + ("" if CHROMIUM.exists() else f" ({CHROMIUM} is missing)")


def _row(
    workload: str,
    title: str,
    figures: dict[str, dict[str, Any] | None],
    value: Callable[[dict[str, Any]], float],
    errors: dict[str, str],
    note: Callable[[dict[str, Any], dict[str, Any]], str] | None = None,
    goal: tuple[Literal["<", ">"], float] | None = None,
) -> Row:
    why = {s: _why(s, f, errors) for s, f in figures.items()}
    m, lo = (figures[s] if why[s] is None else None for s in ("mlflow", "loopline"))
    return Row(
        workload,
        title,
        "ms",
        value(m) if m else None,
        value(lo) if lo else None,
        False,
        goal_abs=goal,
        note=note(m, lo) if note and m and lo else "",
        error="; ".join(w for w in why.values() if w) or None,
    )


def report(runs: int, results: dict[str, dict[str, Any]], errors: dict[str, str]) -> Report:
    rep = Report("ui", f"Web UI: {runs:,} runs x {METRICS} metrics, one metric of {POINTS:,} points (ms)")

    def http(m: dict[str, Any], lo: dict[str, Any]) -> str:
        worst = f"worst {max(m['samples']):,.0f} / {max(lo['samples']):,.0f}"
        return f"{worst}; {m['bytes']:,} / {lo['bytes']:,} bytes"

    def drawn(m: dict[str, Any], lo: dict[str, Any]) -> str:
        worst = f"worst {max(m['warm']):,.0f} / {max(lo['warm']):,.0f}"
        if "rows" in m["drawn"]:
            return f"{worst}; rows in the DOM {m['drawn']['rows']} / {lo['drawn']['rows']}"
        return f"{worst}; points drawn {m['drawn']['points']:,} / {lo['drawn']['points']:,}"

    for key, (title, goal) in HTTP_ROWS.items():
        figures = {s: results.get(s, {}).get("http", {}).get(key) for s in ("mlflow", "loopline")}
        rep.rows.append(
            _row(f"http_{key}", title, figures, lambda f: median(f["samples"]), errors, http, goal)
        )
    frag = results.get("loopline", {}).get("http_fragment")
    rep.rows.append(
        Row(
            "http_fragment",
            "runs table re-sorted, htmx fragment (HTTP)",
            "ms",
            None,
            median(frag["samples"]) if frag and "samples" in frag else None,
            False,
            note="Loopline only (MLflow re-sorts with runs/search, row 2)",
            error=_why("loopline", frag, errors),
        )
    )
    for key, (title, goal) in BROWSER_ROWS.items():
        figures = {s: results.get(s, {}).get("browser", {}).get(key) for s in ("mlflow", "loopline")}
        warm, first = f"{title} (browser, cache warm)", f"{title} (browser, first visit)"
        rep.rows.append(
            _row(f"browser_{key}", warm, figures, lambda f: median(f["warm"]), errors, drawn, goal)
        )
        rep.rows.append(
            _row(
                f"browser_{key}_first",
                first,
                figures,
                lambda f: f["first"],
                errors,
                lambda m, lo: "one sample",
            )
        )
    ml, ll = results.get("mlflow", {}), results.get("loopline", {})
    rep.meta = {
        "runs": runs,
        "metrics_per_run": METRICS,
        "points": POINTS,
        "mlflow_version": md.version("mlflow"),
        "loopline_version": md.version("loopline"),
        "chromium": (ll.get("browser") or ml.get("browser") or {}).get("chromium"),
        "foreign_cpu_cores": {
            f"{system} {phase}": r[f"foreign_cores_{phase}"]
            for system, r in results.items()
            for phase in ("browser", "http")
            if f"foreign_cores_{phase}" in r
        },
        "errors": errors,
        "systems": results,
    }
    return rep


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20, help="HTTP requests timed per case")
    parser.add_argument("--browser-repeat", type=int, default=5, help="warm navigations timed per page")
    parser.add_argument("--system", action="append", choices=("mlflow", "loopline"), default=[])
    args = parser.parse_args()
    bytecode_as_installed()
    from rich.console import Console

    from benchmarks.__main__ import footer, save, table

    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    with terminating_on_sigterm():
        for system in args.system or ["mlflow", "loopline"]:
            log(f"{system}: measuring")
            try:
                results[system] = measure(system, args.runs, args.repeat, args.browser_repeat)
            except (WorkerError, RuntimeError, httpx.HTTPError) as e:
                errors[system] = str(e).splitlines()[0][:300]
                log(f"{system} failed: {e}")
    rep = report(args.runs, results, errors)
    rep.meta["seconds"] = round(time.perf_counter() - t0, 1)
    console = Console(width=max(Console().width, 150))
    console.print(table(rep))
    console.print(footer(rep.meta, quick=False), style="dim")
    console.print(f"results: {save(rep)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker_main(WORKERS, sys.argv[1:])
    else:
        main()
