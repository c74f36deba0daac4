"""``loopline models``: real output through CliRunner, exit codes through a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import loopline
from loopline.cli import app
from loopline.registry import RegistryClient, load_model, log_model
from loopline.tracking import default_client


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A registry with model ``churn`` (versions 1 and 2, alias champion → 1) and ``other``."""
    db, art = f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art")
    loopline.set_tracking_uri(db, art)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.uniform(18, 80, 60), "visits": rng.integers(0, 9, 60).astype(float)})
    y = (X.age > 45).astype(int)
    with loopline.start_run(experiment="cli"):
        log_model(LogisticRegression().fit(X, y), input_example=X[:2], registered_model_name="churn")
        log_model(LogisticRegression(C=0.1).fit(X, y), registered_model_name="churn")
        log_model(LogisticRegression().fit(X, y), registered_model_name="other")
    RegistryClient().set_alias("churn", "champion", 1)
    X.assign(churned=y).to_csv(tmp_path / "test.csv", index=False)
    yield {"LOOPLINE_TRACKING_URI": db, "LOOPLINE_ARTIFACTS_URI": art, "COLUMNS": "250"}
    while loopline.active_run():
        loopline.end_run()


def invoke(*args: str, env: dict[str, str]) -> str:
    result = CliRunner().invoke(app, ["models", *args], env=env, terminal_width=250)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_list_show_versions(env: dict[str, str]) -> None:
    out = invoke("list", env=env)
    assert "churn" in out and "other" in out and "v2" in out and "champion→v1" in out
    out = invoke("list", "-F", "name = 'other'", env=env)
    assert "other" in out and "churn" not in out

    out = invoke("show", "churn", env=env)
    assert "churn" in out and "2 versions" in out
    assert "models:/churn@champion" in out  # the alias table
    lines = [line for line in out.splitlines() if line.strip().startswith(("│ 1 ", "│ 2 ", "┃ Version"))]
    assert len(lines) == 3, out

    out = invoke("versions", "churn", env=env)
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert rows[0].split("│")[1].strip() == "2" and rows[1].split("│")[1].strip() == "1"  # newest first
    assert "champion" in rows[1] and "None" in rows[0] and "READY" in rows[0]
    digest_counts = {r.split("│")[7].strip() for r in rows}
    assert all(c.isdigit() and int(c) >= 4 for c in digest_counts), digest_counts  # MLmodel, model, env files


def test_alias_set_and_rm(env: dict[str, str]) -> None:
    out = invoke("alias", "set", "churn", "champion", "2", env=env)
    assert "models:/churn@champion → version 2" in out
    assert RegistryClient().get_model_version_by_alias("churn", "champion").version == 2
    invoke("alias", "set", "churn", "challenger", "1", env=env)
    assert "challenger→v1" in invoke("list", env=env)
    assert "Removed alias challenger of churn" in invoke("alias", "rm", "churn", "challenger", env=env)
    assert set(RegistryClient().get_registered_model("churn").aliases) == {"champion"}


def test_download_verifies_and_loads(env: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "dl"
    out = invoke("download", "models:/churn@champion", str(dest), env=env)
    assert "version 1 of churn" in out and "checked against recorded digests" in out
    assert (dest / "MLmodel").is_file() and (dest / "model.skops").is_file()
    assert (
        len(load_model(str(dest)).predict(pd.read_csv(tmp_path / "test.csv").drop(columns="churned"))) == 60
    )
    result = CliRunner().invoke(app, ["models", "download", "models:/churn/1", str(dest)], env=env)
    assert result.exit_code != 0 and "not an empty folder" in str(result.exception)


def test_evaluate_prints_and_logs(env: dict[str, str], tmp_path: Path) -> None:
    client = default_client()
    run_id = client.create_run(client.set_experiment("cli").experiment_id).info.run_id
    out = invoke(
        "evaluate", "models:/churn@champion", "--data", str(tmp_path / "test.csv"), "--target", "churned",
        "--run-id", run_id, env=env,
    )  # fmt: skip
    assert "accuracy_score" in out and "roc_auc" in out and f"Logged to run {run_id}" in out
    assert 0.5 < client.get_run(run_id).data.metrics["accuracy_score"] <= 1.0
    csv = str(tmp_path / "test.csv")
    out = invoke("evaluate", "models:/churn/2", "-d", csv, "-y", "churned", "-m", "regressor", env=env)
    assert "root_mean_squared_error" in out and "Logged" not in out


def test_help_reads_like_a_manual() -> None:
    result = CliRunner().invoke(app, ["models", "--help"], terminal_width=120)
    assert result.exit_code == 0
    for word in ("list", "show", "versions", "alias", "download", "evaluate", "models:/NAME@ALIAS"):
        assert word in result.output
    result = CliRunner().invoke(app, ["models", "evaluate", "--help"], terminal_width=120)
    assert "--target" in result.output and "log loss" in result.output


def test_unknown_model_exits_nonzero_naming_what_exists(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "models", "show", "nope"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2  # an unknown name is bad input
    assert "nope" in proc.stderr and "churn" in proc.stderr and "other" in proc.stderr
    assert "Traceback" not in proc.stderr
