"""Serving, side by side: ``loopline serve`` vs ``mlflow models serve`` vs BentoML, driven by wrk.

The same scikit-learn model (a logistic regression on 20 features, trained once with a fixed seed)
is served by each system in turn, on 127.0.0.1, one server up at a time, each with its defaults
(one worker process). ``wrk`` (2 threads, keep-alive connections, a Lua script for the POST body)
loads it for a bounded duration; wrk shares the machine's cores with the server, as a sidecar
load generator would. Before any load, one request per server is checked against the model's own
prediction. Server CPU per request is the CPU time of the server's whole process tree during the
load, divided by the requests wrk completed.

Workloads (``--only``):

* ``single_row`` — one row per request, 16 connections: req/s, p50, p99, server CPU per request.
  Loopline with its defaults (adaptive batching on), MLflow, BentoML (plain API).
* ``batched`` — what batching buys: BentoML's ``batchable=True`` API and Loopline with
  ``--max-batch-size 1`` (off) on the same single-row load; then 100-row requests (rows/s).
* ``low_load`` — one connection: the latency a lone client sees (batching must not add to it).

The ratio table has one "peer" column (named ``mlflow`` by the shared harness): rows titled
"vs BentoML" hold BentoML's figure there.

Run: ``python -m benchmarks --only serving`` (or ``--only single_row``); one worker by hand:
``python -m benchmarks.serving --worker prepare '{"dir": "/tmp/x"}'``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Options,
    Report,
    Row,
    Server,
    WorkerError,
    clean_env,
    executable,
    free_port,
    log,
    run_worker,
    worker_main,
)

NAME = "serving"
TITLE = "Serving: loopline serve vs mlflow models serve vs BentoML (sklearn, 20 features, wrk, 127.0.0.1)"
WORKLOADS = {
    "single_row": "single-row requests at concurrency 16: req/s, p50/p99, server CPU per request",
    "batched": "adaptive batching on/off (loopline) and batchable/plain (BentoML); 100-row requests",
    "low_load": "one connection: the latency a lone client sees",
}
FEATURES = [f"f{i}" for i in range(20)]
CONCURRENCY = 16

Params = dict[str, Any]
Result = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    seconds: float
    low_load_seconds: float

    @classmethod
    def for_options(cls, options: Options) -> Sizes:
        return cls(4.0, 3.0) if options.quick else cls(10.0, 5.0)


# ==== workers: each in its own interpreter ===========================================================


def _data() -> Any:
    import numpy as np

    rng = np.random.default_rng(20)
    X = rng.normal(size=(2000, 20))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(int)
    return X, y


def prepare(p: Params) -> Result:
    """Train the model once and pickle it; every system is given these same weights."""
    import pickle

    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    model = LogisticRegression().fit(X, y)
    out = Path(p["dir"])
    with open(out / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    row = X[:1].tolist()
    return {"row": row[0], "prediction": int(model.predict(X[:1])[0]), "rows100": X[:100].tolist()}


def _frame(model_dir: Path) -> Any:
    import pickle

    import pandas as pd

    with open(model_dir / "model.pkl", "rb") as f:
        model = pickle.load(f)
    import numpy as np

    X, _ = _data()
    frame = pd.DataFrame(X, columns=FEATURES)
    model.feature_names_in_ = np.array(FEATURES, dtype=object)  # same weights; takes named columns now
    return model, frame


def mlflow_prepare(p: Params) -> Result:
    import mlflow.sklearn

    model, frame = _frame(Path(p["dir"]))
    mlflow.sklearn.save_model(model, p["model_dir"], input_example=frame[:5])
    return {"ok": True}


def loopline_prepare(p: Params) -> Result:
    import loopline
    from loopline.registry import log_model

    model, frame = _frame(Path(p["dir"]))
    with loopline.start_run(experiment="bench-serving"):
        info = log_model(model, "model", input_example=frame[:5], registered_model_name="churn")
    return {"version": info.registered_model_version}


BENTO_SERVICE = """
import os, pickle
import numpy as np
import bentoml


def _load():
    with open(os.environ["BENCH_MODEL"], "rb") as f:
        return pickle.load(f)


@bentoml.service(workers=1)
class Churn:
    def __init__(self) -> None:
        self.model = _load()

    @bentoml.api
    def predict(self, data: np.ndarray) -> np.ndarray:
        return self.model.predict(data)


@bentoml.service(workers=1)
class ChurnBatched:
    def __init__(self) -> None:
        self.model = _load()

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, data: np.ndarray) -> np.ndarray:
        return self.model.predict(data)
"""


WORKERS = {
    "prepare": prepare,
    "mlflow_prepare": mlflow_prepare,
    "loopline_prepare": loopline_prepare,
}


# ==== the load generator ==============================================================================


def _lua(path: Path, body: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, float]:
    exe = shutil.which("wrk")
    if exe is None:
        raise WorkerError("wrk is not installed (apt-get install wrk)")
    threads = min(2, connections)
    out = subprocess.run(
        [exe, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    figures: dict[str, float] = {}
    for label in ("50%", "90%", "99%"):
        m = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", out, re.M)
        if m:
            figures[f"p{label[:-1]}"] = _ms(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    figures["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    figures["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non2xx"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["socket_errors"] = float(sum(int(g) for g in m.groups())) if m else 0.0
    return figures


def _post(port: int, path: str, body: str) -> Any:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path} answered {resp.status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


# ==== the runner ======================================================================================


@dataclass
class System:
    name: str
    path: str
    body: Any  # (row or rows) -> JSON body
    check: Any  # response JSON -> list of predictions


def _split(rows: list[list[float]]) -> str:
    return json.dumps({"dataframe_split": {"columns": FEATURES, "data": rows}})


def _bento(rows: list[list[float]]) -> str:
    return json.dumps({"data": rows})


SYSTEMS = {
    "loopline": System("loopline", "/invocations", _split, lambda r: r["predictions"]),
    "mlflow": System("mlflow", "/invocations", _split, lambda r: r["predictions"]),
    "bentoml": System("bentoml", "/predict", _bento, lambda r: r),
}


class Bench:
    def __init__(self, options: Options, root: Path) -> None:
        self.options = options
        self.sizes = Sizes.for_options(options)
        self.root = root
        self.figures: dict[str, dict[str, float]] = {}
        self.errors: dict[str, str] = {}
        self.ref: Result = {}

    def wants(self, *workloads: str) -> bool:
        return any(self.options.wants(w) for w in workloads)

    def prepare(self) -> None:
        log("training the model …")
        self.ref = run_worker(NAME, "prepare", {"dir": str(self.root)}, clean_env())
        (self.root / "bento").mkdir()
        (self.root / "bento" / "service.py").write_text(BENTO_SERVICE)

    def server(self, label: str) -> Server:
        port = free_port()
        home = self.root / "loopline-home"
        if label.startswith("loopline"):
            env = clean_env({"LOOPLINE_TRACKING_URI": f"sqlite:///{home / 'store.db'}"})
            if not (home / "store.db").exists():
                home.mkdir(exist_ok=True)
                run_worker(NAME, "loopline_prepare", {"dir": str(self.root)}, env)
            extra = ["--max-batch-size", "1"] if label == "loopline-nobatch" else []
            cmd = [executable("loopline"), "serve", "models:/churn/1", "--port", str(port),
                   "--log-level", "warning", *extra]  # fmt: skip
            return Server(label, cmd, port, env, self.root / f"{label}.log")
        if label == "mlflow":
            model_dir = self.root / "mlflow-model"
            # `mlflow models serve` runs `bash -c "exec uvicorn …"`: uvicorn must be on PATH.
            env = clean_env(
                {"PATH": f"{Path(executable('mlflow')).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
            )
            if not model_dir.exists():
                run_worker(NAME, "mlflow_prepare", {"dir": str(self.root), "model_dir": str(model_dir)}, env)
            cmd = [executable("mlflow"), "models", "serve", "-m", str(model_dir), "-h", "127.0.0.1",
                   "-p", str(port), "--env-manager", "local"]  # fmt: skip
            return Server(label, cmd, port, env, self.root / "mlflow.log")
        service = "ChurnBatched" if label == "bentoml-batched" else "Churn"
        env = clean_env({"BENCH_MODEL": str(self.root / "model.pkl"), "BENTOML_DO_NOT_TRACK": "true"})
        bento_dir = str(self.root / "bento")
        cmd = [executable("bentoml"), "serve", f"service:{service}", "--working-dir", bento_dir,
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        return Server(label, cmd, port, env, self.root / f"{label}.log")

    def measure(self, label: str) -> None:
        system = SYSTEMS[label.split("-")[0]]
        server = self.server(label)
        health = "/readyz" if system.name == "bentoml" else "/ping"
        log(f"{label}: starting …")
        try:
            startup = server.start(health=health)
            server.settle()
            log(f"{label}: up in {startup:.1f} s")
            one = system.body([self.ref["row"]])
            got = system.check(_post(server.port, system.path, one))
            if [int(v) for v in got] != [self.ref["prediction"]]:
                raise RuntimeError(f"{label} predicted {got}, the model says {self.ref['prediction']}")
            figures: dict[str, float] = {"startup": startup}
            url = server.url + system.path
            single = _lua(self.root / f"{label}-1.lua", one)
            if (label in ("loopline", "mlflow", "bentoml") and self.wants("single_row")) or (
                label in ("loopline-nobatch", "bentoml-batched") and self.wants("batched")
            ):
                cpu0 = server.cpu_seconds()
                r = wrk(url, single, CONCURRENCY, self.sizes.seconds)
                cpu = server.cpu_seconds() - cpu0
                figures.update({f"single_{k}": v for k, v in r.items()})
                figures["single_cpu_ms"] = cpu / max(r["requests"], 1) * 1000
                log(f"{label}: single row x{CONCURRENCY}: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, "
                    f"p99 {r['p99']:.2f} ms, {figures['single_cpu_ms']:.3f} ms CPU/req, "
                    f"non-2xx {r['non2xx']:.0f}")  # fmt: skip
            if label in ("loopline", "mlflow", "bentoml") and self.wants("batched"):
                rows100 = self.ref["rows100"]
                got = system.check(_post(server.port, system.path, system.body(rows100)))
                if len(got) != 100:
                    raise RuntimeError(f"{label} answered {len(got)} predictions for 100 rows")
                bulk = _lua(self.root / f"{label}-100.lua", system.body(rows100))
                r = wrk(url, bulk, CONCURRENCY, self.sizes.seconds)
                figures["bulk_rows_per_s"] = r["rps"] * 100
                figures["bulk_non2xx"] = r["non2xx"]
                log(f"{label}: 100-row requests: {r['rps'] * 100:.0f} rows/s")
            if label in ("loopline", "mlflow", "bentoml") and self.wants("low_load"):
                r = wrk(url, single, 1, self.sizes.low_load_seconds)
                figures.update({f"low_{k}": v for k, v in r.items()})
                log(f"{label}: one connection: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms")
            self.figures[label] = figures
        except Exception as e:
            log(f"{label}: FAILED: {e}\n{server.log_tail()}")
            self.errors[label] = str(e).splitlines()[0][:200]
        finally:
            server.stop()

    def get(self, label: str, key: str) -> float | None:
        return self.figures.get(label, {}).get(key)

    def rows(self) -> list[Row]:
        s = self.sizes
        dur = f"{s.seconds:g} s, c={CONCURRENCY}"
        out: list[Row] = []

        def row(workload: str, title: str, unit: str, peer: str, key: str, higher: bool, *,
                mine: str = "loopline", my_key: str | None = None, **extra: Any) -> None:  # fmt: skip
            if not self.options.wants(workload):
                return
            errors = "; ".join(f"{x}: {self.errors[x]}" for x in (peer, mine) if x in self.errors)
            out.append(Row(workload, title, unit, self.get(peer, key), self.get(mine, my_key or key), higher,
                           error=errors or None, **extra))  # fmt: skip

        bento = "peer: BentoML 1.4.40"
        row(
            "single_row",
            "1. single-row req/s vs MLflow",
            "req/s",
            "mlflow",
            "single_rps",
            True,
            goal_ratio=10,
            note=dur,
        )
        row(
            "single_row",
            "1. single-row req/s vs BentoML",
            "req/s",
            "bentoml",
            "single_rps",
            True,
            goal_ratio=2,
            note=f"{bento}; {dur}",
        )
        row("single_row", "1. p50 latency vs MLflow", "ms", "mlflow", "single_p50", False, note=dur)
        row("single_row", "1. p50 latency vs BentoML", "ms", "bentoml", "single_p50", False, note=bento)
        row(
            "single_row",
            "1. p99 latency vs MLflow",
            "ms",
            "mlflow",
            "single_p99",
            False,
            goal_ratio=1,
            note=dur,
        )
        row(
            "single_row",
            "1. p99 latency vs BentoML",
            "ms",
            "bentoml",
            "single_p99",
            False,
            goal_ratio=1,
            note=bento,
        )
        row(
            "single_row",
            "1. server CPU per request vs MLflow",
            "ms",
            "mlflow",
            "single_cpu_ms",
            False,
            note="process tree CPU / requests",
        )
        row(
            "single_row",
            "1. server CPU per request vs BentoML",
            "ms",
            "bentoml",
            "single_cpu_ms",
            False,
            note=bento,
        )
        row(
            "batched",
            "2. batching on vs off (loopline only)",
            "req/s",
            "loopline-nobatch",
            "single_rps",
            True,
            note="peer column: loopline --max-batch-size 1",
        )
        row(
            "batched",
            "2. loopline adaptive vs BentoML batchable",
            "req/s",
            "bentoml-batched",
            "single_rps",
            True,
            note=f"{bento} batchable=True, max_batch_size=64",
        )
        row(
            "batched",
            "2. p99: loopline adaptive vs BentoML batchable",
            "ms",
            "bentoml-batched",
            "single_p99",
            False,
            note=bento,
        )
        row("batched", "2. 100-row requests vs MLflow", "rows/s", "mlflow", "bulk_rows_per_s", True, note=dur)
        row(
            "batched",
            "2. 100-row requests vs BentoML",
            "rows/s",
            "bentoml",
            "bulk_rows_per_s",
            True,
            note=bento,
        )
        row(
            "low_load",
            "3. one connection p50 vs MLflow",
            "ms",
            "mlflow",
            "low_p50",
            False,
            note=f"{s.low_load_seconds:g} s",
        )
        row("low_load", "3. one connection p50 vs BentoML", "ms", "bentoml", "low_p50", False, note=bento)
        return out


def run(options: Options) -> Report:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    report = Report(
        NAME,
        TITLE,
        meta={
            "mlflow_version": version("mlflow"),
            "bentoml_version": version("bentoml"),
            "loopline_version": version("loopline"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "quick": options.quick,
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "only": sorted(options.only),
            "concurrency": CONCURRENCY,
            "load_generator": "wrk -t2 (keep-alive), on the same machine",
        },
    )
    with tempfile.TemporaryDirectory(prefix="loopline-bench-serving-") as tmp:
        bench = Bench(options, Path(tmp))
        try:
            bench.prepare()
        except WorkerError as e:
            bench.errors.update({k: f"prepare: {e}" for k in ("loopline", "mlflow", "bentoml")})
        else:
            labels = ["mlflow", "bentoml", "loopline"]
            if bench.wants("batched"):
                labels += ["bentoml-batched", "loopline-nobatch"]
            for label in labels:
                if label == "bentoml" or label == "bentoml-batched":
                    try:
                        executable("bentoml")
                    except SystemExit as e:
                        bench.errors[label] = str(e)
                        continue
                bench.measure(label)
                time.sleep(1)
        report.rows = bench.rows()
        report.meta["figures"] = bench.figures
        report.meta["errors"] = bench.errors
    report.meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


if __name__ == "__main__":
    worker_main(WORKERS, sys.argv[1:])
