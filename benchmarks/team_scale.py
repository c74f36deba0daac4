"""The team server under load: training sets through ``loopline server`` against in-process, and the
tracking throughput ``loopline server --workers 2`` buys over ``--workers 1``.

* ``server_historical_features`` — the point-in-time training set of ``benchmarks/features.py``
  (its data generator and feature view: 3 features, 1-day TTL) at 4,000,000 feature rows over
  400,000 drivers and a 4,000,000-row entity frame (``--quick``: 1,000,000 and 1,000,000), asked
  for with ``FeatureStore().get_historical_features(entity, features)`` in a fresh process whose
  ``LOOPLINE_TRACKING_URI`` is either a SQLite database (in-process: the join runs in the client)
  or a ``loopline server`` on this host (the frame goes up as Arrow IPC, the join runs on the
  server, the training set comes back). Timed: the call (its first in the process, so including
  loading the definitions and the modules the call imports), and the whole process from spawn to
  the training set in hand. One untimed warm-up each (page cache, the server's first-use imports),
  then 5 rounds (``--quick``: 2), alternating which goes first; the two results of every round
  must be equal (same rows in the same order, same values and dtypes) or no figure is reported.
* ``server_tracking_workers`` — 4 concurrent client processes running the unmodified ``mlflow``
  client (fluent runs with 10 params and 10 metrics, a 1,000-point ``log_batch`` every 5 runs,
  3 single ``log_metric`` calls per run) against ``loopline server --workers 1`` and
  ``--workers 2``, on a fresh PostgreSQL database and on a fresh SQLite file (which serialises
  writers: the second worker can only overlap the rest of each request). The clients start
  together (a file barrier, after their imports); requests/s = HTTP requests the clients made ÷
  first start to last finish; the server tree's and the clients' CPU seconds over that window
  show where the 2 cores went. Both servers are up at once, each on its own fresh database (the
  idle one settled: under 5 % of a core), so rounds alternate within seconds and load from other
  jobs drifts over both alike: 4 rounds each (``--quick``: 1, of 15 runs a client), alternating
  which goes first; what every round wrote is read back through a fresh ``mlflow`` client at the end.

PostgreSQL is reached at ``BENCH_POSTGRES`` (an admin URL, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); without it those rows carry the error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/team_scale.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    ForeignLoad,
    Options,
    Report,
    Row,
    Server,
    WorkerError,
    clean_env,
    log,
    median,
    module_main,
    run_worker,
    tracking_server,
)

NAME = "team_scale"
TITLE = "Team server at scale: training sets through loopline server vs in-process; --workers 2 vs 1"
WORKLOADS = {
    "server_historical_features": "a 4M-row point-in-time training set through loopline server vs in-process",
    "server_tracking_workers": "mlflow clients' write throughput, loopline server --workers 2 vs 1",
}
PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CLIENTS = 4

Params = dict[str, Any]
Result = dict[str, Any]


# ==== workers: each runs in its own interpreter ===================================================


def features_apply(p: Params) -> Result:
    """Apply ``benchmarks/features.py``'s definitions to the store the environment names."""
    from benchmarks.features import DEFS
    from loopline.features import FeatureStore

    defs = Path(p["home"]) / "defs.py"
    defs.write_text(DEFS.format(path=p["features"]))
    FeatureStore().apply(defs)
    return {}


def features_historical(p: Params) -> Result:
    """One training set, as a user's script asks for it; written to ``out`` after the clock."""
    import pandas as pd

    from benchmarks.features import FEATURES
    from loopline.features import FeatureStore

    entity = pd.read_parquet(p["entity"])
    started, cpu = time.perf_counter(), time.process_time()
    df = FeatureStore().get_historical_features(entity, FEATURES)
    seconds, in_hand = time.perf_counter() - started, time.time()
    result = {
        "seconds": seconds,
        "process_seconds": in_hand - float(p["spawned_at"]),
        "cpu_seconds": time.process_time() - cpu,
        "rows": len(df),
        "with_values": int(df["conv_rate"].notna().sum()),
    }
    df.to_parquet(p["out"])
    return result


def _count_http_requests() -> Callable[[], int]:
    """Count the HTTP requests this process sends (every ``requests`` call goes through
    ``HTTPAdapter.send``), so a rate is of requests made, not of requests assumed."""
    from requests.adapters import HTTPAdapter

    sent = [0]
    send = HTTPAdapter.send

    def counting(self: HTTPAdapter, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return send(self, *args, **kwargs)

    HTTPAdapter.send = counting  # type: ignore[method-assign]
    return lambda: sent[0]


def _wait_for(path: Path, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout:.0f} s")
        time.sleep(0.005)


def mlflow_writer(p: Params) -> Result:
    """One tracking client: the unmodified ``mlflow`` client writing runs, batches and single metrics."""
    import mlflow
    from mlflow.entities import Metric

    from benchmarks.tracking import _RUN_PARAMS, _points, _run_metrics

    runs, singles, every = int(p["runs"]), int(p["singles_per_run"]), int(p["batch_every"])
    requests = _count_http_requests()
    client = mlflow.MlflowClient()
    experiment = client.create_experiment(f"writers-{p['index']}-{uuid.uuid4().hex[:8]}")
    batch = [Metric(*m) for m in _points(-(-runs // every) * 1000)]
    (Path(p["ready"]) / str(p["index"])).touch()
    _wait_for(Path(p["go"]))
    before, started, cpu = requests(), time.time(), time.process_time()
    run_id = client.create_run(experiment).info.run_id
    step = batches = 0
    for i in range(runs):
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_params(_RUN_PARAMS)
            mlflow.log_metrics(_run_metrics(i))
        for _ in range(singles):
            client.log_metric(run_id, "single", float(step), step=step)
            step += 1
        if i % every == 0:
            client.log_batch(run_id, metrics=batch[batches * 1000 : (batches + 1) * 1000])
            batches += 1
    client.set_terminated(run_id)
    return {
        "started": started,
        "finished": time.time(),
        "cpu_seconds": time.process_time() - cpu,
        "requests": requests() - before,
        "experiment_id": experiment,
        "run_id": run_id,
        "runs": runs + 1,
        "points": batches * 1000,
        "singles": step,
    }


def mlflow_verify(p: Params) -> Result:
    """Everything the writers reported is on the server, read back through a fresh ``mlflow`` client."""
    import mlflow

    client = mlflow.MlflowClient()
    for w in p["writers"]:
        runs = len(client.search_runs([w["experiment_id"]], max_results=10_000))
        points = len(client.get_metric_history(w["run_id"], "loss"))
        singles = len(client.get_metric_history(w["run_id"], "single"))
        got, want = (runs, points, singles), (w["runs"], w["points"], w["singles"])
        if got != want:
            raise AssertionError(f"experiment {w['experiment_id']}: (runs, points, singles) {got} != {want}")
    return {"checked": len(p["writers"])}


WORKERS = {
    "features_apply": features_apply,
    "features_historical": features_historical,
    "mlflow_writer": mlflow_writer,
    "mlflow_verify": mlflow_verify,
}


# ==== server_historical_features ===================================================================


def _historical(options: Options, root: Path, report: Report) -> list[Row]:
    import pandas as pd

    from benchmarks.features import make_data

    root.mkdir(parents=True)
    scale = 1 if options.quick else 0.25
    rounds = 2 if options.quick else 5
    log(f"{NAME}: writing the feature data (scale 1/{scale:g} of features.py's)")
    paths = make_data(root, scale)
    entity_rows = int(1_000_000 / scale)
    base = {"features": paths["features"], "entity": paths[f"entity_{entity_rows}"]}
    local_home = root / "in-process"
    local_home.mkdir()
    local_env = clean_env(
        {
            "LOOPLINE_TRACKING_URI": f"sqlite:///{local_home / 'loopline.db'}",
            "LOOPLINE_ARTIFACTS_URI": str(local_home / "artifacts"),
        }
    )
    server = tracking_server("loopline", root / "server")
    runs: dict[str, list[Result]] = {"in-process": [], "server": []}
    try:
        log(f"{NAME}: starting loopline server on port {server.port}")
        server.start()
        server.settle()
        envs = {"in-process": local_env, "server": clean_env({"LOOPLINE_TRACKING_URI": server.url})}
        for system, env in envs.items():
            home = root / f"apply-{system}"
            home.mkdir()
            run_worker(NAME, "features_apply", {**base, "home": str(home)}, env)
        with ForeignLoad() as noise:
            for n in range(rounds + 1):  # round 0 warms the page cache and the server's imports
                order = list(envs) if n % 2 else list(reversed(envs))
                outputs = {}
                for system in order:
                    log(f"{NAME}: historical, {system}, {'warm-up' if n == 0 else f'round {n}'}")
                    outputs[system] = root / f"{system}-{n}.parquet"
                    cpu0 = server.cpu_seconds()
                    spawned = time.time()
                    params = {**base, "out": str(outputs[system]), "spawned_at": spawned}
                    with ForeignLoad() as load:
                        r = run_worker(NAME, "features_historical", params, envs[system])
                    r["foreign_cpu_cores"] = round(load.cores, 2)
                    r["server_cpu_seconds"] = server.cpu_seconds() - cpu0
                    r["total_cpu_seconds"] = r["cpu_seconds"] + (
                        r["server_cpu_seconds"] if system == "server" else 0
                    )
                    if n:
                        runs[system].append(r)
                    else:
                        report.meta.setdefault("historical_warm_up", {})[system] = r
                local, remote = (pd.read_parquet(outputs[s]) for s in envs)
                pd.testing.assert_frame_equal(local, remote, check_exact=True)  # same rows, values, dtypes
                if len(local) != entity_rows or not local["conv_rate"].notna().any():
                    raise AssertionError(f"{len(local):,} rows of {entity_rows:,}, or no values at all")
                for path in outputs.values():
                    path.unlink()
        report.meta["foreign_cpu_cores"]["historical"] = round(noise.cores, 2)
    finally:
        server.stop()
    report.meta["historical"] = {"entity_rows": entity_rows, "feature_rows": int(1_000_000 / scale), **runs}
    local_runs, server_runs = runs["in-process"], runs["server"]
    rows = []
    for key, title in (
        (
            "seconds",
            f"training set, {entity_rows:,} entity rows x 3 features: the call, server vs in-process",
        ),
        ("process_seconds", "  … the whole fresh process: spawn → training set in hand"),
        ("total_cpu_seconds", "  … CPU seconds, client + server tree (steadier under load)"),
    ):
        lo, hi = median([r[key] for r in local_runs]), median([r[key] for r in server_runs])
        note = f"rounds: in-process {_spread(local_runs, key)}, server {_spread(server_runs, key)} s"
        if key == "seconds":
            note = f"server/in-process {hi / lo:.2f}x; {note}; results equal"
        elif key == "total_cpu_seconds":
            note += f"; the server's share {median([r['server_cpu_seconds'] for r in server_runs]):.2f} s"
        else:
            note = f"server/in-process {hi / lo:.2f}x; {note}"
        rows.append(Row("server_historical_features", title, "s", lo, hi, False, note=note))
    return rows


def _cores(runs: list[Result], parts: tuple[str, ...]) -> str:
    """How many cores each part kept busy over a round (median over rounds), as ``a + b + c``."""
    return " + ".join(f"{median([r[f'{p}_cpu_seconds'] / r['seconds'] for r in runs]):.2f}" for p in parts)


def _spread(runs: list[Result], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{min(values):.2f}-{max(values):.2f}"


# ==== server_tracking_workers ======================================================================


@contextlib.contextmanager
def _fresh_database(kind: str, home: Path) -> Iterator[str]:
    """A new, empty database; a PostgreSQL one is dropped afterwards."""
    if kind == "sqlite":
        home.mkdir(parents=True)
        yield f"sqlite:///{home / 'store.db'}"
        return
    import sqlalchemy as sa

    name = f"loopline_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # unreachable, or no driver: the rows say so
        raise RuntimeError(
            f"PostgreSQL unavailable at {PG_ADMIN} ({type(e).__name__}: {str(e).splitlines()[0]}); "
            "start it, point BENCH_POSTGRES at one, and install loopline[postgres] (make bench does)"
        ) from e
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _database_cpu(uri: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``uri``'s database, by pid: they are not in the
    server's process tree (a backend's title names its database). SQLite runs inside the server."""
    import psutil

    if not uri.startswith("postgresql"):
        return {}
    name = uri.rsplit("/", 1)[1]
    seconds = {}
    for p in psutil.process_iter(["cmdline", "cpu_times"]):
        title = (p.info["cmdline"] or [""])[0]
        if title.startswith("postgres:") and f" {name} " in title and p.info["cpu_times"]:
            seconds[p.pid] = p.info["cpu_times"].user + p.info["cpu_times"].system
    return seconds


def _writers(server: Server, uri: str, work: Path, sizes: Params) -> Result:
    """``CLIENTS`` writer processes released together; their rate, and the server tree's CPU."""
    ready, go = work / "ready", work / "go"
    ready.mkdir(parents=True)
    env = clean_env({"MLFLOW_TRACKING_URI": server.url})
    common = {**sizes, "ready": str(ready), "go": str(go)}
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [
            pool.submit(run_worker, NAME, "mlflow_writer", {**common, "index": i}, env, 900)
            for i in range(CLIENTS)
        ]
        while len(list(ready.iterdir())) < CLIENTS and not any(f.done() for f in futures):
            time.sleep(0.01)
        with ForeignLoad() as noise:
            t0, cpu0, db0 = time.monotonic(), server.cpu_seconds(), _database_cpu(uri)
            go.touch()  # also releases the others when one failed before the barrier
            writers = [f.result() for f in futures]
            server_cpu, db1 = server.cpu_seconds() - cpu0, _database_cpu(uri)
            window = time.monotonic() - t0
    wall = max(w["finished"] for w in writers) - min(w["started"] for w in writers)
    requests = sum(w["requests"] for w in writers)
    database_cpu = sum(cpu - db0.get(pid, 0.0) for pid, cpu in db1.items())
    return {
        "requests": requests,
        "seconds": wall,
        "requests_per_second": requests / wall,
        "server_cpu_seconds": server_cpu,
        "database_cpu_seconds": database_cpu,
        "client_cpu_seconds": sum(w["cpu_seconds"] for w in writers),
        # ForeignLoad counts PostgreSQL's backends as other processes: they are ours here
        "foreign_cpu_cores": round(max(0.0, noise.cores - database_cpu / window), 2),
        "writers": writers,
    }


def _compare_workers(kind: str, root: Path, sizes: Params, rounds: int) -> dict[int, list[Result]]:
    """Rounds against ``--workers 1`` and ``--workers 2``, alternating, each on its own fresh database.

    Both servers stay up, so that a round follows the last within seconds and load from other jobs
    drifts over both alike: the idle one is settled (under 5 % of a core) before any round starts.
    """
    runs: dict[int, list[Result]] = {1: [], 2: []}
    with contextlib.ExitStack() as stack:
        servers: dict[int, Server] = {}
        uris: dict[int, str] = {}
        for workers in runs:
            uri = uris[workers] = stack.enter_context(_fresh_database(kind, root / f"w{workers}" / "db"))
            server = servers[workers] = tracking_server(
                "loopline", root / f"w{workers}", store_uri=uri, workers=workers
            )
            stack.callback(server.stop)
            log(f"{NAME}: starting loopline server --workers {workers} on {kind}")
            server.start()
        for server in servers.values():
            server.settle()
        for n in range(rounds):
            for workers in (1, 2) if n % 2 == 0 else (2, 1):
                log(f"{NAME}: {CLIENTS} mlflow clients, {kind}, --workers {workers}, round {n + 1}")
                r = _writers(servers[workers], uris[workers], root / f"w{workers}" / f"round-{n}", sizes)
                runs[workers].append(r)
                log(
                    f"{NAME}: {r['requests_per_second']:.0f} req/s; CPU s: "
                    f"server {r['server_cpu_seconds']:.1f}, database {r['database_cpu_seconds']:.1f}, "
                    f"clients {r['client_cpu_seconds']:.1f}; "
                    f"wall {r['seconds']:.1f} s; "
                    f"other jobs {r['foreign_cpu_cores']:.2f} cores"
                )
        for workers, server in servers.items():  # what every round wrote is on the server
            writers = [w for r in runs[workers] for w in r["writers"]]
            run_worker(
                NAME, "mlflow_verify", {"writers": writers}, clean_env({"MLFLOW_TRACKING_URI": server.url})
            )
    return runs


def _tracking_workers(options: Options, root: Path, report: Report) -> list[Row]:
    sizes = {"runs": 15 if options.quick else 50, "singles_per_run": 3, "batch_every": 5}
    rounds = 1 if options.quick else 4
    figures: dict[str, dict[int, list[Result]]] = {}
    errors: dict[str, str] = {}
    for kind in ("postgresql", "sqlite"):
        with ForeignLoad() as noise:
            try:
                figures[kind] = _compare_workers(kind, root / kind, sizes, rounds)
            except (RuntimeError, WorkerError, AssertionError) as e:
                errors[kind] = str(e).splitlines()[0]
                log(f"{NAME}: {kind} FAILED: {e}")
        report.meta["foreign_cpu_cores"][f"workers {kind}"] = round(noise.cores, 2)
    report.meta["tracking_workers"] = {
        "clients": CLIENTS,
        "sizes": sizes,
        "rounds": {
            k: {w: [{**r, "writers": None} for r in rs] for w, rs in f.items()} for k, f in figures.items()
        },
        "errors": errors,
    }
    rows = []
    for kind, label in (("postgresql", "PostgreSQL"), ("sqlite", "SQLite")):
        one, two = figures.get(kind, {}).get(1, []), figures.get(kind, {}).get(2, [])
        if kind in errors or not one or not two:
            rows.append(
                Row("server_tracking_workers", f"{CLIENTS} mlflow clients writing, {label}: --workers 2 vs 1",
                    "req/s", None, None, True, error=errors.get(kind, "no rounds"))
            )  # fmt: skip
            continue

        rate = "requests_per_second"
        parts = ("server", "database", "client") if kind == "postgresql" else ("server", "client")
        rows.append(
            Row(
                "server_tracking_workers",
                f"{CLIENTS} mlflow clients writing, {label}: --workers 2 vs 1",
                "req/s",
                median([r[rate] for r in one]),
                median([r[rate] for r in two]),
                True,
                note=f"rounds: 1 worker {_spread(one, rate)}, 2 workers {_spread(two, rate)} req/s; "
                f"cores busy, {' + '.join(parts)}s: 1 worker {_cores(one, parts)}, "
                f"2 workers {_cores(two, parts)}; other jobs "
                f"{median([r['foreign_cpu_cores'] for r in one + two]):.2f}",
            )
        )
        per_request = [[r["server_cpu_seconds"] / r["requests"] * 1000 for r in runs] for runs in (one, two)]
        client = median([r["client_cpu_seconds"] / r["requests"] * 1000 for r in one + two])
        rows.append(
            Row(
                "server_tracking_workers",
                f"  … server CPU per request, {label}",
                "ms",
                median(per_request[0]),
                median(per_request[1]),
                False,
                note=f"{one[0]['requests']:,} requests a round; "
                f"the mlflow client's own CPU: {client:.2f} ms/request",
            )
        )
    return rows


# ==== the run ======================================================================================


def run(options: Options) -> Report:
    import importlib.metadata as md

    report = Report(
        NAME,
        TITLE,
        peer_name="baseline",
        meta={
            "mlflow_version": md.version("mlflow"),
            "loopline_version": md.version("loopline"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "quick": options.quick,
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "foreign_cpu_cores": {},
        },
    )
    with tempfile.TemporaryDirectory(
        prefix="loopline-bench-team-scale-", dir=os.environ.get("BENCH_TMP")
    ) as tmp:
        root = Path(tmp)
        if options.wants("server_historical_features"):
            try:
                report.rows += _historical(options, root / "historical", report)
            except (RuntimeError, WorkerError, AssertionError) as e:
                log(f"{NAME}: server_historical_features FAILED: {e}")
                report.rows.append(
                    Row("server_historical_features", "training set through the server vs in-process", "s",
                        None, None, False, error=str(e).splitlines()[0])
                )  # fmt: skip
            shutil.rmtree(root / "historical", ignore_errors=True)
        if options.wants("server_tracking_workers"):
            report.rows += _tracking_workers(options, root / "workers", report)
    report.meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


if __name__ == "__main__":
    module_main(run, WORKERS, sys.argv[1:])
