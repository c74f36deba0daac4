"""Step 7 of the demo: the loop closes itself.

The loop is declared as code (``loopline.yaml`` beside this file) and applied. A deployment serves the
champion (``loopline serve --deployment``) while a client sends it the drifted production traffic and
posts the ground truth back. Then, with the loop's controller ticking in this process:

1. the monitor runs, finds the drift and alerts; the labelled production data arrives as a new
   version of the training data; the two triggers start one retraining; the gate compares the
   candidate with the champion on the held-out data; shadow, then two canary steps, each judged on
   the live traffic; the champion alias moves;
2. a bug slips into the training code (labels shuffled): the gate rejects the candidate, with its
   numbers, and it never serves;
3. a heavy model, as accurate offline but too slow online, passes the gate and is rolled back by
   itself during its canary;

and no request fails meanwhile. It ends with the serving model's lineage, the loop's audit trail
and the DORA figures.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console

import loopline
from loopline.automation.apply import apply
from loopline.automation.controller import Controller
from loopline.automation.dora import read_dora
from loopline.automation.spec import load_spec
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import Policy, Rollout
from loopline.clock import now_ms

HERE = Path(__file__).resolve().parent
MODEL, DEPLOYMENT, POLICY = "breast-cancer", "breast-cancer-prod", "breast-cancer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(log: Path, *target: str) -> Iterator[str]:
    """``loopline serve *target`` (a model URI, or ``--deployment NAME``) on a free port, following
    alias and deployment changes every 0.5 s; yields its URL once ready, stops it gracefully."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "loopline.cli",
        "serve",
        *target,
        "--port",
        str(port),
        "--poll-interval",
        "0.5",
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:  # the server's own lines go to its log, not into the demo's output
        server = subprocess.Popen(
            cmd, env={**os.environ, "LOOPLINE_SERVE_LOG_FLUSH": "0.5"}, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise SystemExit(f"loopline serve exited with {server.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("loopline serve did not become ready in 120 s")
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: answers what is in flight, writes the log
        server.wait(60)


class Traffic(threading.Thread):
    """Production: 10-row requests cycling through ``batch``, each one's ground truth posted back."""

    def __init__(self, url: str, batch: pd.DataFrame, truth: np.ndarray) -> None:
        super().__init__(daemon=True)
        self.url, self.batch, self.truth = url, batch, truth
        self.stop = threading.Event()
        self.sent = self.failed = 0
        self.why: dict[str, int] = {}  # what the failed requests got: a status code or an error kind

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            start = 0
            while not self.stop.is_set():
                rows = self.batch.iloc[start : start + 10]
                body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
                try:
                    r = http.post("/invocations", json=body)
                    ok, got = r.status_code == 200, str(r.status_code)
                    if ok:
                        truth = self.truth[start : start + 10].tolist()
                        feedback = {"request_id": r.headers["x-request-id"], "ground_truth": truth}
                        http.post("/api/2.0/loopline/feedback", json=feedback)
                except httpx.HTTPError as e:
                    ok, got = False, type(e).__name__
                self.sent += 1
                self.failed += not ok
                if not ok:
                    self.why[got] = self.why.get(got, 0) + 1
                start = (start + 10) % (len(self.batch) - 10)
                self.stop.wait(0.02)


def _follow(ctl: Controller, store: SqlAutomationStore, console: Console, since_ms: int) -> Rollout:
    """Tick the controller, printing what it does, until the newest rollout begun since ``since_ms`` ends."""
    began = time.monotonic()
    deadline = began + 360  # the heavy candidate trains for ~30 s on a quiet machine, minutes on a busy one
    while time.monotonic() < deadline:
        for action in ctl.tick():
            console.print(f"  [dim]{time.monotonic() - began:5.1f}s[/] {action.uri}: {action.what}")
        mine = [r for r in store.list_rollouts(policy=POLICY, limit=1) if r.created_ms >= since_ms]
        if mine and mine[0].state.terminal:
            return mine[0]
        time.sleep(0.2)
    raise SystemExit("the loop did not finish a rollout in 360 s")


def _retrain_with(store: SqlAutomationStore, policy: Policy, flavour: str) -> int:
    """A change to the training code (the policy's ``flavour``), then a retraining asked for by hand."""
    store.put_policy(dataclasses.replace(policy, params={**policy.params, "flavour": flavour}))
    asked = now_ms()
    store.add_trigger(POLICY, "manual", source_event=None, change_ms=asked)
    return asked


def close_the_loop(
    holdout: pd.DataFrame,
    new_training_data: pd.DataFrame,
    production: pd.DataFrame,
    truth: np.ndarray,
    monitor: str,
    console: Console,
    home: Path,
    run_monitor: Callable[[], list[str]],
) -> None:
    console.rule("The loop closes itself", align="left")
    # The first champion was fitted on arrays, the gate scores it on the held-out frame: said once.
    warnings.filterwarnings("ignore", message="X has feature names")
    loopline.log_dataset(holdout, name="breast-cancer-holdout", description="held out: what gates judge on")
    spec = load_spec(HERE / "loopline.yaml")
    applied = apply(spec)
    console.print(
        f"Applied {HERE / 'loopline.yaml'}: "
        + ", ".join(f"{c.kind} {c.name} {c.action}" for c in applied.changes)
        + " (loopline apply --check tells whether what runs still matches it)."
    )
    client = loopline.Client()
    store = SqlAutomationStore(client.context)
    policy = store.get_policy(POLICY)
    ctl = Controller(client.context)
    ctl.tick()  # reads the events so far: the loop reacts to what happens from now on
    with serving(home / "logs" / "serve-deployment.log", "--deployment", DEPLOYMENT) as url:
        traffic = Traffic(url, production, truth)
        traffic.start()
        try:
            time.sleep(2.5)  # some traffic reaches the inference log
            started = now_ms()
            alerts = run_monitor()
            version = loopline.log_dataset(new_training_data, name="breast-cancer-train")
            console.print(
                f"1. Monitor {monitor} ran on the live traffic: alerts {', '.join(alerts) or 'none'}; "
                f"the labelled production data arrived as [bold]{version.uri}[/]."
            )
            first = _follow(ctl, store, console, started)
            console.print(
                f"   → {first.uri} [bold]{first.state.value}[/]: {first.candidate} ({first.reason})"
            )

            console.print(
                "2. A bug slips into the training code (labels shuffled); a retraining is asked for."
            )
            second = _follow(ctl, store, console, _retrain_with(store, policy, "shuffled-labels"))
            console.print(f"   → {second.uri} [bold]{second.state.value}[/]: {second.reason}")

            console.print("3. A heavy ensemble, as accurate offline, too slow online; a retraining.")
            third = _follow(ctl, store, console, _retrain_with(store, policy, "heavy"))
            console.print(f"   → {third.uri} [bold]{third.state.value}[/]: {third.reason}")
        finally:
            traffic.stop.set()
            traffic.join(30)
            ctl.close()
    apply(spec)  # the policy as the file declares it again
    why = ", ".join(f"{n} x {got}" for got, n in sorted(traffic.why.items()))
    console.print(
        f"Traffic meanwhile: {traffic.sent} requests, {traffic.failed} failed{f' ({why})' if why else ''} "
        "(weights moved and rolled back under load)."
    )
    _report(client, console)


def _report(client: loopline.Client, console: Console) -> None:
    from loopline.registry import RegistryClient
    from loopline.tracking.lineage import open_lineage_reader

    champion = RegistryClient(client).get_model_version_by_alias(MODEL, "champion")
    uri = f"models:/{MODEL}/{champion.version}"
    lineage = open_lineage_reader(client.context)
    console.print(f"[bold]Serving now[/]: {uri} (alias champion), made from:")
    for edge in lineage.upstream(uri):
        console.print(f"  {edge.from_uri} --{edge.relation}--> {edge.to_uri}", highlight=False)
    console.print("[bold]The loop's audit trail[/] (loopline events --kind loop.):")
    for e in reversed(lineage.events(action="loop.", limit=40)):
        what = e.payload.get("reason") or e.payload.get("candidate") or ""
        console.print(f"  {e.action:<20} {e.object_uri:<14} {what}", highlight=False)
    dora = read_dora(client.context, "30d").overall

    def seconds(ms: float | None) -> str:
        return "-" if ms is None else f"{ms / 1000:.1f}s"

    rate = "-" if dora.change_failure_rate is None else f"{dora.change_failure_rate:.0%}"
    console.print(
        f"[bold]DORA[/] (loopline dora): {dora.deployments} deployment(s), change failure rate {rate} "
        f"({dora.failures} of {dora.rollouts} rollouts that reached traffic), lead time "
        f"{seconds(dora.lead_time.median_ms)} and time to restore {seconds(dora.time_to_restore.median_ms)} "
        "(medians)."
    )
