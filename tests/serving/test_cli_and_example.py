"""``loopline serve`` refuses what it cannot serve before it starts; the serving example runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from loopline.cli.main import app
from loopline.errors import InvalidInput, NotFound
from serving.helpers import Registry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serve_model.py"


def test_serve_refuses_an_unknown_model_or_deployment_before_starting(registry: Registry) -> None:
    env = {"LOOPLINE_TRACKING_URI": registry.tracking_uri, "LOOPLINE_ARTIFACTS_URI": registry.artifacts_uri}
    runner = CliRunner()
    r = runner.invoke(app, ["serve", "models:/churn@nobody"], env=env)
    assert isinstance(r.exception, NotFound) and "nobody" in str(r.exception)
    r = runner.invoke(app, ["serve", "--deployment", "missing"], env=env)
    assert isinstance(r.exception, NotFound) and "deploy set" in str(r.exception)
    r = runner.invoke(app, ["serve"], env=env)
    assert isinstance(r.exception, InvalidInput)
    r = runner.invoke(app, ["serve", "models:/churn/1", "--max-batch-size", "0"], env=env)
    assert isinstance(r.exception, InvalidInput) and "max_batch_size" in str(r.exception)


def test_the_serving_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "MLflow /invocations: {'predictions': [" in out and "answered by models:/churn/1" in out
    assert "OIP /v2/models/churn/infer:" in out
    assert "bad request -> 400: Input is missing columns 'income', 'visits'" in out
    assert "inference log: 3 predictions logged" in out
    assert "Traceback" not in proc.stderr
