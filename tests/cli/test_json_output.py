"""``--format json`` (``-f json``) on the listing and show commands: one JSON document on stdout, in
the shapes docs/tracking.md, docs/registry.md and docs/serving.md describe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loopline.cli import app
from loopline.config import Settings
from loopline.registry import RegistryClient, log_model
from loopline.serving.deployments import set_deployment
from loopline.tracking import Client


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("json-output")
    environ = {
        "LOOPLINE_TRACKING_URI": f"sqlite:///{root / 'db.sqlite'}",
        "LOOPLINE_ARTIFACTS_URI": str(root),
    }
    client = Client(Settings.from_env(environ))
    exp = client.create_experiment("cli")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 0, 1, 1]})
    for i, lr in enumerate(("0.1", "0.01")):
        run_id = client.create_run(exp, run_name=f"run{i}").info.run_id
        client.log_batch(run_id, params={"lr": lr})
        client.log_metric(run_id, "acc", 0.8 + i / 10, synchronous=True)
        client.log_text(run_id, "notes", "notes.txt")
        log_model(
            LogisticRegression().fit(frame[["a"]], frame["y"]),
            registered_model_name="churn",
            run_id=run_id,
            client=client,
        )
    RegistryClient(client).set_alias("churn", "champion", 1)
    set_deployment("prod", [("models:/churn@champion", 100)], client=client)
    set_deployment("prod", [("models:/churn@champion", 90), ("models:/churn/2", 10)], client=client)
    return environ


def as_json(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_runs_and_experiments(env: dict[str, str]) -> None:
    runs = as_json(env, "runs", "list", "-e", "cli", "-o", "metrics.acc DESC", "-f", "json")
    assert [r["info"]["run_name"] for r in runs] == ["run1", "run0"]
    first = runs[0]
    assert {"run_id", "run_name", "experiment_id", "status", "start_time", "artifact_uri"} <= first[
        "info"
    ].keys()
    assert [m["key"] for m in first["data"]["metrics"]] == ["acc"]
    assert {"key": "lr", "value": "0.01"} in first["data"]["params"]
    only = as_json(env, "runs", "list", "-F", "params.lr = '0.1'", "--format", "json")  # -F: the filter
    assert [r["info"]["run_name"] for r in only] == ["run0"]

    shown = as_json(env, "runs", "show", first["info"]["run_id"], "-f", "json")
    assert shown["info"] == first["info"]
    assert {"path": "notes.txt", "is_dir": False, "file_size": 5} in shown["artifacts"]
    both = as_json(env, "runs", "compare", first["info"]["run_id"], runs[1]["info"]["run_id"], "-f", "json")
    assert [r["info"]["run_name"] for r in both] == ["run1", "run0"]

    exps = as_json(env, "experiments", "list", "-f", "json")
    assert {"cli", "Default"} == {e["name"] for e in exps}
    assert {"experiment_id", "name", "artifact_location", "lifecycle_stage"} <= exps[0].keys()


def test_models(env: dict[str, str]) -> None:
    (model,) = as_json(env, "models", "list", "-f", "json")
    assert model["name"] == "churn" and model["aliases"] == [{"alias": "champion", "version": "1"}]
    shown = as_json(env, "models", "show", "churn", "-f", "json")
    assert [v["version"] for v in shown["versions"]] == ["2", "1"]
    assert shown["versions"][1]["aliases"] == ["champion"]
    versions = as_json(env, "models", "versions", "churn", "-f", "json")
    assert versions == shown["versions"]
    assert {"name", "version", "source", "run_id", "status", "current_stage"} <= versions[0].keys()


def test_deployments(env: dict[str, str]) -> None:
    (listed,) = as_json(env, "deploy", "list", "-f", "json")
    shown = as_json(env, "deploy", "show", "prod", "-f", "json")
    assert listed == shown
    assert shown["name"] == "prod" and shown["revision"] == 2
    assert shown["spec"]["routes"] == [
        {"model": "models:/churn@champion", "weight": 90.0},
        {"model": "models:/churn/2", "weight": 10.0},
    ]
    assert shown["resolved"]["models:/churn@champion"] == "models:/churn/1"
    history = as_json(env, "deploy", "history", "prod", "-f", "json")
    assert [h["revision"] for h in history] == [2, 1]
    assert {"name", "revision", "spec", "resolved", "actor", "time_ms", "comment"} == history[0].keys()


def test_an_unknown_format_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["runs", "list", "-f", "xml"], env=env)
    assert result.exit_code == 2 and "xml" in result.output
