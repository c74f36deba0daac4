"""Registry, side by side: ``load_model`` + the first prediction of a registered scikit-learn model.

One model — ``Pipeline(StandardScaler, LogisticRegression)`` on 20 float features, trained from a
fixed seed — is logged, registered as ``m`` and given the alias ``champion`` by each system's own
client (``mlflow.sklearn.log_model`` + ``MlflowClient.set_registered_model_alias``;
``loopline.log_model`` + ``RegistryClient.set_alias``). Then, in fresh interpreters, each system
loads it by alias and predicts one row:

    mlflow.pyfunc.load_model("models:/m@champion").predict(X[:1])
    loopline.load_model("models:/m@champion").predict(X[:1])

Workloads (``--only``):

* ``model_load_server`` — against each system's own server (``mlflow server`` / ``loopline server``,
  SQLite + a local artifact folder, one worker, one server up at a time): the client downloads the
  model through the server's artifact proxy.
* ``model_load_local`` — no server: MLflow on a ``sqlite:///`` tracking URI (artifacts in a local
  folder), Loopline embedded (``sqlite:///`` + a local artifact root).

Each figure is the median over N fresh worker processes (7; ``--quick``: 5):

* **cold** — nothing of either system imported beforehand: ``import mlflow`` / ``import loopline``,
  then ``load_model`` + building the one-row DataFrame + ``predict`` (Loopline imports its registry
  on first use, so its import row is near zero and the work shows in the load row); then a second
  ``load_model`` + ``predict`` in the same process (the **warm** row);
* **stack pre-imported** — scikit-learn, skops, pandas and the library's model-loading modules are
  imported first; only the first ``load_model`` + ``predict`` is timed: the library's own work;
* **import floor** — a process that only imports what each system's load cannot do without:
  pandas (the one-row DataFrame), the model's scikit-learn modules and ``skops.io``, whose import
  builds skops' default trusted lists (it imports every scikit-learn module). "Minus its import
  floor" is the cold figure less the system's own floor: what each library adds. The peer's cold
  time over Loopline's floor is the best ratio any loader could reach here;
* **bare library** (no server only; alternating with the cold row's processes) — a fresh process
  that loads the same ``model.skops`` file with skops alone (``import skops.io;
  skops.io.load(file, trusted=…)``) and predicts: a cold ``load_model`` should stay within 2.5x of
  it (the rest is the registry's: lookup, download, digests).

Every prediction is checked against the training process's, and Loopline's model against the
registered version (digests verified). When Loopline misses the goal of a cold row, one more
worker profiles a cold load: ``meta.profile`` has the import self-time per top-level package
(``-X importtime``) and Loopline's heaviest functions (cProfile, stack pre-imported).

Run: ``python -m benchmarks --only registry``; one worker by hand (needs the URI variables):
``python -m benchmarks.registry --worker loopline_load '{"uri": "models:/m@champion", ...}'``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    ForeignLoad,
    Options,
    Report,
    Row,
    WorkerError,
    clean_env,
    log,
    median,
    run_worker,
    tracking_server,
    worker_main,
)

NAME = "registry"
TITLE = "Registry: load_model + first prediction, mlflow.pyfunc vs loopline (sklearn pipeline, 20 features)"
WORKLOADS = {
    "model_load_server": "load a registered model by alias from each system's own server, predict one row",
    "model_load_local": "the same with no server (MLflow on a sqlite:/// URI, Loopline embedded)",
}
SYSTEMS = ("mlflow", "loopline")
MODES = {"model_load_server": "server", "model_load_local": "local"}
MODEL = "m"
URI = f"models:/{MODEL}@champion"
FEATURES = [f"f{i}" for i in range(20)]
GOAL = 3.0

Params = dict[str, Any]
Result = dict[str, Any]


# ==== workers: each runs in its own interpreter, imports only its own system =======================


def _data() -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(20)
    X = pd.DataFrame(rng.normal(size=(2000, len(FEATURES))), columns=FEATURES)
    y = (X.f0 + 0.5 * X.f1 - X.f2 > 0).astype(int)
    return X, y


def _model() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data()
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _prepared(model: Any, X: Any, version: Any) -> Result:
    return {"version": int(version), "row": X.iloc[0].tolist(), "expected": int(model.predict(X[:1])[0])}


def mlflow_prepare(p: Params) -> Result:
    import mlflow
    from mlflow import MlflowClient

    model, X = _model()
    client = MlflowClient()
    kwargs = {"artifact_location": Path(p["artifacts"]).as_uri()} if p.get("artifacts") else {}
    exp_id = client.create_experiment("bench-registry", **kwargs)
    with mlflow.start_run(experiment_id=exp_id):
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:5], registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", str(info.registered_model_version))
    _check(str(client.get_model_version_by_alias(MODEL, "champion").version) == "1", "mlflow: alias not set")
    return _prepared(model, X, info.registered_model_version)


def loopline_prepare(p: Params) -> Result:
    import loopline
    from loopline.registry import RegistryClient
    from loopline.registry.mlmodel import MLmodel
    from loopline.registry.models import fetch
    from loopline.uris import artifact_path

    model, X = _model()
    with loopline.start_run(experiment="bench-registry"):
        info = loopline.log_model(model, "model", input_example=X[:5], registered_model_name=MODEL)
    version = info.registered_model_version
    _check(version is not None, "loopline: the model was not registered")
    rc = RegistryClient()
    rc.set_alias(MODEL, "champion", version or 0)
    mv = rc.get_model_version_by_alias(MODEL, "champion")
    _check(mv.version == 1, "loopline: alias not set")
    out = _prepared(model, X, version)
    if p.get("bare"):  # the registered files, in a plain folder, for the bare-library row
        fetch(rc.tracking.artifacts, artifact_path(mv.source), Path(p["bare"]))
        conf = MLmodel.load(Path(p["bare"])).flavors["sklearn"]
        out["bare"] = {
            "file": str(Path(p["bare"]) / conf["pickled_model"]),
            "trusted": conf["skops_trusted_types"],
        }
    return out


_STACK = ("pandas", "sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing", "skops.io")


def _preimport(system: str) -> None:
    """The whole stack a load needs, imported before any timing (the ``preimported`` variant)."""
    import importlib

    stack = list(_STACK)
    if system == "mlflow":
        stack += ["mlflow", "mlflow.pyfunc", "mlflow.sklearn"]
    else:
        stack += ["loopline", "loopline.registry", "loopline.registry.flavors.sklearn"]
    for module in stack:
        importlib.import_module(module)


def _timed_load(system: str, p: Params) -> Result:
    """Import, first load + predict, second load + predict: wall seconds of each, checked."""
    preimported = bool(p.get("preimport"))
    if preimported:
        _preimport(system)
    t0 = time.perf_counter()
    if system == "mlflow":
        import mlflow

        t1 = time.perf_counter()
        load: Callable[[str], Any] = mlflow.pyfunc.load_model  # attribute access may import: timed
    else:
        import loopline

        t1 = time.perf_counter()
        load = loopline.load_model  # a lazy attribute: loads loopline.registry, timed as part of the load
    model = load(p["uri"])
    import pandas as pd

    row = pd.DataFrame([p["row"]], columns=FEATURES)
    first = model.predict(row)
    t2 = time.perf_counter()
    again = load(p["uri"]).predict(row)
    t3 = time.perf_counter()
    for pred in (first, again):
        got = int(pred.iloc[0] if hasattr(pred, "iloc") else pred[0])
        _check(got == p["expected"], f"{system} predicted {got}, expected {p['expected']}")
    if system == "loopline":
        _check(model.verified and model.version.version == p["version"], "loopline: not the verified version")
    return {"import": t1 - t0, "load_predict": t2 - t1, "total": t2 - t0, "warm": t3 - t2}


def floor(p: Params) -> Result:
    """Import only what a cold load + predict of this model cannot do without (``_STACK``)."""
    import importlib

    t0 = time.perf_counter()
    for module in _STACK:
        importlib.import_module(module)
    return {"seconds": time.perf_counter() - t0}


def bare_load(p: Params) -> Result:
    """The model's skops file loaded by skops alone, and one prediction: fresh process, wall seconds."""
    t0 = time.perf_counter()
    import skops.io as sio

    model = sio.load(p["file"], trusted=p["trusted"])
    import pandas as pd

    got = int(model.predict(pd.DataFrame([p["row"]], columns=FEATURES))[0])
    seconds = time.perf_counter() - t0
    _check(got == p["expected"], f"bare skops predicted {got}, expected {p['expected']}")
    return {"total": seconds}


def mlflow_load(p: Params) -> Result:
    return _timed_load("mlflow", p)


def loopline_load(p: Params) -> Result:
    return _timed_load("loopline", p)


_COLD = """
import json, sys, time
p = json.loads(sys.argv[1])
t0 = time.perf_counter()
import loopline
model = loopline.load_model(p["uri"])
import pandas as pd
model.predict(pd.DataFrame([p["row"]], columns=p["features"]))
print(time.perf_counter() - t0)
"""


def _import_seconds_by_package(p: Params) -> tuple[float, dict[str, float]]:
    """A cold load + predict under ``-X importtime``: wall seconds, import self-time per package."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _COLD, json.dumps({**p, "features": FEATURES})],
        capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    by_package: dict[str, float] = {}
    for line in done.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        package = fields[2].strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(fields[0]) / 1e6
    top = dict(sorted(by_package.items(), key=lambda kv: -kv[1])[:15])
    return float(done.stdout.strip().splitlines()[-1]), {k: round(v, 3) for k, v in top.items()}


def loopline_profile(p: Params) -> Result:
    """Where a cold Loopline load spends its time.

    Imports: a cold load + predict in a child interpreter under ``-X importtime``, summed per
    top-level package (own time of each module's body). Work: with the stack imported, one
    ``load_model`` + ``predict`` under cProfile; Loopline's functions by cumulative time.
    """
    import cProfile
    import pstats

    wall, imports = _import_seconds_by_package(p)
    _preimport("loopline")
    import pandas as pd

    import loopline

    row = pd.DataFrame([p["row"]], columns=FEATURES)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    loopline.load_model(p["uri"]).predict(row)
    profiler.disable()
    work = time.perf_counter() - t0
    stats: Any = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, own, cumulative, callers)}
    ours = sorted(
        (
            (cum, f"{Path(f).name}:{line} {name}")
            for (f, line, name), (_, _, _, cum, _) in stats.items()
            if f"{os.sep}loopline{os.sep}" in f
        ),
        reverse=True,
    )
    return {
        "cold_wall_under_importtime": wall,
        "import_self_seconds_by_package": imports,
        "work_seconds_preimported": work,
        "loopline_cumulative": [[round(c, 4), where] for c, where in ours[:15]],
    }


WORKERS: dict[str, Callable[[Params], Result]] = {
    f.__name__: f
    for f in (
        mlflow_prepare,
        loopline_prepare,
        floor,
        bare_load,
        mlflow_load,
        loopline_load,
        loopline_profile,
    )
}


# ==== orchestration =================================================================================


def local_env(system: str, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{home / 'store.db'}"
    if system == "mlflow":
        return clean_env({"MLFLOW_TRACKING_URI": uri})
    return clean_env({"LOOPLINE_TRACKING_URI": uri, "LOOPLINE_ARTIFACTS_URI": str(home / "artifacts")})


class Bench:
    """Collects ``samples[mode][system][variant]`` (lists of per-process dicts) and errors."""

    def __init__(self, options: Options, root: Path) -> None:
        self.options = options
        self.processes = 5 if options.quick else 7
        self.root = root
        self.samples: dict[str, dict[str, dict[str, list[Result]]]] = {}
        self.errors: dict[str, dict[str, str]] = {}
        self.prepared: dict[str, dict[str, Result]] = {}
        self.profiles: dict[str, Result] = {}
        self.floor: dict[str, list[float]] = {}
        self.bare: list[float] = []

    def measure_floor(self) -> None:
        """Each system's import floor, in as many fresh processes as every other figure."""
        for system in SYSTEMS:
            try:
                self.floor[system] = [
                    run_worker(NAME, "floor", {"system": system}, clean_env())["seconds"]
                    for _ in range(self.processes)
                ]
            except WorkerError as e:
                log(f"floor/{system}: FAILED: {e}")
                self.errors.setdefault("floor", {})[system] = str(e).splitlines()[0]
                continue
            shown = ", ".join(f"{x:.2f}" for x in self.floor[system])
            log(f"floor/{system}: import {' + '.join(_STACK)} (s): {shown}")

    def measure(self, mode: str, system: str, env: dict[str, str], artifacts: Path | None) -> None:
        """Log + register + alias with the system's own client, then time loads in fresh workers."""
        log(f"{mode}/{system}: log + register + alias …")
        bare = self.root / "bare" if system == "loopline" and mode == "local" else None
        prep = run_worker(
            NAME,
            f"{system}_prepare",
            {"artifacts": str(artifacts) if artifacts else "", "bare": str(bare) if bare else ""},
            env,
        )
        self.prepared.setdefault(mode, {})[system] = prep
        params = {"uri": URI, "row": prep["row"], "expected": prep["expected"], "version": prep["version"]}
        out = self.samples.setdefault(mode, {}).setdefault(system, {"cold": [], "preimported": []})
        for variant in ("cold", "preimported"):
            for _ in range(self.processes):
                out[variant].append(
                    run_worker(NAME, f"{system}_load", {**params, "preimport": variant == "preimported"}, env)
                )
                if variant == "cold" and "bare" in prep:  # alternately: both see the same machine
                    self.bare.append(
                        run_worker(NAME, "bare_load", {**params, **prep["bare"]}, clean_env())["total"]
                    )
            totals = ", ".join(f"{r['total']:.2f}" for r in out[variant])
            log(f"{mode}/{system}: {variant} import + load + predict (s): {totals}")
        if self.bare:
            log(f"bare skops.io: import + load + predict (s): {', '.join(f'{x:.2f}' for x in self.bare)}")
        if system == "loopline" and self._misses_goal(mode):
            log(f"{mode}/loopline: below {GOAL:g}x on the cold row, profiling one cold load …")
            self.profiles[mode] = run_worker(NAME, "loopline_profile", params, env)

    def _misses_goal(self, mode: str) -> bool:
        ml = self.figure(mode, "mlflow", "cold", "total")
        ll = self.figure(mode, "loopline", "cold", "total")
        return ml is None or ll is None or ml / ll < GOAL

    def run_mode(self, workload: str, system: str) -> None:
        mode = MODES[workload]
        home = self.root / f"{mode}-{system}"
        try:
            if mode == "local":
                self.measure(mode, system, local_env(system, home), home / "artifacts")
                return
            server = tracking_server(system, home)
            try:
                log(f"server/{system}: starting on port {server.port} …")
                up = server.start()
                settled = server.settle()
                log(f"server/{system}: healthy after {up:.2f} s, idle after {settled:.1f} s more")
                url = {"mlflow": "MLFLOW_TRACKING_URI", "loopline": "LOOPLINE_TRACKING_URI"}[system]
                self.measure(mode, system, clean_env({url: server.url}), None)
            finally:
                server.stop()
        except (WorkerError, RuntimeError) as e:
            log(f"{mode}/{system}: FAILED: {e}")
            self.errors.setdefault(mode, {})[system] = str(e).splitlines()[0]

    def figure(self, mode: str, system: str, variant: str, key: str) -> float | None:
        samples = self.samples.get(mode, {}).get(system, {}).get(variant, [])
        return median([s[key] for s in samples]) if samples else None

    def rows(self) -> list[Row]:
        specs: list[tuple[str, str, str, float | None]] = [
            # (variant, key, title, goal ratio)
            ("cold", "total", "cold process: import + load_model + first predict", GOAL),
            ("cold", "import", "  of which import mlflow / import loopline", None),
            ("cold", "load_predict", "  of which load_model + first predict", None),
            ("cold", "above_floor", "  minus its import floor (what the library adds)", None),
            ("preimported", "load_predict", "stack pre-imported: first load_model + predict", None),
            ("cold", "warm", "same process, 2nd load_model + predict", None),
        ]
        label = {"server": "own server", "local": "no server"}
        floor = {system: median(xs) for system, xs in self.floor.items() if xs}
        out = []
        for workload, mode in MODES.items():
            if not self.options.wants(workload):
                continue
            errors = self.errors.get(mode, {})
            for variant, key, title, goal in specs:
                both = {**errors, **self.errors.get("floor", {})} if key == "above_floor" else errors
                error = "; ".join(f"{s}: {e}" for s, e in both.items()) or None
                figures = []
                for system in SYSTEMS:
                    if key == "above_floor":
                        total = self.figure(mode, system, variant, "total")
                        below = floor.get(system)
                        figures.append(total - below if total is not None and below is not None else None)
                    else:
                        figures.append(self.figure(mode, system, variant, key))
                notes = {
                    "total": f"median of {self.processes} processes",
                    "import": "loopline imports on first use",
                    "above_floor": "cold minus the floor row",
                }
                out.append(
                    Row(workload, f"{label[mode]}: {title}", "s", figures[0], figures[1], False,
                        goal_ratio=goal, note=notes.get(key, ""), error=error)
                )  # fmt: skip
        if self.bare and self.options.wants("model_load_local"):
            out.append(
                Row("model_load_local", "no server, cold: bare skops.io (peer column) vs load_model", "s",
                    median(self.bare), self.figure("local", "loopline", "cold", "total"), False,
                    goal_ratio=1 / 2.5, note="import skops.io + skops.io.load + predict; goal: within 2.5x")
            )  # fmt: skip
        if out:
            floor_error = "; ".join(f"{s}: {e}" for s, e in self.errors.get("floor", {}).items()) or None
            out.append(
                Row(out[0].workload, "import floor: pandas + scikit-learn + skops.io", "s",
                    floor.get("mlflow"), floor.get("loopline"), False,
                    note="what each load cannot skip; peer cold ÷ this = the best ratio possible",
                    error=floor_error)
            )  # fmt: skip
        return out


def run(options: Options) -> Report:
    import importlib.metadata as md

    report = Report(
        NAME,
        TITLE,
        meta={
            "mlflow_version": md.version("mlflow"),
            "loopline_version": md.version("loopline"),
            "scikit_learn_version": md.version("scikit-learn"),
            "skops_version": md.version("skops"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "quick": options.quick,
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
            "only": sorted(options.only),
        },
    )
    with tempfile.TemporaryDirectory(prefix="loopline-bench-registry-") as tmp:
        bench = Bench(options, Path(tmp))
        foreign: dict[str, float] = {}
        if any(options.wants(w) for w in MODES):
            with ForeignLoad() as load:
                bench.measure_floor()
            foreign["floor"] = round(load.cores, 2)
        for workload in MODES:
            if not options.wants(workload):
                continue
            for system in SYSTEMS:  # one system at a time: the other's server is not running
                name = f"{MODES[workload]} {system}"
                with ForeignLoad() as load:
                    bench.run_mode(workload, system)
                foreign[name] = round(load.cores, 2)
                if load.cores > 0.25:
                    log(f"warning: other processes kept {load.cores:.2f} cores busy during {name}")
        report.rows = bench.rows()
        report.meta["foreign_cpu_cores"] = foreign
        report.meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        report.meta["processes_per_figure"] = bench.processes
        report.meta["samples"] = bench.samples
        report.meta["floor"] = bench.floor
        report.meta["bare_skops"] = bench.bare
        report.meta["prepared"] = {
            m: {s: {k: v for k, v in r.items() if k != "row"} for s, r in by.items()}
            for m, by in bench.prepared.items()
        }
        report.meta["errors"] = bench.errors
        report.meta["profile"] = bench.profiles
        for mode, prof in bench.profiles.items():
            top = ", ".join(
                f"{k} {v:.2f}" for k, v in list(prof["import_self_seconds_by_package"].items())[:10]
            )
            log(f"{mode}/loopline: import self-time by package (s): {top}")
            work = "; ".join(f"{c:.3f} {w}" for c, w in prof["loopline_cumulative"][:8])
            log(f"{mode}/loopline: load + predict with the stack imported, cumulative (s): {work}")
    return report


if __name__ == "__main__":
    worker_main(WORKERS, sys.argv[1:])
