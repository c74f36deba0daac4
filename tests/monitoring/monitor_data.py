"""Test data for monitors: a reference table, a deployment (in a metadata store, or a server's) and its
inference log, in any artifact store (a local folder, or a server's through its artifact proxy)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopline.context import Context
from loopline.serving.inference_log import Feedback, InferenceLog, Prediction
from loopline.serving.store import open_deployment_store
from loopline.serving.types import DeploymentSpec

FEATURES = ["age", "plan"]


def write_reference(path: Path, n: int = 300, seed: int = 5) -> str:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b", "c"], n)})
    ref["label"] = (ref.age > 40).astype(int)
    ref.to_parquet(path)
    return str(path)


def deploy(context: Context, name: str = "churn-prod", model: str = "models:/churn/1") -> None:
    """Declare deployment ``name`` serving ``model`` where ``context`` keeps deployments."""
    open_deployment_store(context).set_deployment(DeploymentSpec.single(model, name=name))


def log_requests(artifacts: Any, n: int, shift: float, start: int = 0, seed: int = 7) -> None:
    """``n`` predictions (and their ground truth) of deployment churn-prod, ``shift`` years older."""
    rng = np.random.default_rng(seed)
    log = InferenceLog(artifacts, flush_interval=3600)
    now = int(time.time() * 1000)
    for i in range(n):
        age = float(rng.normal(40 + shift, 10))
        plan = str(rng.choice(["a", "b", "c"] if shift == 0 else ["a", "c"]))
        rid = f"r{start + i}"
        pred = int(age > 40)
        log.log_prediction(
            Prediction(
                rid,
                now,
                "churn-prod",
                "churn",
                "1",
                "primary",
                1,
                {"columns": FEATURES, "data": [[age, plan]]},
                [pred],
                1.0,
                200,
            )
        )
        log.log_feedback(Feedback(rid, now, pred))
    log.flush()
