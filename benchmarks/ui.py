"""The web UI at scale: 100,000 runs x 20 metrics, and one metric of 100,000 points.

The store (SQLite, seeded once through ``SqlTrackingStore.create_run`` with each run's params and
metrics in its one transaction, then kept under ``benchmarks/.cache/ui-<runs>``) is served by a real
``loopline server`` subprocess on 127.0.0.1. Timed over HTTP, median and worst of ``--repeat`` requests
after one warm-up:

* the runs page's first page (50 rows), as opened, sorted by a metric, and filtered by a metric;
* ``/ui/api/metric`` for the 100,000-point metric (downsampled) and for a zoomed 1% of it (exact).

With Playwright and /usr/bin/chromium present, also the browser's view: navigation to ``load`` of the
runs page, and from navigation until the 100,000-point chart has drawn its data.

Goals (issue 21): the first page served in < 300 ms, rendered in < 1 s; the big chart in < 1 s.
Not part of the test suite: ``python -m benchmarks.ui [--runs N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

METRICS = 20
POINTS = 100_000
CACHE = Path(__file__).parent / ".cache"


def seed(db: Path, runs: int) -> tuple[str, str]:
    """The experiment of ``runs`` runs and the run holding the long metric (made once per ``db``)."""
    from loopline.context import shared_engine
    from loopline.tracking.sql_store import SqlTrackingStore
    from loopline.tracking.types import Metric, Param, RunStatus

    store = SqlTrackingStore(shared_engine(f"sqlite:///{db}"), actor="bench")
    exp = store.get_experiment_by_name("wide")
    if exp is not None:
        long_exp = store.get_experiment_by_name("long")
        assert long_exp is not None
        long_run = store.search_runs([long_exp.experiment_id], max_results=1).items[0].info.run_id
        return exp.experiment_id, long_run
    exp_id = store.create_experiment("wide")
    rng = random.Random(0)
    t0, started = 1_700_000_000_000, time.perf_counter()
    for i in range(runs):
        store.create_run(
            exp_id,
            "bench",
            t0 + i * 1000,
            run_name=f"run-{i}",
            params=[
                Param("lr", str(rng.choice([0.1, 0.01, 0.001]))),
                Param("depth", str(rng.randint(2, 12))),
            ],
            metrics=[Metric(f"m{k}", rng.random(), t0 + i * 1000, 0) for k in range(METRICS)],
            status=RunStatus.FINISHED,
            end_time=t0 + i * 1000 + 500,
        )
        if i and i % 10_000 == 0:
            print(f"  seeded {i:,} runs ({time.perf_counter() - started:.0f} s)", flush=True)
    long_exp = store.create_experiment("long")
    long_run = store.create_run(long_exp, "bench", t0, run_name="long").info.run_id
    for start in range(0, POINTS, 1000):
        store.log_batch(
            long_run,
            [
                Metric("loss", 1 / (1 + s / 1000) + rng.random() * 0.05, t0 + s, s)
                for s in range(start, start + 1000)
            ],
        )
    print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
    return exp_id, long_run


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    """Median and worst milliseconds of ``repeat`` GETs after a warm-up, and the answer's size."""
    client.get(path).raise_for_status()
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    return statistics.median(times), max(times), size


def browser_times(url: str, runs_path: str, run_path: str) -> dict[str, float]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if not Path("/usr/bin/chromium").exists():
        return {}
    out: dict[str, float] = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url + runs_path)  # warm-up
        t = time.perf_counter()
        page.goto(url + runs_path, wait_until="load")
        out["runs page, navigation to load (browser)"] = (time.perf_counter() - t) * 1000
        page.goto(url + run_path)
        page.wait_for_selector("figure.chart[data-loaded='true']")
        t = time.perf_counter()
        page.goto(url + run_path)
        page.wait_for_selector("figure.chart[data-loaded='true']")
        out["100,000-point chart, navigation to drawn (browser)"] = (time.perf_counter() - t) * 1000
        b.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    home = CACHE / f"ui-{args.runs}"
    home.mkdir(parents=True, exist_ok=True)
    db = home / "store.db"
    print(f"store {db} ({args.runs:,} runs x {METRICS} metrics, one metric of {POINTS:,} points)")
    exp_id, long_run = seed(db, args.runs)

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "LOOPLINE_TRACKING_URI": f"sqlite:///{db}",
        "LOOPLINE_ARTIFACTS_URI": str(home / "art"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        runs = f"/ui/experiments/{exp_id}"
        cases = {
            "runs page 1 (newest first)": runs,
            "runs page 1 sorted by metrics.m3": runs + "?sort=metrics.m3&dir=desc",
            "runs page 1 filtered metrics.m0 < 0.5": runs + "?filter=metrics.m0+%3C+0.5",
            "runs table fragment (htmx)": runs + "?sort=params.lr&dir=asc",
            "metric 100,000 points, downsampled": f"/ui/api/metric?run_id={long_run}&key=loss",
            "metric zoomed to 1,000 steps, exact": (
                f"/ui/api/metric?run_id={long_run}&key=loss&min=50000&max=50999"
            ),
        }
        print(f"{'request':<45} {'median ms':>10} {'worst ms':>10} {'bytes':>10}")
        with httpx.Client(base_url=url, timeout=60) as client:
            for name, path in cases.items():
                headers = {"HX-Request": "true"} if "htmx" in name else {}
                client.headers.update(headers)
                median, worst, size = timed(client, path, args.repeat)
                for k in headers:
                    del client.headers[k]
                print(f"{name:<45} {median:>10.1f} {worst:>10.1f} {size:>10,}")
        for name, ms in browser_times(url, runs, f"/ui/runs/{long_run}").items():
            print(f"{name:<45} {ms:>10.1f}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
