"""Pipelines, side by side: the overhead of a trivial 100-step pipeline, Loopline vs Prefect, locally.

Both systems run the same chain of N trivial steps (``inc(x) = x + 1``, each consuming the
previous one's output), with their defaults, on this machine:

    Loopline: @step / @pipeline, Runner() on an embedded store (SQLite + a local artifact folder),
              local executor; every step is fingerprinted, cache-checked, its output stored and
              registered, lineage written; the run is a tracked run.
    Prefect:  @task / @flow, run locally: the flow starts Prefect's ephemeral API server (SQLite)
              and records every task run there. Console logging is turned down to WARNING so that
              printing is not counted against it.

Each worker is a fresh interpreter of the system's own venv (Prefect in ``.venv-bench-pipelines``,
``benchmarks/requirements-pipelines.txt``). It imports the library, runs a 1-step warm-up pipeline
(Prefect starts its server here; Loopline opens and migrates its store), then runs the 10-step and
the 100-step pipelines, timing each. Figures are medians over fresh processes (5; ``--quick``: 3):

* **per step, 100-step run** — the 100-step run's wall time / 100 (the goal row: >= 5x less);
* **per extra step** — (t100 - t10) / 90: the marginal cost of one more step;
* **fixed cost of a run** — t10 minus 10 marginal steps: what a run costs besides its steps;
* **first run in a fresh process** — import + warm-up + the 100-step run, wall time.

Run: ``python -m benchmarks --only pipelines``, or alone:
``.venv-bench/bin/python -m benchmarks.pipelines``.
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
    module_main,
    peer_python,
    run_worker,
)

NAME = "pipelines"
TITLE = "Pipelines: overhead of a trivial N-step chain, local executor, Prefect vs Loopline"
WORKLOADS = ("pipeline_overhead",)
SYSTEMS = ("prefect", "loopline")
GOAL = 5.0
SIZES = (1, 10, 100)

Params = dict[str, Any]
Result = dict[str, Any]


def _timed(run: Callable[[int], int]) -> dict[str, float]:
    out = {}
    for n in SIZES:
        t0 = time.perf_counter()
        value = run(n)
        out[str(n)] = time.perf_counter() - t0
        if value != n:
            raise SystemExit(f"a {n}-step chain returned {value}, not {n}")
    return out


def loopline_chain(p: Params) -> Result:
    t0 = time.perf_counter()
    from loopline.pipelines import Runner, pipeline, step

    @step
    def inc(x: int) -> int:
        return x + 1

    @pipeline
    def chain(n: int = 1) -> Any:
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    imported = time.perf_counter() - t0
    with Runner() as runner:

        def run(n: int) -> int:
            result = runner.run(chain, {"n": n})
            if result.status != "succeeded":
                raise SystemExit(result.error)
            return int(result.outputs)

        times = _timed(run)
    return {"import": imported, "times": times, "total": time.perf_counter() - t0}


def prefect_chain(p: Params) -> Result:
    t0 = time.perf_counter()
    from prefect import flow, task

    @task
    def inc(x: int) -> int:
        return x + 1

    @flow
    def chain(n: int = 1) -> int:
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    imported = time.perf_counter() - t0
    times = _timed(lambda n: int(chain(n)))
    import prefect

    return {
        "import": imported,
        "times": times,
        "total": time.perf_counter() - t0,
        "version": prefect.__version__,
    }


WORKERS: dict[str, Callable[[Params], Result]] = {
    "loopline_chain": loopline_chain,
    "prefect_chain": prefect_chain,
}


def _env(system: str, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    if system == "prefect":
        return clean_env(
            {
                "PREFECT_HOME": str(home / "prefect"),
                "PREFECT_LOGGING_LEVEL": "WARNING",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                # its server takes longer than the default 20 s to come up on a busy 2-core machine
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
            }
        )
    return clean_env(
        {
            "LOOPLINE_TRACKING_URI": f"sqlite:///{home / 'loopline.db'}",
            "LOOPLINE_ARTIFACTS_URI": str(home / "art"),
        }
    )


def _figures(samples: list[Result]) -> dict[str, float]:
    t1 = median([s["times"]["1"] for s in samples])
    t10 = median([s["times"]["10"] for s in samples])
    t100 = median([s["times"]["100"] for s in samples])
    marginal = (t100 - t10) / 90
    return {
        "per_step_ms": t100 / 100 * 1000,
        "marginal_ms": marginal * 1000,
        "fixed_ms": (t10 - 10 * marginal) * 1000,
        "warmup_s": t1,
        "fresh_s": median([s["import"] + s["times"]["1"] + s["times"]["100"] for s in samples]),
    }


def run(options: Options) -> Report:
    import importlib.metadata as md

    processes = 3 if options.quick else 5
    report = Report(
        NAME,
        TITLE,
        peer_name="prefect",
        meta={
            "loopline_version": md.version("loopline"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "quick": options.quick,
            "processes_per_figure": processes,
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
    )
    if not options.wants("pipeline_overhead"):
        return report
    samples: dict[str, list[Result]] = {s: [] for s in SYSTEMS}
    errors: dict[str, str] = {}
    foreign: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="loopline-bench-pipelines-") as tmp:
        for system in SYSTEMS:
            python = peer_python(NAME) if system == "prefect" else None
            with ForeignLoad() as load:
                try:
                    for i in range(processes):
                        env = _env(system, Path(tmp) / f"{system}-{i}")
                        samples[system].append(run_worker(NAME, f"{system}_chain", {}, env, python=python))
                        t = samples[system][-1]["times"]
                        log(f"{system}: 1/10/100 steps in {t['1']:.2f}/{t['10']:.2f}/{t['100']:.2f} s")
                except WorkerError as e:
                    log(f"{system}: FAILED: {e}")
                    errors[system] = str(e).splitlines()[0]
            foreign[system] = round(load.cores, 2)
            if load.cores > 0.25:
                log(f"warning: other processes kept {load.cores:.2f} cores busy during {system}")
    figs = {s: _figures(samples[s]) if samples[s] else {} for s in SYSTEMS}
    error = "; ".join(f"{s}: {e}" for s, e in errors.items()) or None

    def row(key: str, title: str, unit: str, goal: float | None = None, note: str = "") -> Row:
        peer, ours = figs["prefect"].get(key), figs["loopline"].get(key)
        return Row(
            "pipeline_overhead", title, unit, peer, ours, False, goal_ratio=goal, note=note, error=error
        )

    report.rows = [
        row(
            "per_step_ms",
            "per step, 100-step run (wall / 100)",
            "ms",
            GOAL,
            f"median of {processes} processes",
        ),
        row("marginal_ms", "  per extra step: (t100 - t10) / 90", "ms"),
        row("fixed_ms", "  fixed cost of a run besides its steps", "ms"),
        row("warmup_s", "first (1-step) run in a process: server start / store open", "s"),
        row("fresh_s", "fresh process: import + warm-up + 100-step run", "s"),
    ]
    if samples["prefect"]:
        report.meta["prefect_version"] = report.meta["peer_version"] = samples["prefect"][0].get("version")
    report.meta["foreign_cpu_cores"] = foreign
    report.meta["samples"] = samples
    report.meta["errors"] = errors
    report.meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


if __name__ == "__main__":
    module_main(run, WORKERS, sys.argv[1:])
