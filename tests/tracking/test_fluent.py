"""The module-level verbs, as a user writes them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopline
from loopline.errors import InvalidInput
from loopline.tracking.types import RunStatus


@pytest.fixture(autouse=True)
def embedded(tmp_path: Path) -> Iterator[None]:
    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    yield
    while loopline.active_run():
        loopline.end_run()


def test_start_run_logs_and_finishes(tmp_path: Path) -> None:
    (tmp_path / "plot.txt").write_text("curve")
    with loopline.start_run(experiment="iris", run_name="svm", tags={"team": "x"}) as run:
        loopline.log_params({"C": 1.0, "kernel": "rbf"})
        loopline.log_param("seed", 42)
        for step in range(100):
            loopline.log_metrics({"loss": 1 / (step + 1), "acc": step / 100}, step=step)
        loopline.set_tags({"stage": "dev"})
        loopline.log_artifact(tmp_path / "plot.txt", "plots")
    got = loopline.Client(
        loopline.Settings.from_env(
            {}, tracking_uri=loopline.get_tracking_uri(), artifacts_uri=str(tmp_path / "art")
        )
    ).get_run(run.run_id)
    assert got.info.status == RunStatus.FINISHED and got.info.run_name == "svm"
    assert got.data.params == {"C": "1.0", "kernel": "rbf", "seed": "42"}
    assert got.data.metrics == {"loss": 0.01, "acc": 0.99}
    assert got.data.tags["team"] == "x" and got.data.tags["mlflow.user"]
    assert "mlflow.source.name" in got.data.tags
    assert len(loopline.get_metric_history(run.run_id, "loss")) == 100
    hits = loopline.search_runs(["iris"], "metrics.acc > 0.5 and params.kernel = 'rbf'")
    assert [r.info.run_id for r in hits] == [run.run_id]


def test_exception_marks_run_failed_and_keeps_metrics() -> None:
    with pytest.raises(RuntimeError), loopline.start_run(experiment="boom") as run:
        loopline.log_metric("before", 1.0)
        raise RuntimeError("training diverged")
    got = loopline.search_runs(["boom"])[0]
    assert got.info.run_id == run.run_id
    assert got.info.status == RunStatus.FAILED and got.data.metrics == {"before": 1.0}


def test_nested_runs_record_their_parent() -> None:
    with loopline.start_run(experiment="sweep") as parent:
        with pytest.raises(InvalidInput, match="already active"):
            loopline.start_run()
        with loopline.start_run(nested=True) as child:
            loopline.log_metric("x", 1)
    children = loopline.search_runs(["sweep"], f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
    assert [r.info.run_id for r in children] == [child.run_id]


def test_metrics_buffered_at_exit_are_written(tmp_path: Path) -> None:
    db = tmp_path / "exit.sqlite"
    script = f"""
import loopline
loopline.set_tracking_uri({f"sqlite:///{db}"!r}, {str(tmp_path / "a")!r})
loopline.set_experiment("atexit")
run = loopline.start_run()
for i in range(5000):
    loopline.log_metric("m", i, step=i)
print(run.run_id)
"""  # no end_run, no flush: the interpreter exits with the metrics still queued
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    client = loopline.Client(loopline.Settings.from_env({}, tracking_uri=f"sqlite:///{db}"))
    run_id = out.stdout.strip()
    assert len(client.get_metric_history(run_id, "m")) == 5000
    assert client.get_run(run_id).info.status == RunStatus.FINISHED  # ended at exit, not left RUNNING
