"""What the load-and-fault tests share: a ``loopline server`` that can be killed and restarted on the
same port and store, clients that retry as Loopline's does and write down what was acknowledged, and
the checks that every acknowledged write is still there.

A write counts as acknowledged once its 2xx answer arrived: that, and only that, must survive. Writes
that create something carry an ``Idempotency-Key`` (the same on every retry of one call, as Loopline's
client sends it), so a retry of a create whose answer was lost does not create a second object; the
hot logging writes go without one, as Loopline's client sends them (the server stores a point once).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from support import free_port, wait_http

MLFLOW = "/api/2.0/mlflow"
LOOPLINE = "/api/2.0/loopline"
# Transient answers a client retries (the same call, the same key); anything else non-2xx is a failure.
RETRY_STATUS = {502, 503, 504}
REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=3.0)  # an answer slower than this is a hang


class Failed(AssertionError):
    """The server answered a request in a way it never may (a 500, a 4xx to a valid call, a hang)."""


# ---- a server that can be killed -----------------------------------------------------------


class KillableServer:
    """``loopline server`` on a fixed 127.0.0.1 port and store, restartable after SIGKILL.

    Its log (both lives) goes to ``home/server.log``."""

    def __init__(self, home: Path, store: str, env: Mapping[str, str] | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        where = {
            "LOOPLINE_TRACKING_URI",
            "LOOPLINE_ARTIFACTS_URI",
            "LOOPLINE_STORE_URI",
            "MLFLOW_TRACKING_URI",
        }
        self.env = {k: v for k, v in os.environ.items() if k not in where} | {
            "LOOPLINE_TRACKING_URI": store,
            "LOOPLINE_ARTIFACTS_URI": str(home / "artifacts"),
            # No background loops: they would compete with the clients for the 2 cores, and a tick that
            # meets a dropped connection logs its traceback (the next tick recovers). Requests only.
            "LOOPLINE_CONTROLLER_INTERVAL": "0",
            "LOOPLINE_SCHEDULER_INTERVAL": "0",
            "LOOPLINE_MONITOR_POLL": "0",
            # The killed server's claims on keys in flight are taken over by retries 2 s on, not 10.
            "LOOPLINE_IDEMPOTENCY_LEASE": "2",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives = 0

    @property
    def log(self) -> str:
        path = self.home / "server.log"
        return path.read_text() if path.exists() else ""

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.home / "server.log", "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "loopline.cli",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=self.home,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_http(self.url + "/health", self.proc)
        self.lives += 1

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, requests in flight are cut off mid-way."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def killable_server(home: Path, store: str, env: Mapping[str, str] | None = None) -> Iterator[KillableServer]:
    server = KillableServer(home, store, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def terminate_backends(store_uri: str) -> int:
    """Drop every connection of the PostgreSQL database ``store_uri`` (but this one): how many."""
    engine = sa.create_engine(store_uri, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        engine.dispose()


# ---- clients that retry and keep a ledger ---------------------------------------------------


@dataclass
class Ledger:
    """What the server acknowledged, and what the clients met on the way."""

    runs: dict[str, dict[str, set[tuple[int, float]]]] = field(default_factory=dict)  # run → key → points
    finished: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)  # registered models
    versions: dict[tuple[str, int], str] = field(default_factory=dict)  # (model, version) → source
    met: Counter[str] = field(default_factory=Counter)  # "transport", "503", "409": retried answers
    acks: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    kill_at: int = 0  # acks after which ``reached`` is set (the fault's cue); 0: never
    after_fault: int = -1  # acks when the fault was over (the server back): the load went on past it

    def ack(self) -> None:
        self.acks += 1
        if self.kill_at and self.acks >= self.kill_at:
            self.reached.set()


class Caller:
    """One client's calls: retried on a dropped connection, 502-504, and 409 + Retry-After to a keyed
    call, within ``patience`` seconds per call; any other failure raises ``Failed`` at once."""

    def __init__(self, http: httpx.AsyncClient, ledger: Ledger, patience: float) -> None:
        self.http = http
        self.ledger = ledger
        self.patience = patience

    async def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        keyed: bool = False,
        named: bool = False,
    ) -> dict[str, Any]:
        """``named``: a create by name, which a retry after a cut-off may find done (see below)."""
        headers = {"Idempotency-Key": str(uuid.uuid4())} if keyed else {}
        deadline = time.monotonic() + self.patience
        delay = 0.05
        cut_off = False
        while True:
            kwargs: dict[str, Any] = {"params": body} if method == "GET" else {"json": body or {}}
            try:
                resp = await self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TimeoutException as e:
                raise Failed(f"{method} {path}: no answer within {REQUEST_TIMEOUT.read} s ({e!r})") from e
            except httpx.TransportError:  # the server died under the request, or is not back yet
                self.ledger.met["transport"] += 1
                cut_off = True
            else:
                if resp.status_code < 300:
                    return dict(resp.json())
                if named and cut_off and resp.status_code == 400 and "ALREADY_EXISTS" in resp.text:
                    # The kill came after the create committed but before its key stored the answer:
                    # the retry, run again once the dead server's claim lapsed, finds the object made.
                    # Not an acknowledged write lost: the object is there, and the answer says so.
                    self.ledger.met["exists"] += 1
                    return {}
                in_use = keyed and resp.status_code == 409 and "retry-after" in resp.headers
                if not (resp.status_code in RETRY_STATUS or in_use):
                    raise Failed(f"{method} {path} {body}: {resp.status_code} {resp.text[:2000]}")
                check_transient(resp)
                self.ledger.met[str(resp.status_code)] += 1
            if time.monotonic() > deadline:
                raise Failed(f"{method} {path}: still failing after {self.patience} s ({self.ledger.met})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


def check_transient(resp: httpx.Response) -> None:
    """A "try again" answer is Loopline's JSON error with a Retry-After, never a traceback."""
    try:
        body = resp.json()
    except ValueError as e:
        raise Failed(f"{resp.status_code} without a JSON body: {resp.text[:500]!r}") from e
    if not (isinstance(body, dict) and body.get("error_code") and body.get("message")):
        raise Failed(f"{resp.status_code} without Loopline's error body: {body}")
    if "Traceback" in resp.text:
        raise Failed(f"{resp.status_code} shows a traceback: {resp.text[:2000]}")
    if "retry-after" not in resp.headers:
        raise Failed(f"{resp.status_code} without Retry-After: {body}")


# ---- the workload ----------------------------------------------------------------------------


async def tracking_client(caller: Caller, n: int, experiment_id: str, model: str, iterations: int) -> None:
    """One client's work: per iteration a run, its metrics (batch and single), reads of both back,
    a model version of it and its end, through MLflow's routes and Loopline's own."""
    led = caller.ledger
    own = f"model-c{n}"  # each client's own registered model; their versions go to the shared one
    await caller.call("POST", f"{MLFLOW}/registered-models/create", {"name": own}, keyed=True, named=True)
    led.models.add(own)
    led.ack()
    for it in range(iterations):
        body = {"experiment_id": experiment_id, "run_name": f"c{n}-{it}", "start_time": 1_700_000_000_000}
        run_id = (await caller.call("POST", f"{MLFLOW}/runs/create", body, keyed=True))["run"]["info"][
            "run_id"
        ]
        points = led.runs[run_id] = {"loss": set(), "acc": set()}
        led.ack()
        batch = [(step, float(n * 1000 + it * 10 + step)) for step in range(5)]
        metrics = [
            {"key": "loss", "value": v, "timestamp": 1_700_000_000_000 + s, "step": s} for s, v in batch
        ]
        await caller.call("POST", f"{MLFLOW}/runs/log-batch", {"run_id": run_id, "metrics": metrics})
        points["loss"] |= set(batch)
        led.ack()
        acc = {"run_id": run_id, "key": "acc", "value": n / 100, "timestamp": 1_700_000_000_000, "step": it}
        await caller.call("POST", f"{MLFLOW}/runs/log-metric", acc)
        points["acc"].add((it, n / 100))
        led.ack()
        # Reads back, mid-load: what was acknowledged is there already (and stays, across the fault).
        got = await caller.call("GET", f"{MLFLOW}/runs/get", {"run_id": run_id})
        assert got["run"]["info"]["run_id"] == run_id
        history = await caller.call(
            "GET", f"{MLFLOW}/metrics/get-history", {"run_id": run_id, "metric_key": "loss"}
        )
        assert {(p["step"], p["value"]) for p in history["metrics"]} == points["loss"]
        version = {"name": model, "source": f"runs:/{run_id}/model", "run_id": run_id}
        mv = (await caller.call("POST", f"{MLFLOW}/model-versions/create", version, keyed=True))[
            "model_version"
        ]
        assert mv["run_id"] == run_id
        led.versions[(model, int(mv["version"]))] = mv["source"]  # as stored (a runs:/ URI is resolved)
        led.ack()
        end = {"run_id": run_id, "status": "FINISHED", "end_time": 1_700_000_100_000, "metrics": []}
        await caller.call("POST", f"{LOOPLINE}/runs/finish", end, keyed=True)
        led.finished.add(run_id)
        led.ack()
        columns = await caller.call(
            "GET", f"{LOOPLINE}/metrics/history", {"run_id": run_id, "metric_key": "acc"}
        )
        assert set(zip(columns["step"], columns["value"], strict=True)) == points["acc"]


async def registering_client(caller: Caller, n: int, models: list[str], count: int) -> None:
    """One client registering ``count`` versions, alternating between ``models``."""
    for i in range(count):
        model = models[i % len(models)]
        source = f"s3://bucket/c{n}/v{i}"
        mv = (
            await caller.call(
                "POST", f"{MLFLOW}/model-versions/create", {"name": model, "source": source}, keyed=True
            )
        )["model_version"]
        caller.ledger.versions[(model, int(mv["version"]))] = source
        caller.ledger.ack()


# ---- after the load: every acknowledged write is there ---------------------------------------


def check_acknowledged(
    url: str, ledger: Ledger, headers: Mapping[str, str], *, faults: int = 1, experiment_id: str = ""
) -> None:
    """Every acknowledged run, metric point, end and model version is in the store, read back through
    the server; version numbers are never duplicated, and gapless.

    A create cut off by a fault after it committed but before its key kept the answer is run again by
    its retry (its first object is orphaned): so each call made at most ``1 + faults`` objects (runs
    per run name in ``experiment_id``, versions per source); an acknowledged one never made two."""
    with httpx.Client(base_url=url, headers=dict(headers), timeout=30) as http:
        for run_id, points in ledger.runs.items():
            got = http.get(f"{MLFLOW}/runs/get", params={"run_id": run_id})
            assert got.status_code == 200, f"acknowledged run {run_id} is lost: {got.text}"
            if run_id in ledger.finished:
                assert got.json()["run"]["info"]["status"] == "FINISHED", got.text
            for key, acked in points.items():
                history = http.get(
                    f"{MLFLOW}/metrics/get-history", params={"run_id": run_id, "metric_key": key}
                )
                stored = [(p["step"], p["value"]) for p in history.json().get("metrics", [])]
                assert acked <= set(stored), f"{run_id} {key}: lost {acked - set(stored)}"
                assert len(stored) == len(set(stored)), f"{run_id} {key}: a point stored twice: {stored}"
        for model in ledger.models:
            got = http.get(f"{MLFLOW}/registered-models/get", params={"name": model})
            assert got.status_code == 200, f"acknowledged registered model {model} is lost: {got.text}"
        for model in {m for m, _ in ledger.versions}:
            found = http.get(
                f"{MLFLOW}/model-versions/search", params={"filter": f"name='{model}'", "max_results": 10_000}
            )
            assert found.status_code == 200, found.text
            stored = {int(v["version"]): v["source"] for v in found.json()["model_versions"]}
            numbers = [int(v["version"]) for v in found.json()["model_versions"]]
            assert len(numbers) == len(set(numbers)), (
                f"{model}: a version number given twice: {sorted(numbers)}"
            )
            assert sorted(numbers) == list(range(1, len(numbers) + 1)), f"{model}: gaps in {sorted(numbers)}"
            for (name, version), source in ledger.versions.items():
                if name == model:
                    assert stored.get(version) == source, (
                        f"acknowledged {model} v{version} ({source}) is lost: {stored.get(version)!r}"
                    )
            twice = {src: k for src, k in Counter(stored.values()).items() if k > 1 + faults}
            assert not twice, f"{model}: one registration made several versions: {twice}"
        if experiment_id:
            found = http.post(
                f"{MLFLOW}/runs/search", json={"experiment_ids": [experiment_id], "max_results": 5000}
            )
            names = Counter(r["info"]["run_name"] for r in found.json().get("runs", []))
            assert not {n: k for n, k in names.items() if k > 1 + faults}, (
                f"one create made several runs: {names}"
            )


async def run_clients(
    url: str,
    headers: Mapping[str, str],
    ledger: Ledger,
    work: Any,
    clients: int,
    fault: Any,
    patience: float = 30.0,  # past the slowest restart seen on a loaded machine (16 s), and the lease
) -> None:
    """``clients`` concurrent clients (one connection each) doing ``work(caller, n)``; ``fault()`` runs
    in a thread once the ledger's ``kill_at`` acknowledgements are in, while they go on."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [
        httpx.AsyncClient(base_url=url, headers=dict(headers), timeout=REQUEST_TIMEOUT, limits=limits)
        for _ in range(clients)
    ]

    async def chaos() -> None:
        await ledger.reached.wait()
        await asyncio.to_thread(fault)
        ledger.after_fault = ledger.acks

    faulted = asyncio.create_task(chaos())
    try:
        await asyncio.gather(*(work(Caller(http, ledger, patience), n) for n, http in enumerate(https)))
        if not faulted.done():  # the load must outlast the fault, or the test proves nothing
            assert ledger.reached.is_set(), (
                f"the fault's cue ({ledger.kill_at} acks) never came: {ledger.acks}"
            )
            await faulted
    finally:
        faulted.cancel()
        await asyncio.gather(*(h.aclose() for h in https))
