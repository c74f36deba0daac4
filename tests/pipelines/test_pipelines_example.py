"""examples/pipelines_quickstart.py, run as a user runs it: a fresh folder, the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loopline.config import Settings
from loopline.metadata.engine import create_store_engine
from loopline.pipelines.sql_store import SqlPipelineStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipelines_quickstart.py"


def test_the_quickstart_caches_reruns_one_branch_and_registers_a_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("ran: first run of this step") == 4
    assert "ran: parameters changed: C 1.0 → 0.1" in out and "registered models:/churn-quickstart/2" in out
    home = tmp_path / ".loopline"
    settings = Settings.from_env({}, tracking_uri=f"sqlite:///{home / 'loopline.db'}")
    store = SqlPipelineStore(create_store_engine(settings.tracking_uri), workspace="default")
    runs = store.list_runs("train")
    assert [r.status for r in runs] == ["succeeded"] * 3
    newest, cached, first = runs
    assert {s.status for s in store.steps(cached.run_id)} == {"cached"}
    assert {s.node: s.status for s in store.steps(newest.run_id)} == {
        "make_customers": "cached", "featurize": "cached", "fit": "succeeded", "evaluate": "succeeded"
    }  # fmt: skip
    assert newest.seed == first.seed == 42 and newest.params == {"rows": 500, "C": 0.1}
