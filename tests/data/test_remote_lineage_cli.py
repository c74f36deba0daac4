"""Push/pull between stores (a folder and S3 on moto), lineage through runs and models, the CLI,
and the data store's contract on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.config import Settings
from loopline.data import DataClient
from loopline.data.remote import pull, push
from loopline.errors import NotFound


def make_client(root: Path, store_uri: str | None = None) -> DataClient:
    root.mkdir(parents=True, exist_ok=True)
    uri = store_uri or f"sqlite:///{root / 'loopline.db'}"
    return DataClient(Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(root / "art"), user="t"))


def files(root: Path, n: int = 12) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"{i}.bin").write_bytes(os.urandom(300 + i))
    return root


@pytest.fixture(params=["folder", "s3"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> BlobArtifactStore:
    if request.param == "s3":
        return BlobArtifactStore(request.getfixturevalue("s3_uri").replace("/artifacts", "/remote"))
    return BlobArtifactStore(str(tmp_path / "remote"))


def test_push_then_pull_into_another_store(tmp_path: Path, remote: BlobArtifactStore) -> None:
    here = make_client(tmp_path / "here")
    data = files(tmp_path / "data")
    client_v1 = here.add(data, "images").version
    (data / "0.bin").write_bytes(b"changed")
    here.add(data, "images")

    sent = push(here, ["images/1", "images/2"], remote)
    assert sent.blobs == 13 and sent.skipped_blobs == 11  # v2 shares 11 of its 12 files with v1
    again = push(here, ["images/1", "images/2"], remote)
    assert again.blobs == 0 and again.skipped_blobs == 24

    there = make_client(tmp_path / "there")
    got = pull(there, "images", None, remote)
    assert got.versions == ["datasets:/images/1", "datasets:/images/2"]
    assert got.blobs == 13
    assert there.get_version("images/1").digest == client_v1.digest
    out = there.get("images/2", tmp_path / "out")
    assert (out / "0.bin").read_bytes() == b"changed"
    assert there.verify("images/1") == []


def test_an_interrupted_push_resumes_with_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = make_client(tmp_path / "here")
    here.add(files(tmp_path / "data", 20), "images")
    remote = BlobArtifactStore(str(tmp_path / "remote"))
    real = remote.put_blob
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> str:
        calls["n"] += 1
        if calls["n"] > 7:
            raise ConnectionError("network down")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(remote, "put_blob", flaky)
    with pytest.raises(ConnectionError):
        push(here, ["images/1"], remote)
    assert remote.list_pins("dataset-versions") == []  # no half version on the remote
    monkeypatch.setattr(remote, "put_blob", real)
    resumed = push(here, ["images/1"], remote)
    assert resumed.skipped_blobs == 7 and resumed.blobs == 13
    there = make_client(tmp_path / "there")
    pull(there, "images", 1, remote)
    assert there.verify("images/1") == []


def test_pull_of_an_unknown_dataset_is_a_clear_error(tmp_path: Path) -> None:
    remote = BlobArtifactStore(str(tmp_path / "remote"))
    with pytest.raises(NotFound, match="has no dataset 'nope'"):
        pull(make_client(tmp_path / "c"), "nope", None, remote)


def test_lineage_runs_from_dataset_to_run_to_model(tmp_path: Path) -> None:
    import loopline
    from loopline.metadata import lineage
    from loopline.tracking.fluent import default_client

    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    with loopline.start_run() as run:
        v = loopline.log_dataset(df, name="train", context="training")
    tracking = default_client()
    edges = lineage.downstream(tracking.store.engine, "default", v.uri)  # type: ignore[attr-defined]
    assert any(e.to_uri == f"runs:/{run.info.run_id}" and e.relation == "input_of" for e in edges)
    inputs = tracking.get_run(run.info.run_id).inputs
    assert [d.dataset.source for d in inputs] == [v.uri]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOOPLINE_TRACKING_URI": f"sqlite:///{cwd / 'db' / 'l.db'}", "COLUMNS": "200"}
    (cwd / "db").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli", "data", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_cli_add_log_show_diff_get_and_errors(tmp_path: Path) -> None:
    pd.DataFrame({"a": range(10), "b": list("xyxyxyxyxy")}).to_parquet(tmp_path / "t.parquet")
    out = cli("add", "t.parquet", "--name", "t", "--alias", "prod", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Created datasets:/t/1" in out.stdout and "10 rows" in out.stdout
    assert "Unchanged" in cli("add", "t.parquet", "-n", "t", cwd=tmp_path).stdout
    pd.DataFrame({"a": range(12)}).to_parquet(tmp_path / "t.parquet")
    assert "datasets:/t/2" in cli("add", "t.parquet", "-n", "t", cwd=tmp_path).stdout
    log = cli("log", "t", cwd=tmp_path)
    assert log.returncode == 0 and "prod" in log.stdout
    shown = cli("show", "t@prod", cwd=tmp_path)
    assert "datasets:/t/1" in shown.stdout and "string" in shown.stdout
    diff = cli("diff", "t/1", "t/2", cwd=tmp_path)
    assert "- column b" in diff.stdout and "rows: 10 → 12" in diff.stdout
    got = cli("get", "t/1", "out", cwd=tmp_path)
    assert got.returncode == 0 and (tmp_path / "out" / "t.parquet").exists()
    missing = cli("show", "nope/1", cwd=tmp_path)
    assert missing.returncode == 2 and "No dataset named 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n3,4,5\n")
    broken = cli("add", "bad.csv", "-n", "bad", cwd=tmp_path)
    assert broken.returncode == 1 and "csv" in broken.stderr.lower()
    assert "bad" not in cli("list", cwd=tmp_path).stdout


def test_data_store_contract(tmp_path: Path, store_uri: str) -> None:
    """The same versions, aliases and digests on SQLite and PostgreSQL."""
    client = make_client(tmp_path / "c", store_uri)
    v1 = client.add(pd.DataFrame({"a": [1, 2]}), "d").version
    assert client.add(pd.DataFrame({"a": [1, 2]}), "d").created is False
    v2 = client.add(pd.DataFrame({"a": [1, 2, 3]}), "d").version
    client.set_alias("d", "prod", 1)
    assert (v1.version, v2.version) == (1, 2)
    assert client.get_version("d@prod").digest == v1.digest
    assert [s.name for s in client.datasets()] == ["d"]
    assert client.datasets()[0].aliases == {"prod": 1}
