"""A served request with everything behind it: run, dataset input, code commit, model versions, a
deployment with two revisions, the inference log (written by the real InferenceLog) and the loop's
events about the version. For the ``why`` tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from loop_data import write_events

from loopline.automation import events as ev
from loopline.config import Settings
from loopline.context import Context
from loopline.registry import RegistryClient
from loopline.serving import set_deployment
from loopline.serving.inference_log import InferenceLog, Prediction
from loopline.tracking import Client
from loopline.tracking.types import Dataset, DatasetInput

REQUEST = "req-0001"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    settings: Settings
    run_id: str
    time_ms: int


def serve_one_request(tmp_path: Path) -> Served:
    settings = Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'loop.db'}",
        artifacts_uri=str(tmp_path / "artifacts"),
        user="alice",
    )
    context = Context(settings)
    client = Client(context=context)
    try:
        exp = client.set_experiment("churn").experiment_id
        run_id = client.create_run(exp, run_name="train-churn").info.run_id
        client.log_batch(run_id, params={"C": 0.5, "max_iter": 200})
        client.log_metric(run_id, "roc_auc", 0.91, synchronous=True)
        client.set_tag(run_id, "mlflow.source.git.commit", COMMIT)
        client.set_tag(run_id, "team", "retention")
        data = Dataset("churn-train", "d1g35t", source_type="local", source="data/churn.parquet")
        client.log_inputs(run_id, [DatasetInput(data, {"mlflow.data.context": "training"})])
        client.set_terminated(run_id)
        registry = RegistryClient(client)
        registry.register(f"runs:/{run_id}/model", "churn", run_id=run_id)  # version 1
        registry.register("elsewhere", "churn")  # version 2: the challenger, no run
        registry.set_alias("churn", "champion", 1)
        set_deployment("churn-prod", [("models:/churn@champion", 100)], comment="first", client=client)
        time.sleep(0.02)
        served_ms = int(time.time() * 1000)
        time.sleep(0.02)
        set_deployment(
            "churn-prod",
            [("models:/churn@champion", 90), ("models:/churn/2", 10)],
            comment="canary of 2",
            client=client,
        )
    finally:
        client.close()
    log = InferenceLog(context.artifacts)
    inputs = {"columns": ["tenure", "plan"], "data": [[3, "basic"]]}
    log.log_prediction(
        Prediction(REQUEST, served_ms, "churn-prod", "churn", "1", "primary", 1, inputs, [1], 4.5, 200)
    )
    log.log_prediction(
        Prediction(REQUEST, served_ms, "churn-prod", "churn", "2", "shadow", 1, inputs, [0], 6.0, 200)
    )
    log.log_prediction(
        Prediction("req-0002", served_ms, "churn-prod", "churn", "1", "primary", 1, {}, [0], 1, 200)
    )
    log.flush()
    rules = [{"kind": "metric", "passed": True, "numbers": {"delta": 0.01}, "why": "roc_auc 0.91 vs 0.90"}]
    p = {"policy": "churn", "deployment": "churn-prod", "model": "churn"}
    t = served_ms
    write_events(
        context.engine,
        [
            (t - 5000, ev.RETRAIN_FINISH, "rollouts:/1", {**p, "candidate": "models:/churn/1"}),
            (
                t - 4000,
                ev.GATE,
                "rollouts:/1",
                {**p, "candidate": "models:/churn/1", "passed": True, "rules": rules},
            ),
            (
                t - 3000,
                ev.ROLLOUT_STEP,
                "rollouts:/1",
                {**p, "candidate": "models:/churn/1", "stage": "canary", "weight": 5},
            ),
            (
                t - 2000,
                ev.PROMOTE,
                "rollouts:/1",
                {**p, "candidate": "models:/churn/1", "change_ms": t - 9000},
            ),
            # Another candidate whose URI begins with this one's: not this version's story.
            (t - 1000, ev.GATE, "rollouts:/2", {**p, "candidate": "models:/churn/10", "passed": False}),
        ],
    )
    return Served(settings, run_id, served_ms)
