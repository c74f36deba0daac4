"""Tracking, side by side: ``mlflow server`` vs ``loopline server``, each driven by its own client.

Both servers run as real subprocesses on 127.0.0.1 with a fresh SQLite database and a local artifact
folder; MLflow with ``--workers 1`` (Loopline's default) and its defaults otherwise. Only one server is
up at a time, so neither's background processes steal CPU from the other's workload. Every measured
phase runs in a fresh interpreter whose environment names exactly one system
(``MLFLOW_TRACKING_URI`` or ``LOOPLINE_TRACKING_URI``). The workloads and what they time are listed in
``WORKLOADS`` and described in ``benchmarks/README.md``.

Run: ``python -m benchmarks [--quick] [--only WORKLOAD]``; one worker by hand:
``python -m benchmarks.tracking --worker loopline_log_metric '{"n": 1000}'`` (needs the URI variables).
"""

from __future__ import annotations

import filecmp
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    ForeignLoad,
    MiB,
    Options,
    Report,
    Row,
    RssSampler,
    Server,
    WorkerError,
    clean_env,
    log,
    median,
    run_worker,
    tracking_server,
    worker_main,
)

NAME = "tracking"
TITLE = "Tracking: mlflow server vs loopline server (SQLite backend, 127.0.0.1)"
WORKLOADS = {
    "log_metric": "single log_metric calls through the fluent API, until durable after end_run",
    "log_batch": "log_batch ingest of 100,000 points, 1,000 per request",
    "runs": "runs created with 10 params + 10 metrics each through the fluent API",
    "search_runs": "search_runs filter + order_by over 10,000 runs, max_results 1000",
    "metric_history": "get_metric_history of a 100,000-point metric",
    "inprocess": "log_metric cost with no server (embedded SQLite), including the final flush",
    "footprint": "server start-up time, idle RSS and process count; import time",
    "artifacts": "upload and download of a 1 GiB file through the server",
    "server_cost": "the server's CPU seconds under MLflow's own client (mixed workload), both servers",
}
SYSTEMS = ("mlflow", "loopline")
SEARCH_FILTER = "metrics.acc > 0.5"
SEARCH_ORDER = ["metrics.acc DESC"]
SEARCH_MAX = 1000  # MLflow's default max_results


@dataclass(frozen=True)
class Sizes:
    """How much each workload does; MLflow gets fewer calls where it is slow, and rates are compared."""

    log_metric: dict[str, int]
    ingest_points: int
    history_calls: int
    runs: dict[str, int]
    search_runs: int
    search_calls: int
    inprocess: dict[str, int]
    artifact_bytes: int
    mix_runs: int = 200
    mix_points: int = 50_000

    @classmethod
    def for_options(cls, options: Options) -> Sizes:
        if options.quick:
            return cls(
                log_metric={"mlflow": 300, "loopline": 20_000},
                ingest_points=20_000,
                history_calls=1,
                runs={"mlflow": 30, "loopline": 100},
                search_runs=2_000,
                search_calls=3,
                inprocess={"mlflow": 100, "loopline": 20_000},
                artifact_bytes=256 * MiB,
                mix_runs=50,
                mix_points=10_000,
            )
        return cls(
            log_metric={"mlflow": 2_000, "loopline": 200_000},
            ingest_points=100_000,
            history_calls=3,
            runs={"mlflow": 200, "loopline": 1_000},
            search_runs=10_000,
            search_calls=5,
            inprocess={"mlflow": 1_000, "loopline": 200_000},
            artifact_bytes=1024 * MiB,
        )


# ==== workers: each runs in its own interpreter, imports only its own system =======================

Params = dict[str, Any]
Result = dict[str, Any]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def mlflow_log_metric(p: Params) -> Result:
    import mlflow

    n = int(p["n"])
    mlflow.set_experiment("bench-log-metric")
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    seconds = time.perf_counter() - t0  # includes end_run
    count = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss"))
    _check(count == n, f"mlflow stored {count} of {n} points")
    return {"n": n, "seconds": seconds, "count": count}


def loopline_log_metric(p: Params) -> Result:
    import loopline

    n = int(p["n"])
    loopline.set_experiment("bench-log-metric")
    with loopline.start_run() as run:
        t0 = time.perf_counter()
        for i in range(n):
            loopline.log_metric("loss", 1.0 / (i + 1), step=i)
    seconds = time.perf_counter() - t0  # includes end_run, which flushes the buffer to the server
    count = len(loopline.Client().get_metric_history(run.run_id, "loss"))  # a fresh client: durable
    _check(count == n, f"loopline stored {count} of {n} points")
    return {"n": n, "seconds": seconds, "count": count}


def _points(n: int) -> list[tuple[str, float, int, int]]:
    ts = int(time.time() * 1000)
    return [("loss", 1.0 / (i + 1), ts + i, i) for i in range(n)]


def mlflow_ingest(p: Params) -> Result:
    import mlflow
    from mlflow.entities import Metric

    n, chunk, calls = int(p["points"]), int(p["chunk"]), int(p["history_calls"])
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment(f"bench-ingest-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp_id).info.run_id
    metrics = [Metric(*m) for m in _points(n)]
    t0 = time.perf_counter()
    for i in range(0, n, chunk):
        client.log_batch(run_id, metrics=metrics[i : i + chunk])
    ingest = time.perf_counter() - t0
    client.set_terminated(run_id)
    history = []
    for _ in range(calls):
        t0 = time.perf_counter()
        count = len(client.get_metric_history(run_id, "loss"))
        history.append(time.perf_counter() - t0)
        _check(count == n, f"mlflow returned {count} of {n} points")
    return {"points": n, "ingest_seconds": ingest, "history_seconds": history}


def loopline_ingest(p: Params) -> Result:
    import loopline

    n, calls = int(p["points"]), int(p["history_calls"])
    client = loopline.Client()
    exp_id = client.create_experiment(f"bench-ingest-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp_id).info.run_id
    metrics = [loopline.Metric(*m) for m in _points(n)]
    t0 = time.perf_counter()
    client.log_batch(run_id, metrics=metrics)  # split into MLflow-sized requests (1,000) by the client
    ingest = time.perf_counter() - t0
    client.set_terminated(run_id)
    history = []
    for _ in range(calls):
        t0 = time.perf_counter()
        count = len(client.get_metric_history(run_id, "loss"))
        history.append(time.perf_counter() - t0)
        _check(count == n, f"loopline returned {count} of {n} points")
    return {"points": n, "ingest_seconds": ingest, "history_seconds": history}


def mlflow_client_mix(p: Params) -> Result:
    """The server-cost workload: the unmodified ``mlflow`` client against either server (the harness
    measures the server's CPU around it). 200 runs with params and metrics, a 50k-point log-batch in
    1,000-point requests, 300 single log-metric calls, the 50k-point history, ten searches."""
    import mlflow
    from mlflow.entities import Metric

    runs, points, singles, searches = int(p["runs"]), int(p["points"]), int(p["singles"]), int(p["searches"])
    experiment = mlflow.set_experiment(f"bench-mix-{uuid.uuid4().hex[:8]}").experiment_id
    t0 = time.perf_counter()
    for i in range(runs):
        with mlflow.start_run():
            mlflow.log_params(_RUN_PARAMS)
            mlflow.log_metrics(_run_metrics(i))
    client = mlflow.MlflowClient()
    run_id = client.create_run(experiment).info.run_id
    batch = [Metric(*m) for m in _points(points)]
    for i in range(0, points, 1000):
        client.log_batch(run_id, metrics=batch[i : i + 1000])
    for i in range(singles):
        client.log_metric(run_id, "single", float(i), step=i)
    history = len(client.get_metric_history(run_id, "loss"))
    _check(history == points, f"history returned {history} of {points} points")
    for _ in range(searches):
        found = client.search_runs([experiment], "metrics.metric_0 > 0.5", order_by=["metrics.metric_0 DESC"])
        _check(len(found) > 0, "search found nothing")
    seconds = time.perf_counter() - t0
    total = len(client.search_runs([experiment], max_results=1000))
    _check(total == runs + 1, f"{total} runs stored, {runs + 1} made")
    return {"seconds": seconds, "requests": runs * 4 + points // 1000 + singles + 1 + searches}


_RUN_PARAMS = {f"param_{j}": j * 0.1 for j in range(10)}


def _run_metrics(i: int) -> dict[str, float]:
    return {f"metric_{j}": ((i + 1) * (j + 3)) % 97 / 97 for j in range(10)}


def mlflow_runs(p: Params) -> Result:
    import mlflow

    n = int(p["n"])
    exp_id = mlflow.set_experiment(f"bench-runs-{uuid.uuid4().hex[:8]}").experiment_id
    t0 = time.perf_counter()
    for i in range(n):
        mlflow.start_run(run_name=f"run-{i}")
        mlflow.log_params(_RUN_PARAMS)
        mlflow.log_metrics(_run_metrics(i))
        mlflow.end_run()
    seconds = time.perf_counter() - t0
    runs = mlflow.MlflowClient().search_runs([exp_id], max_results=n + 1)
    _check(len(runs) == n and len(runs[0].data.metrics) == 10, f"mlflow stored {len(runs)} of {n} runs")
    return {"n": n, "seconds": seconds}


def loopline_runs(p: Params) -> Result:
    import loopline

    n = int(p["n"])
    exp_id = loopline.set_experiment(f"bench-runs-{uuid.uuid4().hex[:8]}")
    t0 = time.perf_counter()
    for i in range(n):
        loopline.start_run(run_name=f"run-{i}")
        loopline.log_params(_RUN_PARAMS)
        loopline.log_metrics(_run_metrics(i))
        loopline.end_run()
    seconds = time.perf_counter() - t0
    runs = loopline.Client().search_runs([exp_id], max_results=n + 1)
    _check(len(runs) == n and len(runs[0].data.metrics) == 10, f"loopline stored {len(runs)} of {n} runs")
    return {"n": n, "seconds": seconds}


def _search_population(n: int) -> list[tuple[str, dict[str, float], dict[str, str]]]:
    """The same ``n`` runs for both systems: (name, metrics, params), from a fixed seed."""
    rng = random.Random(20240611)
    return [
        (
            f"run-{i}",
            {"acc": rng.random(), "loss": rng.random() * 2, "f1": rng.random()},
            {"lr": f"{rng.choice([0.1, 0.01, 0.001])}", "depth": str(rng.randint(2, 12)), "seed": str(i)},
        )
        for i in range(n)
    ]


def _time_calls(fn: Callable[[], int], calls: int, expected: int) -> list[float]:
    _check(fn() == expected, "warm-up search returned the wrong number of runs")  # not timed
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        got = fn()
        out.append(time.perf_counter() - t0)
        _check(got == expected, f"search returned {got} runs, expected {expected}")
    return out


def _expected_hits(population: list[tuple[str, dict[str, float], dict[str, str]]]) -> int:
    return min(SEARCH_MAX, sum(1 for _, m, _ in population if m["acc"] > 0.5))


def mlflow_search(p: Params) -> Result:
    """Seeds MLflow's own SQLite file in-process through its SQLAlchemy models, then searches via REST.

    Seeding 10,000 runs through the REST API would take minutes (and the store's per-run
    create_run + log_batch ~2 minutes); the rows written are exactly what those calls would write:
    runs, tags (run name, user), params, metrics and latest_metrics.
    """
    import mlflow
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    population = _search_population(int(p["runs"]))
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("bench-search")  # through the server: its artifact location
    location = client.get_experiment(exp_id).artifact_location
    t0 = time.perf_counter()
    store = SqlAlchemyStore(p["store_uri"], p["artifacts_dir"])  # type: ignore[no-untyped-call]
    now = int(time.time() * 1000)
    runs, tags, params, metrics = [], [], [], []
    for i, (name, ms, ps) in enumerate(population):
        run_id = uuid.uuid4().hex
        runs.append(
            {
                "run_uuid": run_id,
                "name": name,
                "source_type": "LOCAL",
                "source_name": "benchmarks",
                "entry_point_name": "",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": now + i,
                "end_time": now + i + 1,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": f"{location}/{run_id}/artifacts",
                "experiment_id": int(exp_id),
            }
        )
        tags += [
            {"key": "mlflow.runName", "value": name, "run_uuid": run_id},
            {"key": "mlflow.user", "value": "bench", "run_uuid": run_id},
        ]
        params += [{"key": k, "value": v, "run_uuid": run_id} for k, v in ps.items()]
        metrics += [
            {"key": k, "value": v, "timestamp": now + i, "step": 0, "is_nan": False, "run_uuid": run_id}
            for k, v in ms.items()
        ]
    with store.ManagedSessionMaker() as session:
        session.execute(sa.insert(SqlRun.__table__), runs)
        session.execute(sa.insert(SqlTag.__table__), tags)
        session.execute(sa.insert(SqlParam.__table__), params)
        session.execute(sa.insert(SqlMetric.__table__), metrics)
        session.execute(sa.insert(SqlLatestMetric.__table__), metrics)
    seed = time.perf_counter() - t0
    check = client.search_runs([exp_id], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=SEARCH_MAX)
    accs = [r.data.metrics["acc"] for r in check]
    _check(accs == sorted(accs, reverse=True), "mlflow results are not ordered by acc")

    def search() -> int:
        return len(client.search_runs([exp_id], SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=SEARCH_MAX))

    latencies = _time_calls(search, int(p["calls"]), _expected_hits(population))
    return {"runs": len(population), "seed_seconds": seed, "latencies": latencies}


def loopline_search(p: Params) -> Result:
    """Seeds in-process through Loopline's public Client on the server's own database file."""
    import loopline

    population = _search_population(int(p["runs"]))
    client = loopline.Client()  # the server, from LOOPLINE_TRACKING_URI
    exp_id = client.create_experiment("bench-search")
    t0 = time.perf_counter()
    local = loopline.Client(tracking_uri=p["store_uri"], artifacts_uri=p["artifacts_dir"])
    now = int(time.time() * 1000)
    for i, (name, ms, ps) in enumerate(population):
        run_id = local.create_run(exp_id, run_name=name, start_time=now + i).info.run_id
        local.log_batch(run_id, [loopline.Metric(k, v, now + i, 0) for k, v in ms.items()], ps)
        local.set_terminated(run_id, end_time=now + i + 1)
    local.close()
    seed = time.perf_counter() - t0
    check = client.search_runs([exp_id], SEARCH_FILTER, SEARCH_ORDER, SEARCH_MAX)
    accs = [r.data.metrics["acc"] for r in check]
    _check(accs == sorted(accs, reverse=True), "loopline results are not ordered by acc")

    def search() -> int:
        return len(client.search_runs([exp_id], SEARCH_FILTER, SEARCH_ORDER, SEARCH_MAX))

    latencies = _time_calls(search, int(p["calls"]), _expected_hits(population))
    return {"runs": len(population), "seed_seconds": seed, "latencies": latencies}


def mlflow_inprocess(p: Params) -> Result:
    import mlflow

    n = int(p["n"])
    mlflow.set_experiment("bench-inprocess")  # creates the database (migrations) before timing
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    seconds = time.perf_counter() - t0
    count = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss"))
    _check(count == n, f"mlflow stored {count} of {n} points")
    return {"n": n, "seconds": seconds}


def loopline_inprocess(p: Params) -> Result:
    import loopline

    n = int(p["n"])
    loopline.set_experiment("bench-inprocess")  # creates the database (migrations) before timing
    with loopline.start_run() as run:
        t0 = time.perf_counter()
        for i in range(n):
            loopline.log_metric("loss", 1.0 / (i + 1), step=i)
    seconds = time.perf_counter() - t0  # includes end_run's flush
    count = len(loopline.Client().get_metric_history(run.run_id, "loss"))
    _check(count == n, f"loopline stored {count} of {n} points")
    return {"n": n, "seconds": seconds}


def mlflow_artifacts(p: Params) -> Result:
    import mlflow
    import mlflow.artifacts

    src, dst = Path(p["file"]), Path(p["dst"])
    mlflow.set_experiment("bench-artifacts")
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        mlflow.log_artifact(str(src))
        upload = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=src.name, dst_path=str(dst)
    )
    download = time.perf_counter() - t0
    _check(filecmp.cmp(src, got, shallow=False), "mlflow's download differs from the upload")
    return {"bytes": src.stat().st_size, "upload_seconds": upload, "download_seconds": download}


def loopline_artifacts(p: Params) -> Result:
    import loopline

    src, dst = Path(p["file"]), Path(p["dst"])
    loopline.set_experiment("bench-artifacts")
    with loopline.start_run() as run:
        t0 = time.perf_counter()
        loopline.log_artifact(src)
        upload = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = loopline.Client().download_artifacts(run.run_id, src.name, dst)
    download = time.perf_counter() - t0
    _check(filecmp.cmp(src, got, shallow=False), "loopline's download differs from the upload")
    return {"bytes": src.stat().st_size, "upload_seconds": upload, "download_seconds": download}


WORKERS: dict[str, Callable[[Params], Result]] = {
    f.__name__: f
    for f in (
        mlflow_log_metric,
        loopline_log_metric,
        mlflow_ingest,
        loopline_ingest,
        mlflow_runs,
        loopline_runs,
        mlflow_search,
        loopline_search,
        mlflow_inprocess,
        loopline_inprocess,
        mlflow_artifacts,
        loopline_artifacts,
    )
}
# One workload, MLflow's client, against both servers.
WORKERS |= {"mlflow_server_cost": mlflow_client_mix, "loopline_server_cost": mlflow_client_mix}


# ==== orchestration =================================================================================


def import_seconds(module: str, repeat: int = 3) -> float:
    """Best of ``repeat`` fresh interpreters: the time ``import <module>`` takes (not the start-up)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code], env=clean_env(), cwd=tempfile.gettempdir(), capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def write_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


class Bench:
    """Collects raw figures ``figures[system][key]`` and errors, then turns them into rows."""

    def __init__(self, options: Options, root: Path) -> None:
        self.options = options
        self.sizes = Sizes.for_options(options)
        self.root = root
        self.figures: dict[str, dict[str, float]] = {s: {} for s in SYSTEMS}
        self.errors: dict[str, dict[str, str]] = {s: {} for s in SYSTEMS}
        self.raw: dict[str, dict[str, Any]] = {s: {} for s in SYSTEMS}

    def wants(self, *workloads: str) -> bool:
        return any(self.options.wants(w) for w in workloads)

    def worker(self, system: str, workload: str, params: Params, env: dict[str, str]) -> Result | None:
        log(f"{system}: {workload} …")
        try:
            result = run_worker(NAME, f"{system}_{workload}", params, env)
        except WorkerError as e:
            log(f"{system}: {workload} FAILED: {e}")
            self.errors[system][workload] = str(e).splitlines()[0]
            return None
        self.raw[system][workload] = result
        return result

    # -- phases without a server

    def footprint_imports(self) -> None:
        for system, module in (("mlflow", "mlflow"), ("loopline", "loopline")):
            self.figures[system]["import"] = import_seconds(module)
        self.figures["loopline"]["import_tracking"] = import_seconds("loopline.tracking")
        ml, ll = self.figures["mlflow"]["import"], self.figures["loopline"]["import"]
        log(f"import: mlflow {ml:.3f} s, loopline {ll:.3f} s")

    def inprocess(self) -> None:
        for system in SYSTEMS:
            home = self.root / f"{system}-inprocess"
            home.mkdir()
            uri = f"sqlite:///{home / 'store.db'}"
            env = clean_env(
                {"MLFLOW_TRACKING_URI": uri}
                if system == "mlflow"
                else {"LOOPLINE_TRACKING_URI": uri, "LOOPLINE_ARTIFACTS_URI": str(home / "artifacts")}
            )
            r = self.worker(system, "inprocess", {"n": self.sizes.inprocess[system]}, env)
            if r:
                self.figures[system]["inprocess_us"] = r["seconds"] / r["n"] * 1e6

    # -- phases against one server

    def against(self, system: str, artifact_file: Path | None) -> None:
        server = tracking_server(system, self.root / system)
        try:
            log(f"{system}: starting server on port {server.port} …")
            self.figures[system]["startup"] = server.start()
            settled = server.settle()
            rss, procs = server.rss()
            self.figures[system]["idle_rss"] = rss / MiB
            self.figures[system]["procs"] = procs
            up = self.figures[system]["startup"]
            mib = rss / MiB
            log(f"{system}: healthy after {up:.2f} s, idle {settled:.1f} s on: {mib:.0f} MiB, {procs} procs")
            env = clean_env(
                {"MLFLOW_TRACKING_URI": server.url}
                if system == "mlflow"
                else {"LOOPLINE_TRACKING_URI": server.url}
            )
            self.server_phases(system, server, env, artifact_file)
        except RuntimeError as e:
            log(f"{system}: server FAILED: {e}")
            self.errors[system]["server"] = str(e).splitlines()[0]
        finally:
            server.stop()
            log(f"{system}: server stopped")

    def server_phases(
        self, system: str, server: Server, env: dict[str, str], artifact_file: Path | None
    ) -> None:
        f, s = self.figures[system], self.sizes
        home = self.root / system
        if self.wants("log_metric"):
            r = self.worker(system, "log_metric", {"n": s.log_metric[system]}, env)
            if r:
                f["log_metric"] = r["n"] / r["seconds"]
        if self.wants("log_batch", "metric_history"):
            ingest = {"points": s.ingest_points, "chunk": 1000, "history_calls": s.history_calls}
            r = self.worker(system, "ingest", ingest, env)
            if r:
                f["log_batch"] = r["points"] / r["ingest_seconds"]
                f["metric_history"] = median(r["history_seconds"])
        if self.wants("runs"):
            r = self.worker(system, "runs", {"n": s.runs[system]}, env)
            if r:
                f["runs"] = r["n"] / r["seconds"]
        if self.wants("search_runs"):
            search: Params = {
                "runs": s.search_runs,
                "calls": s.search_calls,
                "store_uri": f"sqlite:///{home / 'store.db'}",
                "artifacts_dir": str(home / "artifacts"),
            }
            r = self.worker(system, "search", search, env)
            if r:
                f["search_runs"] = median(r["latencies"]) * 1000
        if self.wants("server_cost"):
            # MLflow's own client against both servers; the server tree's CPU seconds around it.
            mix = {"runs": s.mix_runs, "points": s.mix_points, "singles": 300, "searches": 10}
            cpu0 = server.cpu_seconds()
            r = self.worker(system, "server_cost", mix, clean_env({"MLFLOW_TRACKING_URI": server.url}))
            if r:
                f["server_cpu"] = server.cpu_seconds() - cpu0
                f["server_cost_wall"] = r["seconds"]
        if artifact_file is not None:
            dst = self.root / f"{system}-download"
            before = server.rss()[0]
            with RssSampler(server) as sampler:
                r = self.worker(system, "artifacts", {"file": str(artifact_file), "dst": str(dst)}, env)
            if r:
                f["upload"] = r["bytes"] / MiB / r["upload_seconds"]
                f["download"] = r["bytes"] / MiB / r["download_seconds"]
                f["transfer_peak_rss"] = sampler.peak / MiB
                f["transfer_rss_growth"] = max(0, sampler.peak - before) / MiB
            shutil.rmtree(dst, ignore_errors=True)
            shutil.rmtree(home / "artifacts", ignore_errors=True)  # 1 GiB each: free the disk early

    # -- rows

    def rows(self) -> list[Row]:
        s = self.sizes
        gib = (
            f"{s.artifact_bytes / (1024 * MiB):g} GiB"
            if s.artifact_bytes >= 1024 * MiB
            else f"{s.artifact_bytes // MiB} MiB"
        )
        specs: list[tuple[str, str, str, str, bool, dict[str, Any]]] = [
            # (workload, key, title, unit, higher_is_better, extra)
            ("log_metric", "log_metric", "1. log_metric (fluent, durable at end_run)", "calls/s", True,
             {"goal_ratio": 100, "note": f"n={s.log_metric['mlflow']:,} / {s.log_metric['loopline']:,}"}),
            ("log_batch", "log_batch", "2. log_batch ingest, 1,000/request", "points/s", True,
             {"goal_ratio": 10, "note": f"{s.ingest_points:,} points"}),
            ("runs", "runs", "3. runs with 10 params + 10 metrics", "runs/s", True,
             {"goal_ratio": 10, "note": f"n={s.runs['mlflow']:,} / {s.runs['loopline']:,}"}),
            ("search_runs", "search_runs", "4. search_runs filter + order_by → 1,000", "ms", False,
             {"goal_ratio": 10, "goal_abs": ("<", 100.0),
              "note": f"{s.search_runs:,} runs, median of {s.search_calls}"}),
            ("metric_history", "metric_history", "5. get_metric_history", "s", False,
             {"goal_ratio": 10, "note": f"{s.ingest_points:,} points, median of {s.history_calls}"}),
            ("inprocess", "inprocess_us", "6. log_metric in-process (no server)", "µs/call", False,
             {"note": f"n={s.inprocess['mlflow']:,} / {s.inprocess['loopline']:,}, incl. flush"}),
            ("footprint", "startup", "7. server spawn → first 200 on /health", "s", False,
             {"note": "fresh database"}),
            ("footprint", "idle_rss", "7. server idle RSS (process tree)", "MiB", False, {}),
            ("footprint", "procs", "7. server process count", "procs", False, {}),
            ("footprint", "import", "7. import mlflow / import loopline", "s", False, {"note": "best of 3"}),
            ("artifacts", "upload", f"8. artifact upload, {gib}", "MiB/s", True, {}),
            ("artifacts", "download", f"8. artifact download, {gib}", "MiB/s", True, {}),
            ("artifacts", "transfer_peak_rss", "8. server peak RSS during transfer", "MiB", False, {}),
            ("artifacts", "transfer_rss_growth", "8. server RSS growth during transfer", "MiB", False,
             {"goal_abs": ("<", 100.0), "note": "peak minus RSS before"}),
            ("server_cost", "server_cpu", "9. server CPU, mlflow client's mixed workload", "s", False,
             {"goal_ratio": 15, "note": f"{s.mix_runs} runs, {s.mix_points:,} pts, 300 + 10 calls"}),
            ("server_cost", "server_cost_wall", "9. same workload, client wall time", "s", False, {}),
        ]  # fmt: skip
        out = []
        for workload, key, title, unit, higher, extra in specs:
            if not self.options.wants(workload):
                continue
            errors = [e for sys_ in SYSTEMS if (e := self._error(sys_, workload))]
            out.append(
                Row(
                    workload=workload,
                    title=title,
                    unit=unit,
                    peer=self.figures["mlflow"].get(key),
                    loopline=self.figures["loopline"].get(key),
                    higher_is_better=higher,
                    error="; ".join(errors) or None,
                    **extra,
                )
            )
            if key == "import" and "import_tracking" in self.figures["loopline"]:
                out.append(
                    Row("footprint", "7. import mlflow / import loopline.tracking", "s",
                        self.figures["mlflow"].get("import"), self.figures["loopline"]["import_tracking"],
                        False, note="loopline's verbs load on first use"),
                )  # fmt: skip
        return out

    def _error(self, system: str, workload: str) -> str | None:
        names = {"log_batch": "ingest", "metric_history": "ingest", "search_runs": "search"}
        e = self.errors[system].get(names.get(workload, workload)) or self.errors[system].get("server")
        return f"{system}: {e}" if e else None


def run(options: Options) -> Report:
    import importlib.metadata as md

    report = Report(
        NAME,
        TITLE,
        meta={
            "mlflow_version": md.version("mlflow"),
            "loopline_version": md.version("loopline"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "quick": options.quick,
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "only": sorted(options.only),
        },
    )
    server_workloads = (
        "log_metric",
        "log_batch",
        "runs",
        "search_runs",
        "metric_history",
        "footprint",
        "artifacts",
        "server_cost",
    )
    with tempfile.TemporaryDirectory(prefix="loopline-bench-") as tmp:
        root = Path(tmp)
        bench = Bench(options, root)
        foreign: dict[str, float] = {}

        def phase(name: str, fn: Callable[[], None]) -> None:
            with ForeignLoad() as load:
                fn()
            foreign[name] = round(load.cores, 2)
            if load.cores > 0.25:
                log(f"warning: other processes kept {load.cores:.2f} cores busy during the {name} phase")

        if options.wants("footprint"):
            phase("import", bench.footprint_imports)
        if options.wants("inprocess"):
            phase("inprocess", bench.inprocess)
        artifact_file = None
        if options.wants("artifacts"):
            artifact_file = root / "artifact.bin"
            log(f"writing {bench.sizes.artifact_bytes // MiB} MiB of random data …")
            write_random_file(artifact_file, bench.sizes.artifact_bytes)
        if any(options.wants(w) for w in server_workloads):
            for system in SYSTEMS:
                phase(f"{system} server", functools.partial(bench.against, system, artifact_file))
        report.meta["foreign_cpu_cores"] = foreign
        report.rows = bench.rows()
        report.meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        report.meta["raw"] = bench.raw
        report.meta["figures"] = bench.figures
        report.meta["errors"] = bench.errors
        report.meta["sizes"] = {k: v for k, v in vars(bench.sizes).items()}
    return report


if __name__ == "__main__":
    worker_main(WORKERS, sys.argv[1:])
