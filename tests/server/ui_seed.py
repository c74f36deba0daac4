"""A small, known store for the web UI's tests, written through the MLflow-compatible REST API."""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.config import Settings
from loopline.context import Context
from loopline.pipelines.types import Finished, RunRecord, StepRecord

API = "/api/2.0/mlflow"
RUNS = 30  # more than one page of 25
LONG_POINTS = 6_000  # more than a chart's default 1,000 points: the server downsamples


@dataclass
class Loop:
    rejected: int = 0  # rollout IDs
    rolling: int = 0
    waiting: int = 0


@dataclass
class Jobs:
    done: str = ""  # a materialisation that wrote 1,200 rows
    failed: str = ""  # a monitor run that failed
    running: str = ""  # data gc, 30 of 120 blobs checked


@dataclass
class Piped:
    name: str = "churn-train"
    first: str = ""  # every step ran
    failed: str = ""  # evaluate failed; clean and split came from the cache
    running: str = ""  # train running, the rest of the DAG waiting


@dataclass
class Monitored:
    name: str = "churn-drift"
    runs: list[int] = field(default_factory=list)  # oldest first; the last one failed
    with_report: int = 0  # the newest run with a report


@dataclass
class Seeded:
    experiment_id: str
    run_ids: dict[str, str] = field(default_factory=dict)  # run name -> ID
    lr: dict[str, float] = field(default_factory=dict)  # run name -> its param lr
    loss: dict[str, float] = field(default_factory=dict)  # run name -> its latest loss
    long_run: str = ""
    parent: str = ""
    child: str = ""
    model: str = "churn-model"
    artifacts_run: str = ""  # run-03, which has the files of ARTIFACTS
    loop: Loop | None = None  # with a store URI: deployment churn and the loop's rollouts on it
    monitor: Monitored | None = None  # with a store URI: monitor churn-drift and its runs
    dataset: str = ""  # with a store URI: churn-train, v1 and v2 (v2 validated, failing one check)
    pipelines: Piped | None = None  # with a store URI: pipeline churn-train's runs
    jobs: Jobs | None = None  # with a store URI: three jobs, one running
    features: bool = False  # with a store URI: customer_stats and co., materialised once
    home: Path | None = None  # the server's folder (its store: ``store_context(home)``)
    traffic_ms: int = 0  # with a store URI: when deployment churn's logged requests came (see seed_traffic)


def png(width: int = 40, height: int = 20) -> bytes:
    """A small valid PNG: a blue-to-orange gradient."""
    raw = b"".join(
        b"\x00"
        + b"".join(bytes((int(255 * x / width), 114, 178 - int(100 * x / width))) for x in range(width))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def parquet() -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(120)), "score": [i / 100 for i in range(120)]}), out)
    return out.getvalue()


# A report whose script must not run: the UI frames it sandboxed.
REPORT = b"<!doctype html><title>Drift</title><h1 id=r>Drift report</h1><script>document.title='ran'</script>"
ARTIFACTS = {
    "plots/loss.png": png(),
    "report.html": REPORT,
    "data/sample.csv": b"city,customers\nOslo,12\nLima,7\n"
    + b"".join(b"Town %d,%d\n" % (i, i) for i in range(80)),
    "data/sample.parquet": parquet(),
    "notes.txt": "Trained on the March snapshot. <b>not bold</b> — ünïcode\n".encode(),
    "model/MLmodel": b"flavors:\n  sklearn: {}\n",
    "weights.bin": bytes(range(256)),
}


def lr_of(i: int) -> float:
    return round(0.001 * (1 + (i * 7) % RUNS), 4)  # distinct, not in run order


def seed(url: str, home: Path | None = None) -> Seeded:
    """The runs, models and artifacts through the REST API; with ``home`` (the server's folder:
    its database and artifacts) also a deployment, the loop's state on it and a monitor."""
    s = _seed_tracking(url)
    if home is not None:
        seed_deployment(url)
        s.traffic_ms = seed_traffic(store_context(home))
        s.loop = seed_loop(store_context(home))
        s.monitor = seed_monitor(store_context(home))
        s.dataset = seed_dataset(store_context(home), home / "seed-data")
        s.pipelines = seed_pipelines(store_context(home))
        s.jobs = seed_jobs(store_context(home))
        s.features = seed_features(store_context(home), home / "seed-features")
        s.home = home
    return s


def store_context(home: Path) -> Context:
    """A context on the store of the server that ``serve_loopline(home)`` started."""
    settings = Settings.from_env(
        {}, tracking_uri=f"sqlite:///{home / 'server.db'}", artifacts_uri=str(home / "artifacts")
    )
    return Context(settings)


def _seed_tracking(url: str) -> Seeded:
    with httpx.Client(base_url=url + API, timeout=30) as c:

        def call(path: str, body: dict[str, object]) -> dict[str, object]:
            answer = c.post(path, json=body)
            answer.raise_for_status()
            out: dict[str, object] = answer.json()
            return out

        def new_run(exp: str, name: str, tags: dict[str, str] | None = None) -> str:
            kv = [{"key": k, "value": v} for k, v in (tags or {}).items()]
            run = call(
                "/runs/create",
                {"experiment_id": exp, "run_name": name, "start_time": 1_700_000_000_000, "tags": kv},
            )
            info = run["run"]["info"]  # type: ignore[index]
            roots[info["run_id"]] = info["artifact_uri"].removeprefix("mlflow-artifacts:").strip("/")
            return str(info["run_id"])

        roots: dict[str, str] = {}

        exp = str(call("/experiments/create", {"name": "churn"})["experiment_id"])
        s = Seeded(exp)
        for i in range(RUNS):
            name = f"run-{i:02d}"
            rid = new_run(exp, name)
            lr = lr_of(i)
            metrics = [
                {
                    "key": "loss",
                    "value": 1.0 / (step + 1) + lr,
                    "timestamp": 1_700_000_000_000 + step,
                    "step": step,
                }
                for step in range(20)
            ]
            metrics.append({"key": "accuracy", "value": 1 - lr, "timestamp": 1_700_000_000_100, "step": 19})
            call(
                "/runs/log-batch",
                {
                    "run_id": rid,
                    "params": [{"key": "lr", "value": str(lr)}, {"key": "depth", "value": str(2 + i % 4)}],
                    "metrics": metrics,
                },
            )
            call("/runs/update", {"run_id": rid, "status": "FINISHED", "end_time": 1_700_000_060_000})
            s.run_ids[name], s.lr[name], s.loss[name] = rid, lr, 1.0 / 20 + lr

        s.artifacts_run = s.run_ids["run-03"]
        for rel, data in ARTIFACTS.items():
            put = httpx.put(
                f"{url}/api/2.0/mlflow-artifacts/artifacts/{roots[s.artifacts_run]}/{rel}", content=data
            )
            put.raise_for_status()

        long_exp = str(call("/experiments/create", {"name": "long-curves"})["experiment_id"])
        s.long_run = new_run(long_exp, "long")
        for start in range(0, LONG_POINTS, 1000):
            points = [
                {
                    "key": "loss",
                    "value": math.sin(step / 300) + (5.0 if step == 4321 else 0.0),  # one spike to keep
                    "timestamp": 1_700_000_000_000 + step,
                    "step": step,
                }
                for step in range(start, start + 1000)
            ]
            call("/runs/log-batch", {"run_id": s.long_run, "metrics": points})

        s.parent = new_run(long_exp, "sweep")
        s.child = new_run(long_exp, "trial-1", {"mlflow.parentRunId": s.parent})
        call("/registered-models/create", {"name": s.model, "description": "Predicts churn."})
        for rid in (s.run_ids["run-00"], s.child):
            call(
                "/model-versions/create",
                {"name": s.model, "source": f"mlflow-artifacts:/{exp}/{rid}/artifacts/model", "run_id": rid},
            )
        call("/registered-models/alias", {"name": s.model, "alias": "champion", "version": "2"})
    return s


GATE_VERDICT = {
    "passed": False,
    "dataset": "datasets:/churn-holdout/3",
    "candidate": "models:/churn-model/3",
    "champion": "models:/churn-model/1",
    "rules": [
        {
            "kind": "metric",
            "passed": False,
            "numbers": {"candidate": 0.8112, "champion": 0.8425, "difference": -0.0313, "bound": -0.0402},
            "why": "roc_auc: candidate 0.8112 vs champion 0.8425, difference -0.0313; its 95% lower bound "
            "-0.0402 is a loss beyond the allowed loss 0.01",
        },
        {
            "kind": "latency",
            "passed": True,
            "numbers": {"p99_ms": 4.2, "max_p99_ms": 50.0},
            "why": "p99 4.2 ms",
        },
    ],
}


def seed_deployment(url: str) -> None:
    """Deployment ``churn``: v1 alone, then a 90/10 split with v2 (two revisions)."""
    api = url + "/api/2.0/loopline/deployments/set"
    for routes, comment in (
        ([{"model": "models:/churn-model/1", "weight": 100}], "first"),
        (
            [
                {"model": "models:/churn-model/1", "weight": 90},
                {"model": "models:/churn-model/2", "weight": 10},
            ],
            "canary",
        ),
    ):
        httpx.post(
            api, json={"name": "churn", "routes": routes, "comment": comment}, timeout=30
        ).raise_for_status()


def seed_traffic(ctx: Context) -> int:
    """Deployment churn's inference log, two minutes ago: v1 answered 10, 20, 30 and 40 ms (the
    last one a 500), v2 answered 50 ms, and a shadow's 900 ms answer that is not traffic."""
    from loopline.clock import now_ms
    from loopline.serving.inference_log import Prediction, _write_predictions

    at = now_ms() - 120_000

    def p(version: str, latency: float, status: int = 200, role: str = "primary") -> Prediction:
        return Prediction("r", at, "churn", "churn-model", version, role, 1, None, [1], latency, status)

    _write_predictions(
        ctx.artifacts,
        [p("1", 10), p("1", 20), p("1", 30), p("1", 40, 500), p("2", 50), p("3", 900, role="shadow")],
    )
    return at


def seed_loop(ctx: Context) -> Loop:
    """Two policies on ``churn`` and three rollouts (rejected by the gate, rolling at step 2 of 3,
    awaiting approval), written straight into the server's database as its controller would (the
    UI tests' servers run no controller, so they stay put)."""
    from loopline.automation import events as ev
    from loopline.automation.sql_store import SqlAutomationStore
    from loopline.automation.types import Gate, GateRule, Policy, RolloutState, RolloutStep
    from loopline.clock import now_ms

    store = SqlAutomationStore(ctx)
    gate = Gate((GateRule("metric", metric="roc_auc", max_loss=0.01),))
    steps = (RolloutStep("shadow", 100, 60), RolloutStep("canary", 10, 600), RolloutStep("canary", 50, 600))
    loop_policy, _ = store.put_policy(
        Policy("churn-loop", "churn-model", "churn", "train.py:pipeline", gate, rollout=steps)
    )
    gated, _ = store.put_policy(
        Policy(
            "churn-gated", "churn-model", "churn", "train.py:pipeline", gate, rollout=steps[:1], approval=True
        )
    )
    out = Loop()
    start = RolloutState.TRAINING
    r = store.create_rollout(
        loop_policy, trigger={"kind": "manual"}, base_revision=1, champion="models:/churn-model/1"
    )
    reason = GATE_VERDICT["rules"][0]["why"]  # type: ignore[index]
    store.advance(
        r.id,
        expected_state=start,
        expected_step=-1,
        event=ev.GATE,
        payload=GATE_VERDICT,
        state=RolloutState.REJECTED,
        candidate="models:/churn-model/3",
        verdict=GATE_VERDICT,
        reason=reason,
    )
    out.rejected = r.id
    r = store.create_rollout(
        loop_policy, trigger={"kind": "alert"}, base_revision=2, champion="models:/churn-model/1"
    )
    store.advance(
        r.id,
        expected_state=start,
        expected_step=-1,
        event=ev.ROLLOUT_STEP,
        payload={"step": 1, "stage": "canary", "weight": 10},
        state=RolloutState.ROLLING,
        step=1,
        step_started_ms=now_ms() - 150_000,
        candidate="models:/churn-model/2",
    )
    out.rolling = r.id
    passed = {**GATE_VERDICT, "passed": True, "rules": [GATE_VERDICT["rules"][1]]}  # type: ignore[index]
    r = store.create_rollout(
        gated, trigger={"kind": "manual"}, base_revision=2, champion="models:/churn-model/1"
    )
    store.advance(
        r.id,
        expected_state=start,
        expected_step=-1,
        event=ev.APPROVAL_WAIT,
        state=RolloutState.AWAITING_APPROVAL,
        candidate="models:/churn-model/2",
        verdict=passed,
        reason="all 1 rules passed",
    )
    out.waiting = r.id
    return out


HOUR_MS = 3_600_000


def seed_monitor(ctx: Context) -> Monitored:
    """Monitor ``churn-drift`` on deployment ``churn`` with four hourly runs, as its runner would
    have recorded them: drift growing from none to two of three columns (each run's report stored
    in the server's artifact store), then a failed run. Written straight into the server's store:
    a real run needs an inference log, which these pages do not."""
    import hashlib
    import json
    import random

    from loopline.clock import now_ms
    from loopline.metadata import schema_monitoring as sm
    from loopline.monitoring.drift import drift
    from loopline.monitoring.sql_store import SqlMonitoringStore
    from loopline.monitoring.types import MONITOR_FILES

    out = Monitored()
    store = SqlMonitoringStore(ctx.engine, workspace=ctx.workspace, actor=ctx.actor, context=ctx)
    store.create_monitor(out.name, "deployments:/churn", reference="datasets:/churn-train/1", window="1d")
    rnd = random.Random(7)
    reference = {
        "age": [rnd.gauss(40, 10) for _ in range(300)],
        "plan": [rnd.choice(["basic", "pro"]) for _ in range(300)],
        "spend": [rnd.random() for _ in range(300)],
    }
    start = now_ms() - 5 * HOUR_MS
    for i, (age_shift, new_plan) in enumerate(((0, False), (6, False), (15, True))):
        current = {
            "age": [rnd.gauss(40 + age_shift, 10) for _ in range(200)],
            "plan": [
                rnd.choice(["basic", "pro", "max"] if new_plan else ["basic", "pro"]) for _ in range(200)
            ],
            "spend": [rnd.random() for _ in range(200)],
        }
        report = drift(reference, current, categorical=["plan"])
        blob = json.dumps(report.to_dict(histograms=True), sort_keys=True).encode()
        path = f"{MONITOR_FILES}/{out.name}/reports/{hashlib.blake2b(blob, digest_size=16).hexdigest()}.json"
        ctx.artifacts.put_bytes(blob, path)
        metrics = {"rows": 200.0, "drift_share": report.drift_share}
        metrics |= {f"drift.{c.name}": c.statistic for c in report.columns.values()}
        run = store.record_run(
            out.name,
            started_ms=start + i * HOUR_MS,
            rows=200,
            new_rows=200,
            status="drift" if report.dataset_drift else "ok",
            dataset_drift=report.dataset_drift,
            drift_share=report.drift_share,
            summary={
                "report": path,
                "drift_share": report.drift_share,
                "drifted_columns": report.drifted_columns,
            },
            metrics=metrics,
            state={},
            next_run_ms=None,
        )
        out.runs.append(run.id)
        out.with_report = run.id
    failed = store.record_run(
        out.name,
        started_ms=start + 3 * HOUR_MS,
        rows=0,
        new_rows=0,
        status="failed",
        dataset_drift=False,
        drift_share=None,
        summary={"error": "the inference log of churn is not readable"},
        metrics={},
        state={},
        next_run_ms=None,
    )
    out.runs.append(failed.id)
    # Spread the runs an hour apart (the store stamps each with the time it was recorded).
    with ctx.engine.begin() as conn:
        for i, run_id in enumerate(out.runs):
            at = start + i * HOUR_MS
            conn.execute(
                sm.monitor_runs.update()
                .where(sm.monitor_runs.c.id == run_id)
                .values(started_ms=at, finished_ms=at + 1000)
            )
            conn.execute(
                sm.monitor_metrics.update()
                .where(sm.monitor_metrics.c.run_id == run_id)
                .values(time_ms=at + 1000)
            )
    return out


def seed_dataset(ctx: Context, folder: Path) -> str:
    """Dataset ``churn-train``: v1 (age, plan; 6 rows), v2 (a column more, rows more, a new plan and
    an age out of range), alias ``prod`` on v2, and v2 validated by a suite one expectation of which
    fails. Through ``DataClient`` on the server's own store."""
    from loopline.data import DataClient
    from loopline.data.validation import Suite, expect, validate

    data = DataClient(context=ctx)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"age": [31, 45, 52, 38, 29, 61], "plan": ["basic", "pro", "basic", "pro", "basic", "pro"]}),
        folder / "part-0.parquet",
    )
    data.add(folder, "churn-train")
    ages = [31, 45, 52, 38, 29, 61, 70, 44, 150, 58]
    pq.write_table(
        pa.table(
            {
                "age": ages,
                "plan": ["basic", "pro", "max", "pro", "basic", "max", "max", "pro", "max", "basic"],
                "spend": [float(i) for i in range(10)],
            }
        ),
        folder / "part-0.parquet",
    )
    v2 = data.add(folder, "churn-train").version
    data.set_alias("churn-train", "prod", v2.version)
    suite = Suite(name="churn", expectations=[expect.not_null("age"), expect.between("age", 0, 120)])
    result = validate(data.load(v2.uri, "arrow"), suite)
    data.record_validation(v2.uri, result.to_dict())
    return "churn-train"


# The DAG of pipeline churn-train: a dataset input, then steps (node, its function, its inputs).
PIPELINE_NODES = [
    {"id": "raw", "step": "raw", "deps": [], "dataset": "datasets:/churn-train@prod"},
    {"id": "clean", "step": "clean", "deps": ["raw"]},
    {"id": "split", "step": "split", "deps": ["clean"]},
    {"id": "report", "step": "profile_report", "deps": ["clean"]},
    {"id": "train", "step": "train", "deps": ["split"]},
    {"id": "evaluate", "step": "evaluate", "deps": ["train", "split"]},
    {"id": "register", "step": "register", "deps": ["evaluate"]},
]


def pipeline_step(run_id: str, node: str, status: str, start: int, ms: int, **more: object) -> Finished:
    """A finished step of a run of churn-train, as the runner registers it."""
    step = next(n for n in PIPELINE_NODES if n["id"] == node)
    record = StepRecord(
        run_id=run_id,
        pipeline="churn-train",
        node=node,
        step=str(step["step"]),
        status=status,
        attempts=0 if status == "cached" else 1,
        cache_key=f"{node:0<16}"[:16],
        start_time=start,
        end_time=start + ms,
        **more,  # type: ignore[arg-type]
    )
    return Finished(record, tuple(str(d) for d in step["deps"] if d != "raw"))


def seed_pipelines(ctx: Context) -> Piped:
    """Three runs of churn-train (``PIPELINE_NODES``) through the pipeline store, as the runner
    writes them: one where every step ran, one that took clean and split from the first run's cache
    and failed at evaluate, and one still running (train running, the rest pending)."""
    import uuid

    from loopline.clock import now_ms
    from loopline.pipelines.sql_store import SqlPipelineStore

    store = SqlPipelineStore(ctx.engine, workspace=ctx.workspace, actor=ctx.actor)
    out = Piped()
    steps = [(str(n["id"]), str(n["step"])) for n in PIPELINE_NODES if "dataset" not in n]
    t = now_ms() - 3_600_000

    def new_run(status_at: int) -> str:
        run_id = uuid.uuid4().hex
        record = RunRecord(
            run_id, out.name, "train.py:pipeline", "running", {"C": 0.5}, 0, "local", {},
            {"nodes": PIPELINE_NODES, "outputs": {"$step": "register"}}, None, "", "", "", "", "ci-1", 1,
            status_at, None,
        )  # fmt: skip
        store.create_run(record, steps)
        return run_id

    out.first = new_run(t)
    store.progress(
        out.first,
        finished=[
            pipeline_step(out.first, "clean", "succeeded", t, 1200),
            pipeline_step(out.first, "split", "succeeded", t + 1300, 400),
            pipeline_step(out.first, "report", "succeeded", t + 1300, 2500),
            pipeline_step(out.first, "train", "succeeded", t + 1800, 42_000),
            pipeline_step(out.first, "evaluate", "succeeded", t + 44_000, 3100),
            pipeline_step(out.first, "register", "succeeded", t + 47_200, 300),
        ],
    )
    store.finish_run(out.first, "succeeded", {"model": "models:/churn-model/1"})
    t += 600_000
    out.failed = new_run(t)
    store.progress(
        out.failed,
        finished=[
            pipeline_step(out.failed, "clean", "cached", t, 20, cached_from=out.first),
            pipeline_step(out.failed, "split", "cached", t + 30, 20, cached_from=out.first),
            pipeline_step(out.failed, "report", "cached", t + 30, 20, cached_from=out.first),
            pipeline_step(out.failed, "train", "succeeded", t + 60, 39_000),
            pipeline_step(
                out.failed,
                "evaluate",
                "failed",
                t + 39_100,
                900,
                error="ValueError: the holdout has no positive labels\n  at evaluate.py:12",
            ),
            pipeline_step(out.failed, "register", "upstream_failed", t + 40_000, 0),
        ],
    )
    store.finish_run(
        out.failed, "failed", None, "step evaluate failed: ValueError: the holdout has no positive labels"
    )
    t = now_ms() - 20_000
    out.running = new_run(t)
    store.progress(
        out.running,
        finished=[
            pipeline_step(out.running, "clean", "cached", t, 20, cached_from=out.first),
            pipeline_step(out.running, "split", "succeeded", t + 30, 500),
            pipeline_step(out.running, "report", "succeeded", t + 30, 2000),
        ],
        started=["train"],
        start_time=t + 600,
    )
    return out


def put_job(ctx: Context, job_id: str, **values: object) -> None:
    """Write job ``job_id``'s row as its server would (``server/jobs.py``), heartbeat now."""
    from loopline.clock import now_ms
    from loopline.metadata.schema_jobs import jobs

    with ctx.engine.begin() as conn:
        changed = conn.execute(
            jobs.update().where(jobs.c.id == job_id).values(heartbeat_ms=now_ms(), **values)
        ).rowcount
        if not changed:
            row = {"workspace": ctx.workspace, "actor": "ci", "done": 0, "message": "", **values}
            conn.execute(jobs.insert().values(id=job_id, heartbeat_ms=now_ms(), **row))


def seed_jobs(ctx: Context) -> Jobs:
    """A finished materialisation, a failed monitor run and a data gc under way (its server
    alive: the test that moves it writes its heartbeat too)."""
    import json
    import uuid

    from loopline.clock import now_ms

    out = Jobs(uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex)
    t = now_ms() - 600_000
    put_job(
        ctx, out.done, kind="features.materialize", status="succeeded", done=1200, total=1200,
        message="driver_stats: 1,200 rows", created_ms=t, started_ms=t, finished_ms=t + 4200,
        result=json.dumps({"views": {"driver_stats": {"rows": 1200}}}),
    )  # fmt: skip
    error = {"error_code": "INVALID_PARAMETER_VALUE", "message": "The inference log of churn is empty.",
             "hint": "Serve some requests first.", "status_code": 400}  # fmt: skip
    put_job(
        ctx, out.failed, kind="monitors.run", status="failed", done=1, total=4,
        message="reading the inference log", created_ms=t + 1000, started_ms=t + 1000,
        finished_ms=t + 1900, error=json.dumps(error),
    )  # fmt: skip
    put_job(
        ctx, out.running, kind="data.gc", status="running", done=30, total=120, message="checking blobs",
        created_ms=now_ms() - 5000, started_ms=now_ms() - 5000,
    )  # fmt: skip
    return out


def seed_features(ctx: Context, folder: Path) -> bool:
    """Entity customer, view customer_stats over a parquet file (materialised once: 3 customers),
    view customer_plan (never materialised), an on-demand view and a service. Through the
    FeatureStore on the server's own store."""
    import datetime as dt

    from loopline.features import (
        Entity,
        FeatureService,
        FeatureStore,
        FeatureView,
        Field,
        FileSource,
        Float64,
        Int64,
        RequestSource,
        String,
        on_demand_feature_view,
    )

    folder.mkdir(parents=True, exist_ok=True)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pq.write_table(
        pa.table(
            {
                "customer_id": [1, 2, 3, 1],
                "event_timestamp": [t0, t0, t0, t0 + dt.timedelta(hours=1)],
                "spend_30d": [12.5, 40.0, 7.25, 15.0],
                "orders_30d": [2, 5, 1, 3],
                "plan": ["basic", "pro", "basic", "pro"],
            }
        ),
        folder / "customers.parquet",
    )
    customer = Entity(name="customer", join_keys=["customer_id"], description="A paying customer.")
    source = FileSource(path=str(folder / "customers.parquet"))
    stats = FeatureView(
        name="customer_stats",
        entities=[customer],
        source=source,
        schema=[Field("spend_30d", Float64), Field("orders_30d", Int64)],
        ttl=dt.timedelta(days=30),
        description="Spend and orders over the last 30 days.",
    )
    plan = FeatureView(
        name="customer_plan", entities=[customer], source=source, schema=[Field("plan", String)]
    )

    @on_demand_feature_view(
        sources=[stats, RequestSource("basket", [Field("basket", Float64)])],
        schema=[Field("spend_ratio", Float64)],
    )
    def spend_ratio(df: Any) -> Any:
        import pandas as pd

        return pd.DataFrame({"spend_ratio": df["basket"] / (df["spend_30d"] + 1)})

    service = FeatureService(name="churn_features", features=[stats, plan[["plan"]], spend_ratio])
    with FeatureStore(context=ctx) as store:
        store.apply([customer, stats, plan, spend_ratio, service])
        store.materialize(t0 - dt.timedelta(days=1), t0 + dt.timedelta(days=1), ["customer_stats"])
    return True
