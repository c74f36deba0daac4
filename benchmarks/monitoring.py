"""Monitoring, side by side: a data-drift check of 1,000,000 rows x 20 columns, Evidently vs Loopline.

The data (seeded, written once as two Parquet files): 15 numerical columns (normal, log-normal,
uniform, Student t, exponential) and 5 categorical ones (5 to 40 string categories), reference and
current 1,000,000 rows each; in the current half, 4 numerical columns are shifted (mean +0.5 sd,
scale x1.5, a quarter of the rows spread 3x wider, a 0.3 sd shift) and 2 categorical ones have their
proportions
moved. Each system reads the same two files in a fresh process of its own interpreter:

* ``evidently`` — ``Report([DataDriftPreset()]).run(current, reference)`` with the column kinds
  declared, in ``.venv-bench-monitoring`` (Evidently 0.7.23 needs ``pandas<3``);
* ``loopline`` — ``loopline.monitoring.drift("ref.parquet", "cur.parquet")``;
* ``loopline_profile`` — ``drift(ReferenceProfile.load("ref.npz"), "cur.parquet")``: the monitor's
  path, with the reference summarised once beforehand (``ReferenceProfile.build`` + ``save``, timed
  apart and reported in ``meta``).

Figures per worker: wall seconds and CPU seconds of read + check (the import of the library is timed
apart; one row adds it back: what a fresh ``loopline monitor drift`` pays), and peak RSS of the whole
process (``ru_maxrss``). Each worker also reports which columns it
flagged, so the table shows that both found the shifted ones.

Run alone: ``python -m benchmarks.monitoring [--quick]`` (``--quick``: 200,000 rows).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
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
    module_main,
    peak_rss_bytes,
    peer_python,
    run_worker,
)

NAME = "monitoring"
TITLE = "Monitoring: data drift of 1,000,000 rows x 20 columns, Evidently DataDriftPreset vs loopline"
WORKLOADS = ("drift_1m",)
NUMERICAL = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SHIFTED = {"n0", "n3", "n7", "n11", "c1", "c3"}

Params = dict[str, Any]


def make_data(folder: Path, rows: int, seed: int = 7) -> tuple[str, str]:
    """Write ref.parquet and cur.parquet under ``folder``; returns their paths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)

    def numeric(i: int, shifted: bool) -> Any:
        kind = i % 5
        if kind == 0:
            x = rng.normal(0, 1, rows)
        elif kind == 1:
            x = rng.lognormal(0, 1, rows)
        elif kind == 2:
            x = rng.uniform(-2, 2, rows)
        elif kind == 3:
            x = rng.standard_t(3, rows)
        else:
            x = rng.exponential(1, rows)
        if shifted:
            x = {0: x + 0.5, 3: x * 1.5, 7: x, 11: x + 0.3 * x.std()}[i]
            if i == 7:  # fatter tails: a quarter of the rows spread 3x wider
                idx = rng.choice(rows, rows // 4, replace=False)
                x[idx] *= 3
        return x

    def categorical(i: int, shifted: bool) -> Any:
        k = (5, 12, 40, 8, 20)[i]
        p = np.linspace(2, 1, k)
        if shifted:
            p = p[::-1] ** 2  # the rare categories become the common ones
        names = np.array([f"cat_{i}_{j}" for j in range(k)])
        return pa.array(names[rng.choice(k, rows, p=p / p.sum())]).dictionary_encode().cast(pa.string())

    paths = []
    for side in ("ref", "cur"):
        cols: dict[str, Any] = {}
        for i, name in enumerate(NUMERICAL):
            cols[name] = numeric(i, side == "cur" and name in SHIFTED)
        for i, name in enumerate(CATEGORICAL):
            cols[name] = categorical(i, side == "cur" and name in SHIFTED)
        path = folder / f"{side}.parquet"
        pq.write_table(pa.table(cols), path)
        paths.append(str(path))
    return paths[0], paths[1]


# ==== workers: each in a fresh interpreter ========================================================


def _usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime


def evidently_drift(p: Params) -> dict[str, Any]:
    t0, _ = _usage()
    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report as EvReport
    from evidently.presets import DataDriftPreset

    t1, c1 = _usage()
    ref = pd.read_parquet(p["ref"])
    cur = pd.read_parquet(p["cur"])
    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
    snapshot = EvReport([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    out = snapshot.dict()
    t2, c2 = _usage()
    drifted, methods = [], {}
    for m in out["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            methods[cfg["column"]] = cfg["method"]
            if (
                float(m["value"]) >= float(cfg["threshold"])
                if "distance" in cfg["method"].lower()
                else (float(m["value"]) < float(cfg["threshold"]))
            ):
                drifted.append(cfg["column"])
    return {
        "import_s": t1 - t0,
        "wall_s": t2 - t1,
        "cpu_s": c2 - c1,
        "with_import_s": t2 - t0,
        "peak_rss": peak_rss_bytes(),
        "drifted": sorted(drifted),
        "methods": sorted(set(methods.values())),
        "versions": {"evidently": evidently.__version__, "pandas": pd.__version__},
    }


def loopline_drift(p: Params) -> dict[str, Any]:
    t0, _ = _usage()
    import numpy
    import pyarrow
    import scipy
    import scipy.stats

    from loopline._version import __version__
    from loopline.monitoring import ReferenceProfile, drift

    t1, c1 = _usage()
    ref: Any = ReferenceProfile.load(p["profile"]) if p.get("profile") else p["ref"]
    report = drift(ref, p["cur"], workers=p.get("workers"))
    report.to_dict()
    t2, c2 = _usage()
    return {
        "import_s": t1 - t0,
        "wall_s": t2 - t1,
        "cpu_s": c2 - c1,
        "with_import_s": t2 - t0,
        "peak_rss": peak_rss_bytes(),
        "drifted": sorted(report.drifted_columns),
        "methods": sorted({c.test for c in report.columns.values()}),
        "versions": {
            "loopline": __version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "pyarrow": pyarrow.__version__,
        },
    }


def loopline_profile(p: Params) -> dict[str, Any]:
    from loopline.monitoring import ReferenceProfile

    t1, c1 = _usage()
    ReferenceProfile.build(p["ref"]).save(p["profile"])
    t2, c2 = _usage()
    return {
        "wall_s": t2 - t1,
        "cpu_s": c2 - c1,
        "peak_rss": peak_rss_bytes(),
        "bytes": Path(p["profile"]).stat().st_size,
    }


WORKERS = {
    "evidently_drift": evidently_drift,
    "loopline_drift": loopline_drift,
    "loopline_profile": loopline_profile,
}


# ==== the benchmark ===============================================================================


def run(opts: Options) -> Report:
    report = Report(NAME, TITLE, peer_name="evidently 0.7.23")
    if not opts.wants("drift_1m"):
        return report
    rows = 200_000 if opts.quick else 1_000_000
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        folder = Path(tmp)
        log(f"monitoring: writing {rows:,} x 20 reference and current Parquet files")
        ref, cur = make_data(folder, rows)
        params = {"ref": ref, "cur": cur, "profile": str(folder / "ref.npz")}
        results: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        with ForeignLoad() as noise:
            for name, worker, python in (
                ("evidently", "evidently_drift", "peer"),
                ("loopline", "loopline_drift", None),
                ("profile", "loopline_profile", None),
                ("loopline_profile", "loopline_drift", None),
            ):
                log(f"monitoring: {name}")
                try:
                    p = params if name in ("profile", "loopline_profile") else {**params, "profile": None}
                    results[name] = run_worker(
                        NAME, worker, p, env, timeout=1800, python=peer_python(NAME) if python else None
                    )
                except (WorkerError, SystemExit) as e:
                    errors[name] = str(e)[:300]
                    log(f"monitoring: {name} failed: {e}")
        ev, ll, lp = results.get("evidently"), results.get("loopline"), results.get("loopline_profile")
        note_rows = f"{rows:,} rows x 20 cols, read + check"

        def row(key: str, title: str, unit: str, mine: dict[str, Any] | None, **kw: Any) -> Row:
            scale = (1 / 2**20) if key == "peak_rss" else 1.0
            return Row(
                f"drift_1m.{key}" + ("_profile" if mine is lp else ""),
                title,
                unit,
                ev[key] * scale if ev else None,
                mine[key] * scale if mine else None,
                False,
                error=errors.get("evidently")
                or (errors.get("loopline_profile" if mine is lp else "loopline")),
                **kw,
            )

        report.rows += [
            row("cpu_s", "drift check, CPU seconds", "s", ll, goal_ratio=30.0, note=note_rows),
            row("wall_s", "drift check, wall seconds", "s", ll, goal_ratio=30.0, note=note_rows),
            row("peak_rss", "drift check, peak RSS", "MiB", ll, goal_ratio=3.0, note="whole process"),
            row(
                "wall_s",
                "with a stored reference profile, wall",
                "s",
                lp,
                goal_abs=("<", 2.0),
                note="profile built once beforehand (meta.profile_build)",
            ),
            row("cpu_s", "with a stored reference profile, CPU", "s", lp, goal_ratio=30.0),
            row(
                "with_import_s",
                "with a stored reference profile, wall incl. imports",
                "s",
                lp,
                note="a fresh process: import of the library + read + check",
            ),
        ]
        report.meta = {
            "rows": rows,
            "shifted_columns": sorted(SHIFTED),
            "flagged": {k: v.get("drifted") for k, v in results.items() if "drifted" in v},
            "methods": {k: v.get("methods") for k, v in results.items() if "methods" in v},
            "versions": {k: v.get("versions") for k, v in results.items() if "versions" in v},
            "import_s": {k: v.get("import_s") for k, v in results.items() if "import_s" in v},
            "profile_build": results.get("profile"),
            "foreign_load_cores": round(noise.cores, 2),
            "errors": errors,
        }
    return report


if __name__ == "__main__":
    module_main(run, WORKERS, sys.argv[1:])
