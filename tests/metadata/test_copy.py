"""``loopline db copy``: an embedded store (SQLite + a folder) moves onto PostgreSQL + S3 (moto) with
its ids, lineage and blobs intact, and the copy refuses to merge into a store that holds data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

import loopline
from loopline.config import Settings
from loopline.data import DataClient
from loopline.metadata import lineage
from loopline.registry import RegistryClient
from loopline.tracking import Client
from loopline.tracking.fluent import default_client


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LOOPLINE_TRACKING_URI", "MLFLOW_TRACKING_URI")}
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli", "db", *args],
        cwd=cwd,
        env=env | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
    )


def _embedded_history(home: Path) -> tuple[str, str, str]:
    """A run that read a dataset version and logged metrics, and a model version registered from it."""
    loopline.set_tracking_uri(f"sqlite:///{home / 'loopline.db'}", str(home / "artifacts"))
    with loopline.start_run(experiment="churn") as run:
        version = loopline.log_dataset(pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]}), name="train")
        for step in range(5):
            loopline.log_metric("loss", 1 / (step + 1), step=step)
        loopline.log_param("C", 0.5)
        loopline.log_text("w = 1", "model/weights.txt")
    client = default_client()
    RegistryClient(client).register(f"runs:/{run.info.run_id}/model", "churn", run_id=run.info.run_id)
    return run.info.run_id, version.uri, run.info.experiment_id


def test_copy_moves_rows_ids_lineage_and_blobs(tmp_path: Path, postgres_uri: str, s3_uri: str) -> None:
    home = tmp_path / ".loopline"
    home.mkdir()
    run_id, dataset_uri, exp = _embedded_history(home)

    done = _cli(
        "copy", f"sqlite:///{home / 'loopline.db'}", postgres_uri, "--artifacts-to", s3_uri, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "Start: loopline server" in done.stdout

    moved = Settings.from_env({}, tracking_uri=postgres_uri, artifacts_uri=s3_uri, user="ana")
    client = Client(moved)
    run = client.get_run(run_id)
    assert run.data.params == {"C": "0.5"}
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1 / (s + 1) for s in range(5)]
    weights = client.download_artifacts(run_id, "model/weights.txt", tmp_path / "dl")
    assert weights.read_text() == "w = 1"
    downstream = lineage.downstream(client.context.engine, "default", dataset_uri)
    assert any(e.to_uri == f"runs:/{run_id}" for e in downstream)
    (version,) = RegistryClient(client).store.search_model_versions("name = 'churn'", 10, None, None).items
    assert version.run_id == run_id

    # The blobs came along: the dataset version reads back byte for byte from S3.
    frame = DataClient(moved).load(dataset_uri)
    assert frame["y"].tolist() == [0, 1, 0]

    # New objects get new ids after the copied ones (PostgreSQL's sequences were advanced).
    assert int(client.create_experiment("after-the-move")) > int(exp)

    # Running it again would merge two histories: refused, and nothing changes.
    again = _cli("copy", f"sqlite:///{home / 'loopline.db'}", postgres_uri, cwd=tmp_path)
    assert again.returncode != 0
    assert "already holds data" in again.stderr + again.stdout
    assert "Traceback" not in again.stderr


def test_copy_of_a_store_onto_itself_is_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'a.db'}"
    done = _cli("copy", uri, uri, cwd=tmp_path)
    assert done.returncode != 0 and "same database" in done.stderr + done.stdout


def test_mirror_skips_files_already_there_and_resumes(tmp_path: Path) -> None:
    from loopline.artifacts.mirror import mirror

    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(4):
        (src / "blobs" / f"{i:02x}").mkdir(parents=True)
        (src / "blobs" / f"{i:02x}" / "blob").write_bytes(os.urandom(1000 + i))
    first = mirror(str(src), str(dst))
    assert (first.files, first.skipped) == (4, 0)
    (dst / "blobs" / "00" / "blob").unlink()  # as if the copy had stopped before this file
    second = mirror(str(src), str(dst))
    assert (second.files, second.skipped) == (1, 3)
    assert all((dst / p.relative_to(src)).read_bytes() == p.read_bytes() for p in src.rglob("blob"))
