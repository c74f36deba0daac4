"""Pipelines in five minutes: typed steps, a cached DAG, a registered model, lineage.

Run it in an empty folder: ``python examples/pipelines_quickstart.py``. It stores everything in
./.loopline (SQLite + artifacts), runs the pipeline three times and prints what each run did:
the first runs every step, the second reuses every output from the cache, the third changes one
parameter and re-runs only the steps that depend on it. Then:

    loopline pipeline list
    loopline pipeline graph <run id>
    loopline pipeline run examples/pipelines_quickstart.py:train -p C=0.5 --explain
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import loopline.pipelines as lp
from loopline.metadata import lineage


@lp.step
def make_customers(rows: int) -> pd.DataFrame:
    """Synthetic churn data (stand-in for ``lp.dataset("datasets:/customers@latest")``)."""
    rng = np.random.default_rng(7)
    tenure = rng.integers(1, 72, rows)
    charges = rng.normal(70, 20, rows).round(2)
    churned = (rng.random(rows) < 1 / (1 + np.exp((tenure - 24) / 8))).astype(int)
    return pd.DataFrame({"tenure": tenure, "monthly_charges": charges, "churned": churned})


@lp.step
def featurize(customers: pd.DataFrame) -> pd.DataFrame:
    return customers.assign(
        long_tenure=(customers["tenure"] > 24).astype(int),
        charges_per_month_of_tenure=customers["monthly_charges"] / customers["tenure"],
    )


@lp.step(register="churn-quickstart", retries=1)
def fit(features: pd.DataFrame, C: float) -> LogisticRegression:
    x = features.drop(columns="churned").to_numpy()
    return LogisticRegression(C=C, max_iter=500).fit(x, features["churned"].to_numpy())


@lp.step
def evaluate(model: LogisticRegression, features: pd.DataFrame) -> dict[str, float]:
    x = features.drop(columns="churned").to_numpy()
    return {"auc": float(roc_auc_score(features["churned"], model.predict_proba(x)[:, 1]))}


@lp.pipeline(seed=42)
def train(rows: int = 500, C: float = 1.0) -> Any:
    features = featurize(make_customers(rows))
    return evaluate(fit(features, C), features)


def show(title: str, run: lp.PipelineRun) -> None:
    print(f"\n{title}: run {run.run_id} {run.status}, auc={run.outputs['auc']:.3f}")
    for step in run.steps.values():
        print(f"  {step.node:<15} {step.status:<9} {step.reason}")


if __name__ == "__main__":
    with lp.Runner() as runner:
        first = runner.run(train)
        show("first run", first)
        show("same parameters", runner.run(train))
        changed = runner.run(train, {"C": 0.1})
        show("C=0.1", changed)
        model = changed.steps["fit"].output_meta["model_version"]
        print(f"\nregistered {model}; what made it:")
        for edge in lineage.upstream(runner.store.engine, runner.settings.workspace, model):
            print(f"  {edge.from_uri} --{edge.relation}--> {edge.to_uri}")
    print("\nnext: loopline pipeline list; loopline pipeline graph", changed.run_id)
