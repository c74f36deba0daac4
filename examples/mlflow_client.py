"""An unmodified MLflow client logging to ``loopline server``.

    loopline server --port 5000                       # in one terminal
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000  # in another
    python examples/mlflow_client.py

Only ``mlflow`` is imported here: experiments, runs, params, metrics, tags, dataset inputs and
artifacts go through MLflow's own REST calls, which Loopline's server answers. Afterwards the runs
are visible to ``loopline runs list -t http://127.0.0.1:5000`` and to Loopline's Python API.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas

EXPERIMENT = "mlflow-client"


def main() -> None:
    if not os.environ.get("MLFLOW_TRACKING_URI", "").startswith("http"):
        sys.exit("Start `loopline server` and set MLFLOW_TRACKING_URI=http://127.0.0.1:5000 first.")
    mlflow.set_experiment(EXPERIMENT)

    data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.1, 0.9, 2.1, 2.9]})
    for lr in (0.01, 0.1):
        with mlflow.start_run(run_name=f"lr-{lr}") as run:
            mlflow.log_params({"lr": lr, "epochs": 20})
            mlflow.set_tag("client", "mlflow")
            mlflow.log_input(from_pandas(data, name="toy"), context="training")
            for epoch in range(20):
                mlflow.log_metric("loss", math.exp(-lr * 10 * epoch), step=epoch)
            mlflow.log_metrics({"final_loss": math.exp(-lr * 10 * 19)})
            mlflow.log_dict({"lr": lr, "note": "logged by mlflow"}, "config.json")
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "report.txt"
                report.write_text(f"lr={lr}\n")
                mlflow.log_artifact(str(report), artifact_path="reports")
        print(f"logged run {run.info.run_id} ({run.info.run_name})")

    best = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string="params.epochs = '20' AND metrics.final_loss < 1",
        order_by=["metrics.final_loss ASC"],
    )
    print(best[["run_id", "tags.mlflow.runName", "params.lr", "metrics.final_loss"]].to_string(index=False))

    client = MlflowClient()
    best_id = str(best["run_id"].iloc[0])
    history = client.get_metric_history(best_id, "loss")
    print(f"{len(history)} points of 'loss'; artifacts: {[f.path for f in client.list_artifacts(best_id)]}")
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=best_id, artifact_path="config.json", dst_path=tmp)
        print("config.json:", Path(path).read_text())


if __name__ == "__main__":
    main()
