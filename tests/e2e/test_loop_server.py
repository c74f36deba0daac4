"""The loop through a team's server: a client with only an http:// URI declares the loop with
`loopline apply`, asks for a retraining with `loopline retrain`, and follows it with
`loopline rollouts`; the server's own controller trains, gates and promotes. Fresh CLI processes,
none of which is given the database."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from support import run_cli, serve_loopline

from loopline.config import Settings
from loopline.context import Context
from loopline.data.client import DataClient
from loopline.pipelines.pipeline import load_target
from loopline.registry import RegistryClient
from loopline.tracking import Client

PIPELINE = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import loopline.pipelines as lp


    @lp.step
    def data(rows: int) -> pd.DataFrame:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(rows, 2))
        y = (x[:, 0] - x[:, 1] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
        return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y})


    @lp.step(register="churn")
    def fit(frame: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression().fit(frame[["a", "b"]], frame["y"])


    @lp.pipeline
    def train(rows: int = 500) -> LogisticRegression:
        return fit(data(rows))
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
    debounce_s: 0
"""


def _holdout() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] - x[:, 1] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y})


def test_a_client_with_only_the_servers_url_runs_the_loop(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(PIPELINE)
    (tmp_path / "loopline.yaml").write_text(SPEC)
    db, art = f"sqlite:///{tmp_path / 'team.db'}", str(tmp_path / "art")
    settings = Settings.from_env({}, tracking_uri=db, artifacts_uri=art)
    load_target(f"{tmp_path / 'train.py'}:train").run(settings=settings)  # the champion, v1
    context = Context(settings)
    RegistryClient(Client(context=context)).set_alias("churn", "champion", 1)
    DataClient(context=context).add(_holdout(), "holdout")

    env = {"LOOPLINE_CONTROLLER_INTERVAL": "0.2", "LOOPLINE_PIPELINE_ROOTS": str(tmp_path)}
    with serve_loopline(tmp_path / "srv", store=db, artifacts=art, env=env) as url:
        applied = run_cli(url, tmp_path, "apply", "loopline.yaml")
        assert applied.returncode == 0, applied.stderr
        assert run_cli(url, tmp_path, "apply", "loopline.yaml", "--check").returncode == 0
        asked = run_cli(url, tmp_path, "retrain", "churn", "--no-wait")
        assert asked.returncode == 0 and "queued" in asked.stdout, asked.stderr
        deadline, rollouts = time.monotonic() + 90, []
        while time.monotonic() < deadline:
            listed = run_cli(url, tmp_path, "rollouts", "-f", "json")
            assert listed.returncode == 0, listed.stderr
            rollouts = json.loads(listed.stdout)
            if rollouts and rollouts[0]["state"] in ("promoted", "rejected", "rolled_back", "failed"):
                break
            time.sleep(0.5)
        assert [r["state"] for r in rollouts] == ["promoted"], rollouts
        assert rollouts[0]["candidate"] == "models:/churn/2" and rollouts[0]["verdict"]["passed"] is True
        wrong = run_cli(url, tmp_path, "retrain", "nope", "--no-wait")
        assert wrong.returncode == 2 and "No policy named 'nope'" in wrong.stderr + wrong.stdout
        events = run_cli(url, tmp_path, "events", "--kind", "loop.", "-f", "json")
        actions = [e["action"] for e in json.loads(events.stdout)]
        assert {"loop.apply", "loop.trigger", "loop.gate", "loop.promote"} <= set(actions)
        metrics = httpx.get(f"{url}/metrics").text  # what Prometheus scrapes: the loop's gauges too
        assert 'loopline_loop_rollouts{policy="churn",state="promoted"} 1.0' in metrics
        assert "loopline_dora_" in metrics
    champion = RegistryClient(Client(context=context)).get_model_version_by_alias("churn", "champion")
    assert champion.version == 2
    assert not (tmp_path / ".loopline").exists()  # the CLI processes kept nothing locally
