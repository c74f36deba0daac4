"""A small, known store for the web UI's tests, written through the MLflow-compatible REST API."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import httpx

API = "/api/2.0/mlflow"
RUNS = 30  # more than one page of 25
LONG_POINTS = 6_000  # more than a chart's default 1,000 points: the server downsamples


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


def lr_of(i: int) -> float:
    return round(0.001 * (1 + (i * 7) % RUNS), 4)  # distinct, not in run order


def seed(url: str) -> Seeded:
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
            return str(run["run"]["info"]["run_id"])  # type: ignore[index]

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
