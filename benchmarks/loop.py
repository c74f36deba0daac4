"""The closed loop: how fast a change starts a retraining, what the controller costs, and the demo.

- ``change_to_retrain``: a real ``loopline server`` (embedded SQLite, its controller at the default
  interval) and a policy with a ``dataset`` trigger; a client with only the server's URL adds a new
  version of that dataset; the figure is the time from the ``dataset.version_created`` event to the
  ``loop.retrain_start`` event (both stamped by the server), median of several. The peer is what a
  team builds today from MLflow and a scheduler that polls for changes: it reacts, on average,
  half a polling interval late. That row is modelled, not measured: ClearML's ``TriggerScheduler``
  polls every 3 minutes by default (``pooling_frequency_minutes=3``), so 90 s on average; the note
  says so.
- ``controller_tick``: one controller tick with 20 policies and nothing to do, in this process
  (a diagnosis figure: what a controller costs its server while the loop is idle).
- ``demo_wall``: ``examples/demo.py`` in a fresh folder as a user runs it (the venv exists already),
  wall time; goal: the whole ``make demo`` under 3 minutes on 2 cores.

Run alone: ``python -m benchmarks.loop [--quick]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import Options, Report, Row, log, module_main, tracking_server

NAME = "loop"
TITLE = "The closed loop: change → retraining start through a server, controller tick, the demo"
WORKLOADS = ("change_to_retrain", "controller_tick", "demo_wall")
WORKERS: dict[str, Any] = {}
POLL_S = 180.0  # ClearML TriggerScheduler's default polling interval
ROOT = Path(__file__).resolve().parents[1]

PIPELINE = textwrap.dedent(
    """
    import loopline.pipelines as lp

    @lp.step
    def noop(n: int) -> int:
        return n

    @lp.pipeline
    def train(n: int = 1) -> int:
        return noop(n)
    """
)


def _policy(name: str, folder: Path, dataset: str) -> Any:
    from loopline.automation.types import Gate, Policy, Trigger

    return Policy(
        name=name,
        model="bench",
        deployment="bench-prod",
        pipeline=f"{folder / 'train.py'}:train",
        gate=Gate(()),
        triggers=(Trigger("dataset", dataset=dataset),),
        debounce_s=0,
    )


def change_to_retrain(rounds: int) -> list[float]:
    """Seconds from a new dataset version to the retraining it starts, through a real server."""
    import pandas as pd

    from loopline.automation.store import open_automation_store
    from loopline.config import Settings
    from loopline.context import Context
    from loopline.data.client import DataClient
    from loopline.tracking.lineage import open_lineage_reader

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.py").write_text(PIPELINE)
        server = tracking_server("loopline", folder / "srv")  # its controller at the default interval
        server.env["LOOPLINE_PIPELINE_ROOTS"] = str(folder)  # the pipeline files it may run
        server.start()
        try:
            ctx = Context(Settings.from_env({}, tracking_uri=server.url))
            from loopline.serving.deployments import set_deployment
            from loopline.tracking import Client

            client = Client(context=ctx)
            DataClient(context=ctx).add(pd.DataFrame({"x": [0]}), "bench-data")
            set_deployment("bench-prod", "/nowhere", client=client)  # a folder route: no model needed
            open_automation_store(ctx).put_policy(_policy("bench", folder, "bench-data"))
            events = open_lineage_reader(ctx)
            out: list[float] = []
            for i in range(rounds):
                time.sleep(0.5)  # the previous retraining's debounce has passed; ticks are not in phase
                DataClient(context=ctx).add(pd.DataFrame({"x": [i + 1]}), "bench-data")
                made = events.events(action="dataset.version_created", limit=1)[0].time_ms
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    started = [
                        e for e in events.events(action="loop.retrain_start", limit=5) if e.time_ms >= made
                    ]
                    if started:
                        out.append((min(e.time_ms for e in started) - made) / 1000)
                        break
                    time.sleep(0.02)
                else:
                    raise RuntimeError("no retraining started within 30 s")
                # let this rollout finish before the next change (one in flight per policy)
                while time.monotonic() < deadline and open_automation_store(ctx).list_rollouts(active=True):
                    time.sleep(0.05)
            ctx.http.close()
        finally:
            server.stop()
    return out


def controller_tick(policies: int, ticks: int) -> float:
    """Median seconds of one idle tick of a controller with ``policies`` policies (embedded)."""
    from loopline.automation.controller import Controller
    from loopline.automation.sql_store import SqlAutomationStore
    from loopline.config import Settings
    from loopline.context import Context

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.py").write_text(PIPELINE)
        ctx = Context(Settings.from_env({}, tracking_uri=f"sqlite:///{folder / 'l.db'}"))
        store = SqlAutomationStore(ctx)
        for i in range(policies):
            store.put_policy(_policy(f"p{i}", folder, f"d{i}"))
        ctl = Controller(ctx)
        ctl.tick()
        times = []
        for _ in range(ticks):
            t0 = time.perf_counter()
            ctl.tick()
            times.append(time.perf_counter() - t0)
        ctl.close()
    return statistics.median(times)


def demo_wall() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "demo.py")],
            cwd=tmp,
            check=True,
            capture_output=True,
            timeout=600,
        )
        return time.perf_counter() - t0


def run(opts: Options) -> Report:
    report = Report(NAME, TITLE, peer_name="MLflow + polling scheduler")
    if opts.wants("change_to_retrain"):
        rounds = 3 if opts.quick else 7
        log(f"{NAME}: {rounds} dataset versions through a server, waiting for the retraining each starts")
        seconds = change_to_retrain(rounds)
        report.rows.append(
            Row(
                "change_to_retrain",
                "new dataset version → retraining start, through loopline server (median)",
                "s",
                POLL_S / 2,
                statistics.median(seconds),
                higher_is_better=False,
                goal_abs=("<", 2.0),
                note=f"max {max(seconds):.2f} s of {len(seconds)}; peer modelled: half of a "
                f"{POLL_S:.0f} s poll (ClearML TriggerScheduler's default), not measured",
            )
        )
    if opts.wants("controller_tick"):
        log(f"{NAME}: idle controller ticks with 20 policies")
        report.rows.append(
            Row(
                "controller_tick",
                "one idle controller tick, 20 policies (in-process, diagnosis)",
                "s",
                None,
                controller_tick(20, 20 if opts.quick else 50),
                higher_is_better=False,
            )
        )
    if opts.wants("demo_wall"):
        log(f"{NAME}: examples/demo.py in a fresh folder")
        report.rows.append(
            Row(
                "demo_wall",
                "examples/demo.py, fresh folder (venv already made)",
                "s",
                None,
                demo_wall(),
                higher_is_better=False,
                goal_abs=("<", 180.0),
            )
        )
    return report


if __name__ == "__main__":
    module_main(run, WORKERS, sys.argv[1:])
