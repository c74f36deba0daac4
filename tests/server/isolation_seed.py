"""Objects of every kind in one workspace of a real server, made through Loopline's own clients and the
MLflow REST routes, for the isolation tests (``test_workspace_isolation.py``).

Every named object is called ``NAME`` (whatever its kind), so a route's ``name`` parameter names the
seeded object of that route's kind; every object carries ``SECRET`` somewhere (a tag, a description,
a param, file contents), which no answer to another workspace may contain.
"""

from __future__ import annotations

import contextlib
import textwrap
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from loopline.config import Settings
from loopline.context import Context

NAME = "iso"
ALIAS = "champion"
SECRET = "SECRET-A-c0ffee"
HEADER = "Loopline-Workspace"
MLFLOW = "/api/2.0/mlflow"
LOOPLINE = "/api/2.0/loopline"

PIPE = """
from loopline.pipelines import pipeline, step

@step
def numbers(n: int) -> list:
    return [SECRET] * n

@step
def total(values: list) -> int:
    return len(values)

@pipeline(name=NAME)
def p(n: int = 4000):
    return {"total": total(numbers(n))}
"""


@dataclass
class Seeded:
    """What was made in ``workspace``, by identifier."""

    url: str
    workspace: str
    experiment_id: str = ""
    run_id: str = ""
    artifact_path: str = ""  # below the artifact proxy: <experiment>/<run>/artifacts/secret.txt
    logged_model_id: str = ""
    model_artifact_path: str = ""
    dataset_uri: str = ""
    file_digest: str = ""
    manifest_digest: str = ""
    pipeline_run_id: str = ""
    sweep_id: str = ""
    job_id: str = ""
    upload_id: str = ""
    rollout_id: int = 0
    monitor_run_id: int = 0
    event_ids: list[int] = field(default_factory=list)

    def ids(self) -> dict[str, str]:
        """The global identifiers of the workspace's objects: an answer to another workspace holds
        none of them, unless its request named it."""
        found = {
            "run": self.run_id,
            "logged model": self.logged_model_id,
            "file digest": self.file_digest,
            "manifest digest": self.manifest_digest,
            "pipeline run": self.pipeline_run_id,
            "sweep": self.sweep_id,
            "job": self.job_id,
            "upload": self.upload_id,
        }
        return {k: v for k, v in found.items() if v}


def settings(url: str, workspace: str) -> Settings:
    return Settings.from_env({}, tracking_uri=url, workspace=workspace, user=f"{workspace}-user")


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, (r.request.method, r.request.url, r.status_code, r.text)
    return r.json() if r.content else {}


def seed(url: str, workspace: str, home: Path, db_uri: str, artifacts_uri: str) -> Seeded:
    """Objects of every kind in ``workspace`` of the server at ``url`` (database ``db_uri``)."""
    from loopline.automation.sql_store import SqlAutomationStore
    from loopline.automation.store import open_automation_store
    from loopline.automation.types import Gate, GateRule, Policy
    from loopline.data.client import DataClient
    from loopline.errors import LooplineError
    from loopline.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64
    from loopline.monitoring.monitors import Monitors
    from loopline.pipelines import load_target
    from loopline.pipelines.store import open_pipeline_store
    from loopline.pipelines.types import ScheduleRecord
    from loopline.registry import RegistryClient
    from loopline.serving.store import open_deployment_store
    from loopline.serving.types import DeploymentSpec
    from loopline.tracking import Client

    s = Seeded(url, workspace)
    conf = settings(url, workspace)
    ctx = Context(conf)
    http = httpx.Client(base_url=url, headers={HEADER: workspace}, timeout=60)

    # ---- tracking: an experiment, a run with params, metrics, tags and an artifact ------------
    client = Client(conf)
    s.experiment_id = client.create_experiment(NAME, tags={"note": SECRET})
    run = client.create_run(s.experiment_id, run_name=NAME, tags={"note": SECRET})
    s.run_id = run.info.run_id
    client.log_param(s.run_id, "secret", SECRET)
    client.log_metric(s.run_id, "auc", 0.91)
    client.flush()
    client.log_text(s.run_id, SECRET, "secret.txt")
    s.artifact_path = f"{s.experiment_id}/{s.run_id}/artifacts/secret.txt"

    # ---- a logged model (MLflow 3 routes), its files and the run's output ------------------------
    made = _ok(
        http.post(
            f"{MLFLOW}/logged-models",
            json={
                "experiment_id": s.experiment_id,
                "name": NAME,
                "source_run_id": s.run_id,
                "tags": [{"key": "note", "value": SECRET}],
                "params": [{"key": "secret", "value": SECRET}],
            },
        )
    )
    s.logged_model_id = made["model"]["info"]["model_id"]
    location = made["model"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    s.model_artifact_path = f"{location}/MLmodel"
    _ok(http.put(f"/api/2.0/mlflow-artifacts/artifacts/{s.model_artifact_path}", content=SECRET.encode()))
    _ok(
        http.post(
            f"{MLFLOW}/runs/outputs", json={"run_id": s.run_id, "models": [{"model_id": s.logged_model_id}]}
        )
    )
    client.set_terminated(s.run_id)

    # ---- the registry: a model, a version of the logged model, an alias ------------------------
    registry = RegistryClient(client)
    registry.register(
        f"mlflow-artifacts:/{location}",
        NAME,
        run_id=s.run_id,
        model_id=s.logged_model_id,
        tags={"note": SECRET},
        description=SECRET,
    )
    registry.set_alias(NAME, ALIAS, 1)
    registry.store.set_registered_model_tag(NAME, "note", SECRET)

    # ---- data: a dataset version (its blobs on the server), an alias, a validation ----------------
    csv = home / "secret.csv"
    csv.write_text(f"x,y\n1,{SECRET}\n")
    data = DataClient(conf)
    added = data.add(csv, NAME, description=SECRET)
    s.dataset_uri = added.version.uri
    s.manifest_digest = added.version.digest
    s.file_digest = data.manifest(added.version).entries[0].digest
    data.set_alias(NAME, "prod", added.version.version)
    data.store.record_validation(NAME, added.version.version, suite=NAME, success=True, result={"n": SECRET})

    # ---- features: a view over a file the server reads, materialised ---------------------------
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = home / "drivers.parquet"
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pq.write_table(
        pa.Table.from_pylist(
            [{"driver_id": i, "event_timestamp": t0 + timedelta(hours=i), "conv": i / 10} for i in range(3)]
        ),
        parquet,
    )
    features = FeatureStore(conf)
    features.apply(
        [
            Entity(name="driver", join_keys=["driver_id"]),
            FeatureView(
                name=NAME,
                entities=["driver"],
                source=FileSource(path=str(parquet)),
                schema=[Field("conv", Float64)],
                description=SECRET,
                tags={"note": SECRET},
            ),
        ]
    )
    features.materialize(t0 - timedelta(hours=1), t0 + timedelta(hours=5))
    features.close()

    # ---- pipelines: a real run (its outputs in the workspace's artifact store), a sweep, a schedule
    project = home / "proj"
    project.mkdir(exist_ok=True)
    (project / "pipe.py").write_text(
        textwrap.dedent(PIPE).replace("NAME", repr(NAME)).replace("SECRET", repr(SECRET))
    )
    result = load_target(f"{project / 'pipe.py'}:p").run(settings=conf)
    s.pipeline_run_id = result.run_id
    pipelines = open_pipeline_store(ctx)
    s.sweep_id = uuid.uuid4().hex
    pipelines.create_sweep(
        s.sweep_id, NAME, f"{project / 'pipe.py'}:p", "grid", "total", "max", {"n": [1, SECRET]}
    )
    pipelines.add_schedule(
        ScheduleRecord(NAME, f"{project / 'pipe.py'}:p", "0 3 * * *", {"note": SECRET}, "local", True, 1)
    )

    # ---- serving: a deployment of the model; a monitor over it and a run of it -------------------
    open_deployment_store(ctx).set_deployment(
        DeploymentSpec.single(f"models:/{NAME}@{ALIAS}", name=NAME), comment=SECRET
    )
    monitors = Monitors(context=ctx)
    monitors.create(NAME, deployment=NAME, window="1h", labels={"note": SECRET})
    with contextlib.suppress(LooplineError):  # no predictions logged: a failed run is a run too
        monitors.run(NAME)
    s.monitor_run_id = monitors.runs(NAME)[0].id

    # ---- the loop: a policy, a rollout (made as the controller does, on the database) -----------
    policy = Policy(
        NAME,
        NAME,
        NAME,
        "train.py:train",
        Gate((GateRule("metric", metric="auc", max_loss=0.01),)),
        labels={"note": SECRET},
    )
    open_automation_store(ctx).put_policy(policy)
    controller = SqlAutomationStore(
        Context(Settings.from_env({}, tracking_uri=db_uri, artifacts_uri=artifacts_uri, workspace=workspace))
    )
    s.rollout_id = controller.create_rollout(
        policy, trigger={"note": SECRET}, base_revision=1, champion="1"
    ).id

    # ---- a job (the workspace's data gc), a multipart upload in flight, the events ---------------
    data.gc(3600.0)
    s.job_id = _ok(http.get(f"{LOOPLINE}/jobs"))["jobs"][0]["job_id"]
    up = _ok(
        http.post(
            f"/api/2.0/mlflow-artifacts/mpu/create/{s.experiment_id}/{s.run_id}/artifacts",
            json={"path": "big.bin", "num_parts": 2},
        )
    )
    s.upload_id = up["upload_id"]
    _ok(http.put(f"{LOOPLINE}/uploads/{s.upload_id}/parts/1", content=SECRET.encode()))
    s.event_ids = [
        e["id"] for e in _ok(http.get(f"{LOOPLINE}/events", params={"max_results": 1000}))["events"]
    ]
    http.close()
    client.close()
    return s
