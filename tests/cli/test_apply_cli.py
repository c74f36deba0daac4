"""``loopline apply`` as a user runs it: a fresh process, a file, exit codes for CI."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from support import run_cli

from loopline.automation.apply import Change, FieldChange, Plan
from loopline.cli.apply import render_plan

FILE = """\
version: 1
deployments:
  churn-prod:
    routes: [{model: "models:/churn@champion", weight: 100}]
policies:
  churn:
    model: churn
    deployment: churn-prod
    pipeline: "train.py:train"
    gate: {rules: [{kind: metric, metric: roc_auc}]}
"""


def test_a_plan_reads_like_terraforms() -> None:
    plan = Plan(
        "loopline.yaml",
        (
            Change("deployment", "churn-prod", "update", (FieldChange("routes[0].weight", 100, 90),)),
            Change("monitor", "churn-drift", "create", (FieldChange("window", None, "1h"),)),
            Change("policy", "churn", "unchanged"),
            Change("policy", "old", "delete", (FieldChange("model", "old", None),), "made by apply"),
        ),
    )
    out = io.StringIO()
    render_plan(plan, Console(file=out, width=100, color_system=None))
    assert out.getvalue() == (
        "~ deployment churn-prod: update\n"
        "    routes[0].weight: 100 -> 90\n"
        "+ monitor churn-drift: create\n"
        "    window: 1h\n"
        "  policy churn: unchanged\n"
        "- policy old: delete  (made by apply)\n"
        "    model: old\n"
        "Plan: 1 to create, 1 to update, 1 to delete, 1 unchanged.\n"
    )


def test_apply_then_check_exit_codes_and_a_bad_file(tmp_path: Path) -> None:
    from loopline.config import Settings
    from loopline.context import Context
    from loopline.registry.store import open_registry_store

    db = f"sqlite:///{tmp_path / 'l.db'}"
    registry = open_registry_store(
        Context(Settings.from_env({}, tracking_uri=db, artifacts_uri=str(tmp_path)))
    )
    registry.create_registered_model("churn")
    registry.create_model_version("churn", "mlflow-artifacts:/0/r/artifacts/model")
    registry.set_registered_model_alias("churn", "champion", 1)
    (tmp_path / "loopline.yaml").write_text(FILE)

    done = run_cli(db, tmp_path, "apply", "--check")
    assert done.returncode == 1 and "Drift: what runs differs from loopline.yaml." in done.stdout

    done = run_cli(db, tmp_path, "apply")
    assert done.returncode == 0, done.stderr
    assert "+ deployment churn-prod: create" in done.stdout
    assert done.stdout.endswith("Applied: 2 created, 0 updated, 0 deleted.\n")

    done = run_cli(db, tmp_path, "apply", "--check", "--format", "json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert (body["drift"], body["applied"], body["summary"]["unchanged"]) == (False, False, 2)

    (tmp_path / "drifted.yaml").write_text(FILE.replace("roc_auc}", "roc_auc, max_loss: 0.01}"))
    done = run_cli(db, tmp_path, "apply", "drifted.yaml", "--check")
    assert done.returncode == 1
    assert "~ policy churn: update\n    gate.rules[0].max_loss: 0.0 -> 0.01\n" in done.stdout

    (tmp_path / "bad.yaml").write_text(
        FILE.replace("weight: 100", "weight: -1").replace("pipeline:", "pipline:")
    )
    done = run_cli(db, tmp_path, "apply", "bad.yaml")
    assert done.returncode == 2 and done.stdout == ""
    assert "bad.yaml: 2 problems, nothing was applied" in done.stderr
    assert (
        "bad.yaml:4: deployments.churn-prod.routes[0]: 'weight' must be a finite number >= 0" in done.stderr
    )
    assert "bad.yaml:9: policies.churn.pipline: unknown key 'pipline'." in done.stderr
    assert "Traceback" not in done.stderr
    done = run_cli(db, tmp_path, "apply", "--check")
    assert done.returncode == 0 and "No drift" in done.stdout  # the bad file changed nothing
