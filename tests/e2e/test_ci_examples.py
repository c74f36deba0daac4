"""`loopline ci check` and the CI files under examples/ci: the workflows' own `run:` / `script:` steps
(all but installing Loopline) run here in a subprocess against a real `loopline server`, with only
its URL. A good challenger passes; a bad one fails the job with exit 1; bad input is 2; an
unreachable server is 3."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from support import free_port, run_cli, serve_loopline

from loopline.config import Settings
from loopline.context import Context
from loopline.data.client import DataClient
from loopline.pipelines.pipeline import load_target
from loopline.registry import RegistryClient
from loopline.tracking import Client

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"

PIPELINE = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import loopline.pipelines as lp


    @lp.step(register="churn")
    def fit(shuffle: bool) -> LogisticRegression:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(400, 2))
        y = (x[:, 0] - x[:, 1] > 0).astype(int)
        if shuffle:
            y = rng.permutation(y)
        return LogisticRegression().fit(pd.DataFrame({"a": x[:, 0], "b": x[:, 1]}), y)


    @lp.pipeline
    def train(shuffle: bool = False) -> LogisticRegression:
        return fit(shuffle)
    """
)
SPEC = """\
version: 1
deployments:
  churn-prod:
    routes: [{model: "models:/churn@champion", weight: 100}]
policies:
  churn:
    model: churn
    deployment: churn-prod
    pipeline: "train.py:train"
    gate:
      dataset: "datasets:/holdout@latest"
      target: y
      rules: [{kind: metric, metric: roc_auc, max_loss: 0.02}]
"""
SUITE = """\
name: holdout
expectations:
  - {expect: not_null, column: a}
  - {expect: between, column: y, min: 0, max: 1}
"""


def steps() -> dict[str, list[str]]:
    """Each CI file's commands, as its runner would run them."""
    github = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    gitlab = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    return {
        "github": [s["run"] for job in github["jobs"].values() for s in job["steps"] if "run" in s],
        "gitlab": [c for job in gitlab.values() if isinstance(job, dict) for c in job.get("script", [])],
    }


def run_steps(commands: list[str], repo: Path, url: str) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env["LOOPLINE_TRACKING_URI"] = url
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the `loopline` on PATH
    codes = []
    for command in commands:
        if command.startswith("pip install"):
            continue  # Loopline is installed here already
        codes.append(subprocess.run(["bash", "-e", "-c", command], cwd=repo, env=env, timeout=300).returncode)
        if codes[-1]:
            break  # a CI job stops at its first failed step
    return codes


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(PIPELINE)
    (tmp_path / "loopline.yaml").write_text(SPEC)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "holdout.yaml").write_text(SUITE)
    return tmp_path


def test_both_ci_files_run_and_a_bad_challenger_fails_the_job(repo: Path) -> None:
    assert {k: len(v) for k, v in steps().items()} == {"github": 3, "gitlab": 3}
    db, art = f"sqlite:///{repo / 'team.db'}", str(repo / "art")
    settings = Settings.from_env({}, tracking_uri=db, artifacts_uri=art)
    train = load_target(f"{repo / 'train.py'}:train")
    for shuffle in (False, False, True):  # v1 champion, v2 a good challenger, v3 a bad one
        train.run(settings=settings, cache=False, shuffle=shuffle)
    context = Context(settings)
    registry = RegistryClient(Client(context=context))
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "challenger", 2)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 2))
    DataClient(context=context).add(
        pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] > x[:, 1]).astype(int)}), "holdout"
    )
    with serve_loopline(
        repo / "srv", store=db, artifacts=art, env={"LOOPLINE_CONTROLLER_INTERVAL": "0"}
    ) as url:
        assert run_cli(url, repo, "apply", "loopline.yaml").returncode == 0
        for name, commands in steps().items():
            assert run_steps(commands, repo, url) == [0, 0], name
        registry.set_alias("churn", "challenger", 3)  # the pull request's model is broken
        for name, commands in steps().items():
            assert run_steps(commands, repo, url) == [0, 1], name
        failed = run_cli(url, repo, "ci", "check", "loopline.yaml", "-f", "json")
        assert failed.returncode == 1 and '"passed": false' in failed.stdout and "roc_auc" in failed.stdout
        bad = run_cli(url, repo, "ci", "check", "loopline.yaml", "--policy", "nope")
        assert bad.returncode == 2 and "No policy 'nope'" in bad.stderr
        passed = run_cli(
            url, repo, "ci", "check", "loopline.yaml", "--candidate", "models:/churn/2", "--drift"
        )
        assert passed.returncode == 0, passed.stdout + passed.stderr
    gone = run_cli(f"http://127.0.0.1:{free_port()}", repo, "ci", "check", "loopline.yaml")
    assert gone.returncode == 3 and "Unreachable" in gone.stderr
