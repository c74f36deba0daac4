"""The CLI as a user runs it, in fresh processes: code changes and the cache, kill and resume, inspection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_support import cli, invoke, run_json, statuses, write

from loopline.config import Settings
from loopline.metadata import lineage
from loopline.metadata.engine import create_store_engine
from loopline.pipelines.sql_store import SqlPipelineStore

HELPERS = """
def clean(values):
    return [v for v in values if v is not None]

def not_used_by_any_step(values):
    return values
"""

PIPE = """
import os
import time
import helpers
from loopline.pipelines import pipeline, step

@step
def load(n: int) -> list:
    return [None if i % 3 == 0 else i for i in range(n)]

@step
def tidy(values: list) -> list:
    return helpers.clean(values)

@step
def total(values: list) -> int:
    marker = os.environ.get("MARKER")
    if marker:  # the kill test: announce, then take long enough to be killed mid-way
        open(marker, "w").close()
        time.sleep(float(os.environ.get("SLEEP", "0")))
    return sum(values)

@step
def count(values: list) -> int:
    return len(values)

@pipeline
def p(n: int = 10):
    values = load(n)
    tidied = tidy(values)
    return {"total": total(tidied), "count": count(values)}
"""


def project(tmp_path: Path) -> Path:
    return write(tmp_path / "proj", helpers=HELPERS, pipe=PIPE, unrelated="X = 1\n")


def test_changing_a_steps_code_reruns_it_and_its_dependants_only(tmp_path: Path, settings: Settings) -> None:
    proj = project(tmp_path)
    first = run_json(["pipeline", "run", "pipe.py:p", "-p", "n=7"], proj, settings)
    assert first["status"] == "succeeded" and first["outputs"] == {"total": 12, "count": 7}
    assert set(statuses(first).values()) == {"succeeded"}

    (proj / "unrelated.py").write_text("X = 2\n")
    helpers = proj / "helpers.py"
    helpers.write_text(helpers.read_text().replace("return values\n", "return list(values)\n"))
    same = run_json(["pipeline", "run", "pipe.py:p", "-p", "n=7"], proj, settings)
    assert set(statuses(same).values()) == {"cached"}  # unrelated file and unused function: nothing re-ran

    helpers.write_text(helpers.read_text().replace("if v is not None]", "if v is not None and v != 4]"))
    changed = run_json(["pipeline", "run", "pipe.py:p", "-p", "n=7", "--explain"], proj, settings)
    assert statuses(changed) == {
        "load": "cached",
        "tidy": "succeeded",
        "total": "succeeded",
        "count": "cached",
    }
    reasons = {s["node"]: s["reason"] for s in changed["steps"]}
    assert reasons["tidy"].startswith("ran: its code changed since run " + same["run_id"])
    assert reasons["total"].startswith("ran: input tidy changed")
    assert changed["outputs"] == {"total": 8, "count": 7}


def test_a_killed_run_leaves_no_partial_output_and_resumes(tmp_path: Path, settings: Settings) -> None:
    proj = project(tmp_path)
    marker = tmp_path / "in-total"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env.update(LOOPLINE_TRACKING_URI=settings.tracking_uri, LOOPLINE_ARTIFACTS_URI=settings.artifacts_uri,
               MARKER=str(marker), SLEEP="60")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "pipeline", "run", "pipe.py:p", "--workers", "1", "-q"],
        cwd=proj, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the step started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store = SqlPipelineStore(create_store_engine(settings.tracking_uri), workspace="default")
    [run] = store.list_runs("p")
    assert run.status == "running"  # interrupted: nobody got to record an end
    steps = {s.node: s for s in store.steps(run.run_id)}
    assert steps["total"].status == "running" and steps["total"].output_digest == ""
    assert steps["tidy"].status == "succeeded" and steps["tidy"].output_digest
    produced = {e.from_uri for e in lineage.upstream(store.engine, "default", f"{run.uri}/total")}
    assert f"{run.uri}/tidy" not in produced  # no lineage for an output that was never registered

    done = json.loads(invoke(["pipeline", "resume", run.run_id, "--format", "json"], proj, settings).stdout)
    assert done["status"] == "succeeded" and done["run_id"] == run.run_id
    assert statuses(done) == {
        "load": "succeeded",
        "tidy": "succeeded",
        "total": "succeeded",
        "count": "succeeded",
    }
    after = {s.node: s for s in store.steps(run.run_id)}
    assert after["tidy"].end_time == steps["tidy"].end_time  # kept, not run again
    assert after["total"].attempts == 1 and after["total"].output_digest
    assert done["outputs"] == {"total": 27, "count": 10}


def test_failure_prints_the_resume_command_and_inspection_commands(
    tmp_path: Path, settings: Settings
) -> None:
    proj = write(
        tmp_path / "proj2",
        flow="""
        from loopline.pipelines import pipeline, step

        @step
        def one(x: int) -> int:
            return x

        @step
        def boom(x: int) -> int:
            raise RuntimeError(f"cannot handle {x}")

        @pipeline
        def flow(x: int):
            return boom(one(x))
        """,
    )
    missing = cli(["pipeline", "run", "flow.py:flow"], proj, settings, check=False)
    assert missing.returncode == 2 and "Pipeline 'flow' needs parameter 'x'" in missing.stderr
    (proj / "prod.yaml").write_text("x: 3\n")
    failed = cli(
        ["pipeline", "run", "flow.py:flow", "--config", "prod.yaml", "-q"], proj, settings, check=False
    )
    assert failed.returncode == 1
    assert "Step 'boom' failed: RuntimeError: cannot handle 3" in failed.stderr
    runs = json.loads(invoke(["pipeline", "list", "--format", "json"], proj, settings).stdout)
    run_id = runs[0]["run_id"]
    assert f"loopline pipeline resume {run_id}" in " ".join(failed.stderr.split())

    graph = invoke(["pipeline", "graph", run_id], proj, settings).stdout
    assert "one" in graph and "✓ ran" in graph and "boom" in graph and "✗ failed" in graph
    assert graph.index("one") < graph.index("boom")
    shown = invoke(["pipeline", "show", run_id], proj, settings).stdout
    assert "params: x=3" in shown and "Resume with" in shown and "cannot handle 3" in shown
    plan = invoke(["pipeline", "graph", "flow.py:flow", "-p", "x=1"], proj, settings).stdout
    assert "(not run)" in plan and "boom" in plan


def test_rerun_tells_whether_the_outputs_matched(tmp_path: Path, settings: Settings) -> None:
    proj = write(
        tmp_path / "proj3",
        noisy="""
        import random
        from loopline.pipelines import pipeline, step

        @step
        def seeded(n: int) -> list:
            return [random.random() for _ in range(n)]

        @pipeline
        def flow(n: int = 3):
            return seeded(n)
        """,
    )
    first = json.loads(
        invoke(["pipeline", "run", "noisy.py:flow", "--format", "json"], proj, settings).stdout
    )
    rerun = invoke(["pipeline", "rerun", first["run_id"], "--format", "json"], proj, settings)
    report = json.loads(rerun.stdout)
    assert report["matched"] is True and report["same"] == ["seeded"]  # same seed, same numbers
    text = invoke(["pipeline", "rerun", first["run_id"], "--check"], proj, settings)
    assert text.exit_code == 0 and "Reproduced: all 1 step outputs are identical." in text.stdout


REPRO = """
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from loopline.pipelines import pipeline, step

@step
def data(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    df["label"] = (df.a + df.b > 0).astype(int)
    df.attrs["built_at"] = time.time()  # in the Parquet file's metadata: its bytes differ every run
    return df

@step
def train(df: pd.DataFrame) -> RandomForestClassifier:
    # Seeded by the step (NumPy's global generator), unless NOISY asks for the OS's entropy.
    seed = int(np.random.default_rng().integers(2**31)) if os.environ.get("NOISY") else None
    return RandomForestClassifier(n_estimators=5, random_state=seed).fit(df[list("abcd")], df.label)

@step
def score(model: RandomForestClassifier, df: pd.DataFrame) -> dict:
    return {"accuracy": float((model.predict(df[list("abcd")]) == df.label).mean())}

@pipeline
def flow(n: int = 300):
    df = data(n)
    return score(train(df), df)
"""


def test_rerun_compares_models_and_tables_by_content_not_bytes(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = write(tmp_path / "repro", repro=REPRO)
    first = json.loads(
        invoke(["pipeline", "run", "repro.py:flow", "--format", "json"], proj, settings).stdout
    )
    done = invoke(["pipeline", "rerun", first["run_id"], "--check", "--format", "json"], proj, settings)
    report = json.loads(done.stdout)
    assert done.exit_code == 0, done.stdout
    assert report["matched"] is True and sorted(report["same"]) == ["data", "score", "train"]
    # ...although the saved model and the Parquet file are not the same bytes:
    store = SqlPipelineStore(create_store_engine(settings.tracking_uri))
    old, new = (
        {s.node: s.output_digest for s in store.steps(r)} for r in (first["run_id"], report["rerun_run_id"])
    )
    assert old["train"] != new["train"] and old["data"] != new["data"] and old["score"] == new["score"]

    # A step that takes its randomness from the OS does not reproduce; the report says where and how.
    monkeypatch.setenv("NOISY", "1")
    noisy = json.loads(
        invoke(["pipeline", "run", "repro.py:flow", "--format", "json"], proj, settings).stdout
    )
    done = invoke(["pipeline", "rerun", noisy["run_id"], "--check"], proj, settings)
    assert done.exit_code == 1 and "Did not reproduce" in done.stdout
    [line] = [line for line in done.stdout.splitlines() if "≠ train" in line]
    assert "parameters differ: random_state" in line and "fitted attributes differ: estimators_" in line
    report = json.loads(
        invoke(["pipeline", "rerun", noisy["run_id"], "--format", "json"], proj, settings).stdout
    )
    assert "train" in report["different"] and "data" in report["same"]
    assert "predictions differ on" in report["differences"]["train"]
    assert "of data's output" in report["differences"]["train"]
