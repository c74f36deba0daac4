"""The examples, run as a user runs them: a fresh folder, the embedded default (./.loopline), a subprocess.

Each test then opens what the script left behind with ``loopline.Client`` and checks real outcomes:
the runs, their params, metric histories, dataset inputs and artifacts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline import Client, RunStatus, Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(script: str, cwd: Path, timeout: float = 900, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<script>`` in ``cwd`` with no Loopline or MLflow settings inherited."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=cwd,
        env={**clean, "COLUMNS": "120", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """A client on the store the examples create in ``tmp_path/.loopline``."""
    home = tmp_path / ".loopline"
    c = Client(
        Settings.from_env(
            {}, tracking_uri=f"sqlite:///{home / 'loopline.db'}", artifacts_uri=str(home / "artifacts")
        )
    )
    yield c
    c.close()


def test_quickstart_logs_one_run_and_finds_it(tmp_path: Path, client: Client) -> None:
    out = run_example("quickstart.py", tmp_path).stdout

    exp = client.get_experiment_by_name("quickstart")
    assert exp is not None
    [run] = client.search_runs([exp.experiment_id])
    assert f"logged run {run.info.run_id}" in out
    assert out.count(run.info.run_id) == 2  # logged, then found by the search
    assert run.info.status == RunStatus.FINISHED
    assert run.data.params == {"lr": "0.1", "steps": "50"}
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    assert history[0].value == 1.0 and history[-1].value < 0.01
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["notes.txt"]


DEMO_STEPS = {
    "logreg-alpha-0.0001": 30,
    "logreg-alpha-0.01": 30,
    "logreg-alpha-0.3": 30,
    "mlp-32": 60,
    "forest-100": 10,
    "boosting-150": 150,
}
ORDER_BY = ["metrics.val_accuracy DESC", "metrics.val_log_loss ASC"]


def _best_run_printed(stdout: str) -> str:
    m = re.search(r"loopline runs show ([0-9a-f]{32})", stdout)
    assert m, stdout
    return m[1]


@pytest.mark.e2e
def test_demo_tracks_every_model_and_runs_twice(tmp_path: Path, client: Client) -> None:
    first = run_example("demo.py", tmp_path).stdout

    exp = client.get_experiment_by_name("breast-cancer")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], order_by=ORDER_BY)
    assert sorted(r.info.run_name for r in runs) == sorted(DEMO_STEPS)
    assert _best_run_printed(first) == runs[0].info.run_id  # the table's best is the search's best
    for r in runs:
        rid, m = r.info.run_id, r.data.metrics
        assert r.info.status == RunStatus.FINISHED
        assert r.data.params["seed"] == "0" and r.data.params["model"] == r.data.tags["model_family"]
        assert len(client.get_metric_history(rid, "val_log_loss")) == DEMO_STEPS[r.info.run_name]
        assert 0.9 < m["val_accuracy"] <= 1.0 and 0.95 < m["val_roc_auc"] <= 1.0  # it really learned
        assert [d.dataset.source for d in r.inputs] == ["datasets:/breast-cancer-train/1"]
        names = [f.path for f in client.list_artifacts(rid)]
        assert names == ["classification_report.txt", "confusion_matrix.csv", "feature_importances.csv"]
        client.download_artifacts(rid, "confusion_matrix.csv", tmp_path / rid)
        rows = (tmp_path / rid / "confusion_matrix.csv").read_text().splitlines()[1:]
        assert sum(int(v) for row in rows for v in row.split(",")[1:]) == 143  # the validation rows

    assert "Versioned the training data as datasets:/breast-cancer-train/1" in first
    assert "drifted" in first and (tmp_path / ".loopline" / "reports" / "drift.html").exists()
    # The champion served the drifted batch; its monitor read those 143 requests and their labels.
    from loopline.monitoring.monitors import Monitors

    figures: dict[str, float] = {}
    for _, k, v in Monitors(client.settings).history("breast-cancer-champion"):
        figures.setdefault(k, v)  # its first run (the loop runs it again on live traffic)
    assert figures["rows"] == 143 and figures["new_rows"] == 143
    assert figures["drift_share"] >= 0.1 and figures["dataset_drift"] == 1.0
    assert 0.5 < figures["performance.accuracy"] <= 1.0
    assert "alerts: monitor.drift_detected" in " ".join(first.split())

    # The loop closed itself: one candidate promoted, one rejected by the gate, one rolled back
    # during its canary, with no request failed meanwhile; the audit trail and DORA read them back.
    from loopline.automation.dora import read_dora
    from loopline.automation.store import open_automation_store

    rollouts = open_automation_store(client.context).list_rollouts(policy="breast-cancer")
    assert [r.state.value for r in reversed(rollouts)] == ["promoted", "rejected", "rolled_back"]
    assert "roc_auc" in rollouts[1].reason and "p99 latency" in rollouts[0].reason
    # On a quiet machine none fails (`make demo`: 0 of ~1,400); a CI machine starved of CPU while the
    # heavy candidate is served has seen a few do so, which the demo now names: at most 1% here.
    traffic = re.search(r"Traffic meanwhile: (\d+) requests, (\d+) failed", " ".join(first.split()))
    assert traffic is not None and int(traffic[1]) > 100, first
    assert int(traffic[2]) <= int(traffic[1]) // 100, traffic[0]
    dora = read_dora(client.context, "1d").overall
    assert (dora.deployments, dora.rollouts, dora.failures) == (1, 2, 1)
    from loopline.registry import RegistryClient

    champion = RegistryClient(client).get_model_version_by_alias("breast-cancer", "champion")
    assert f"models:/breast-cancer/{champion.version}" == rollouts[2].candidate

    second = run_example("demo.py", tmp_path).stdout  # the same store, a second session
    # The loop versioned train + production as v2; the session's own split is the same bytes as v1.
    printed = re.search(r"Versioned the training data as datasets:/breast-cancer-train/(\d+)", second)
    assert printed is not None
    from loopline.data import DataClient

    data = DataClient(context=client.context)
    again = data.get_version(f"datasets:/breast-cancer-train/{printed.group(1)}")
    assert again.digest == data.get_version("datasets:/breast-cancer-train/1").digest
    rollouts = open_automation_store(client.context).list_rollouts(policy="breast-cancer")
    assert len(rollouts) == 6 and rollouts[2].state.value == "promoted"  # the loop closed again
    assert len(client.search_runs([exp.experiment_id])) == 2 * len(DEMO_STEPS)
    session = client.get_run(_best_run_printed(second)).data.tags["demo_session"]
    this_session = client.search_runs([exp.experiment_id], f"tags.demo_session = '{session}'")
    assert len(this_session) == len(DEMO_STEPS)


@pytest.mark.e2e
def test_mlflow_client_example_logs_to_loopline_server(loopline_server: str, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    out = run_example("mlflow_client.py", tmp_path, MLFLOW_TRACKING_URI=loopline_server).stdout
    assert "config.json:" in out

    c = Client(tracking_uri=loopline_server)
    try:
        runs = c.search_runs(filter_string="tags.client = 'mlflow'", order_by=["params.lr"])
        assert [r.info.run_name for r in runs] == ["lr-0.01", "lr-0.1"]
        for r in runs:
            assert len(c.get_metric_history(r.info.run_id, "loss")) == 20
            assert [d.dataset.name for d in r.inputs] == ["toy"]
            assert {f.path for f in c.list_artifacts(r.info.run_id)} == {"config.json", "reports"}
    finally:
        c.close()
