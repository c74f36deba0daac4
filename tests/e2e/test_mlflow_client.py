"""The unmodified ``mlflow`` client against ``loopline server``: every answer checked against what
MLflow's own server returns (mlflow/server/handlers.py and its SQL store).

One server per module (see conftest); each test makes its own experiment, so tests share nothing
but the process.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

from .conftest import RunningServer

pytestmark = pytest.mark.e2e

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts"
JSON = "application/json"


def _experiment(prefix: str = "e2e") -> str:
    """A fresh experiment, made the active one; returns its ID."""
    return str(mlflow.set_experiment(f"{prefix}-{uuid.uuid4().hex[:10]}").experiment_id)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- tracking --------------------------------------------------------------------------------


def test_fluent_run_logs_params_metrics_tags_and_ends(mlflow_uri: str) -> None:
    exp_id = _experiment()
    t0 = int(time.time() * 1000)
    with mlflow.start_run(run_name="fluent") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"layers": 3, "optimizer": "adam"})
        for step, loss in enumerate([0.9, 0.5, 0.25]):
            mlflow.log_metric("loss", loss, step=step, timestamp=t0 + step)
        mlflow.log_metrics({"acc": 0.75, "f1": 0.5}, step=7)
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"stage": "dev"})
        run_id = run.info.run_id

    got = MlflowClient().get_run(run_id)
    assert got.info.experiment_id == exp_id
    assert got.info.run_name == "fluent"
    assert got.info.status == "FINISHED"
    assert got.info.lifecycle_stage == "active"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time >= t0 - 60_000
    assert got.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    assert got.data.params == {"lr": "0.01", "layers": "3", "optimizer": "adam"}
    assert got.data.metrics == {"loss": 0.25, "acc": 0.75, "f1": 0.5}
    assert {"team": "vision", "stage": "dev", "mlflow.runName": "fluent"}.items() <= got.data.tags.items()
    assert "mlflow.user" in got.data.tags

    history = MlflowClient().get_metric_history(run_id, "loss")
    assert [(m.value, m.step, m.timestamp) for m in history] == [
        (0.9, 0, t0),
        (0.5, 1, t0 + 1),
        (0.25, 2, t0 + 2),
    ]
    assert [(m.key, m.value, m.step) for m in MlflowClient().get_metric_history(run_id, "acc")] == [
        ("acc", 0.75, 7)
    ]
    assert MlflowClient().get_metric_history(run_id, "never-logged") == []


def test_end_run_status_and_delete_restore(mlflow_uri: str) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run = mlflow.start_run()
    mlflow.end_run(status="KILLED")
    killed = client.get_run(run.info.run_id)
    assert (killed.info.status, killed.info.lifecycle_stage) == ("KILLED", "active")
    assert killed.info.end_time is not None

    failed = client.create_run(exp_id)
    client.set_terminated(failed.info.run_id, "FAILED")
    assert client.get_run(failed.info.run_id).info.status == "FAILED"

    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    active = client.search_runs([exp_id])
    deleted = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    every = client.search_runs([exp_id], run_view_type=ViewType.ALL)
    assert [r.info.run_id for r in active] == [failed.info.run_id]
    assert [r.info.run_id for r in deleted] == [run.info.run_id]
    assert {r.info.run_id for r in every} == {run.info.run_id, failed.info.run_id}
    with pytest.raises(MlflowException) as e:  # MLflow: a deleted run takes no writes
        client.log_param(run.info.run_id, "x", "1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_log_batch_beyond_server_limits_is_split_by_the_client(mlflow_uri: str) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    ts = int(time.time() * 1000)
    metrics = [Metric(f"m{i % 5}", float(i), ts + i, i // 5) for i in range(2_600)]
    params = [Param(f"p{i}", str(i)) for i in range(150)]
    tags = [RunTag(f"t{i}", f"v{i}") for i in range(130)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    got = client.get_run(run_id)
    assert got.data.params == {f"p{i}": str(i) for i in range(150)}
    assert {f"t{i}": f"v{i}" for i in range(130)}.items() <= got.data.tags.items()
    assert got.data.metrics == {f"m{k}": float(2_595 + k) for k in range(5)}
    history = client.get_metric_history(run_id, "m3")
    assert [(m.value, m.step, m.timestamp) for m in history] == [
        (float(i), i // 5, ts + i) for i in range(3, 2_600, 5)
    ]


def test_metric_history_pages_past_25000_points(mlflow_uri: str, server: RunningServer) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    n = 25_503
    ts = 1_700_000_000_000
    rng = random.Random(7)
    values = [rng.uniform(-1e6, 1e6) for _ in range(n)]
    client.log_batch(run_id, metrics=[Metric("loss", values[i], ts + 3 * i, i) for i in range(n)])

    history = client.get_metric_history(run_id, "loss")  # pages of 25,000 with page_token
    assert len(history) == n
    assert [m.step for m in history] == list(range(n))
    assert [m.timestamp for m in history] == [ts + 3 * i for i in range(n)]
    assert [m.value for m in history] == values  # doubles round-trip exactly

    # The raw pages, as MLflow's server cuts them.
    q = {"run_id": run_id, "metric_key": "loss", "max_results": 25_000}
    first = httpx.get(server.url + API + "/metrics/get-history", params=q).json()
    assert len(first["metrics"]) == 25_000 and first["next_page_token"]
    second = httpx.get(
        server.url + API + "/metrics/get-history", params={**q, "page_token": first["next_page_token"]}
    ).json()
    assert [m["step"] for m in second["metrics"]] == list(range(25_000, n))
    assert "next_page_token" not in second
    assert client.get_run(run_id).data.metrics == {"loss": values[-1]}


def test_special_metric_values_round_trip(mlflow_uri: str) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    for step, v in enumerate([float("inf"), float("-inf"), 1e-300, -0.0, float("nan")]):
        client.log_metric(run_id, "odd", v, timestamp=1000 + step, step=step)
    values = [m.value for m in client.get_metric_history(run_id, "odd")]
    assert values[:4] == [float("inf"), float("-inf"), 1e-300, -0.0]
    assert values[4] != values[4]  # NaN
    latest = client.get_run(run_id).data.metrics["odd"]
    assert latest != latest


def test_metric_history_is_ordered_like_mlflow(mlflow_uri: str) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    client.log_batch(run_id, metrics=[Metric("m", 1.0, 2_000, 0), Metric("m", 2.0, 1_000, 1)])
    assert [m.step for m in client.get_metric_history(run_id, "m")] == [1, 0]


def test_identical_metric_points_are_stored_once(mlflow_uri: str) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    for _ in range(2):  # e.g. a client retrying a request whose answer was lost
        client.log_metric(run_id, "m", 1.0, timestamp=1_000, step=0)
    assert len(client.get_metric_history(run_id, "m")) == 1


# ---- search ----------------------------------------------------------------------------------


@pytest.fixture
def four_runs(mlflow_uri: str) -> tuple[str, dict[str, str]]:
    """Four runs in a fresh experiment; run ``d`` has no metric ``m``, param ``p`` or tag ``team``."""
    exp_id = _experiment("search")
    client = MlflowClient()
    ids: dict[str, str] = {}
    specs: list[tuple[str, float | None, str | None, str | None, str]] = [
        ("a", 3.0, "x", "red", "FINISHED"),
        ("b", 1.0, "y", "blue", "FINISHED"),
        ("c", 2.0, "x", "red", "FAILED"),
        ("d", None, None, None, "RUNNING"),
    ]
    for i, (name, m, p, team, status) in enumerate(specs):
        run = client.create_run(exp_id, start_time=1_000 * (i + 1), run_name=name)
        rid = run.info.run_id
        ids[name] = rid
        client.log_batch(
            rid,
            metrics=[Metric("m", m, 5, 0)] if m is not None else [],
            params=[Param("p", p)] if p is not None else [],
            tags=[RunTag("team", team)] if team is not None else [],
        )
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=1_000 * (i + 1) + 500)
    return exp_id, ids


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.m > 1.5", {"a", "c"}),
        ("metrics.m <= 1", {"b"}),
        ("params.p = 'x'", {"a", "c"}),
        ("params.p != 'x'", {"b"}),
        ("tags.team = 'red' AND metrics.m >= 3", {"a"}),
        ("tags.team LIKE 'bl%'", {"b"}),
        ("tags.`team` ILIKE 'RED'", {"a", "c"}),
        ("attributes.status = 'FINISHED'", {"a", "b"}),
        ("attributes.status != 'FINISHED'", {"c", "d"}),
        ("attributes.run_name = 'd'", {"d"}),
        ("attributes.start_time >= 3000", {"c", "d"}),
        ("params.p IN ('y', 'z')", {"b"}),
        ("", {"a", "b", "c", "d"}),
    ],
)
def test_search_runs_filter(
    four_runs: tuple[str, dict[str, str]], filter_string: str, expected: set[str]
) -> None:
    exp_id, ids = four_runs
    found = MlflowClient().search_runs([exp_id], filter_string)
    assert {r.info.run_name for r in found} == expected
    assert all(ids[r.info.run_name] == r.info.run_id for r in found)


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.m DESC"], ["a", "c", "b", "d"]),  # runs without the key sort last, both ways
        (["metrics.m ASC"], ["b", "c", "a", "d"]),
        (["metrics.m"], ["b", "c", "a", "d"]),
        (["params.p DESC", "metrics.m ASC"], ["b", "c", "a", "d"]),
        (["tags.team ASC", "attributes.start_time DESC"], ["b", "c", "a", "d"]),
        (["attributes.start_time ASC"], ["a", "b", "c", "d"]),
        ([], ["d", "c", "b", "a"]),  # MLflow's default: start_time DESC
        (["attributes.run_name DESC"], ["d", "c", "b", "a"]),
    ],
)
def test_search_runs_order_by(
    four_runs: tuple[str, dict[str, str]], order_by: list[str], expected: list[str]
) -> None:
    exp_id, _ = four_runs
    found = MlflowClient().search_runs([exp_id], order_by=order_by)
    assert [r.info.run_name for r in found] == expected


def test_search_runs_pages(four_runs: tuple[str, dict[str, str]]) -> None:
    exp_id, _ = four_runs
    client = MlflowClient()
    first = client.search_runs([exp_id], max_results=3, order_by=["attributes.start_time ASC"])
    assert [r.info.run_name for r in first] == ["a", "b", "c"] and first.token
    rest = client.search_runs(
        [exp_id], max_results=3, order_by=["attributes.start_time ASC"], page_token=first.token
    )
    assert [r.info.run_name for r in rest] == ["d"] and not rest.token
    # The fluent helper pages on its own and returns entities with output_format="list".
    runs = mlflow.search_runs([exp_id], filter_string="params.p = 'x'", output_format="list")
    assert sorted(r.info.run_name for r in runs) == ["a", "c"]


def test_search_experiments(mlflow_uri: str) -> None:
    client = MlflowClient()
    prefix = f"sx-{uuid.uuid4().hex[:8]}"
    ids = {
        name: client.create_experiment(f"{prefix}-{name}", tags={"kind": kind})
        for name, kind in [("alpha", "cv"), ("beta", "nlp"), ("gamma", "cv")]
    }
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [e.name for e in found] == [f"{prefix}-gamma", f"{prefix}-beta", f"{prefix}-alpha"]
    assert found[0].tags == {"kind": "cv"} and found[0].experiment_id == ids["gamma"]
    assert found[0].artifact_location == f"mlflow-artifacts:/{ids['gamma']}"
    cv = client.search_experiments(filter_string=f"name LIKE '{prefix}%' AND tags.kind = 'cv'")
    assert {e.name for e in cv} == {f"{prefix}-alpha", f"{prefix}-gamma"}

    client.delete_experiment(ids["beta"])
    assert client.get_experiment(ids["beta"]).lifecycle_stage == "deleted"
    active = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    deleted = client.search_experiments(
        view_type=ViewType.DELETED_ONLY, filter_string=f"name LIKE '{prefix}%'"
    )
    assert {e.name for e in active} == {f"{prefix}-alpha", f"{prefix}-gamma"}
    assert [e.name for e in deleted] == [f"{prefix}-beta"]
    assert client.get_experiment_by_name(f"{prefix}-alpha").experiment_id == ids["alpha"]  # type: ignore[union-attr]
    assert client.get_experiment_by_name(f"{prefix}-nope") is None


# ---- inputs and nesting ----------------------------------------------------------------------


def test_log_input_dataset_comes_back_on_the_run(mlflow_uri: str) -> None:
    import pandas as pd

    exp_id = _experiment()
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.5, 0.25, 0.125]})
    dataset = mlflow.data.from_pandas(df, name="train-frame", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"split": "a"})
    got = MlflowClient().get_run(run.info.run_id)
    [di] = got.inputs.dataset_inputs
    assert di.dataset.name == "train-frame"
    assert di.dataset.digest == dataset.digest
    expected = dataset._to_mlflow_entity()
    assert (di.dataset.source_type, di.dataset.source) == (expected.source_type, expected.source)
    assert (di.dataset.schema, di.dataset.profile) == (expected.schema, expected.profile)
    assert di.dataset.source_type == "code" and '"num_rows": 3' in di.dataset.profile
    assert {t.key: t.value for t in di.tags} == {"mlflow.data.context": "training", "split": "a"}
    found = MlflowClient().search_runs([exp_id], "datasets.name = 'train-frame'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert found[0].inputs.dataset_inputs[0].dataset.digest == dataset.digest


def test_rename_run_tags_and_experiment_tags(mlflow_uri: str) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run_id = client.create_run(exp_id, run_name="before").info.run_id
    client.update_run(run_id, name="after")
    got = client.get_run(run_id)
    assert (got.info.run_name, got.data.tags["mlflow.runName"]) == ("after", "after")
    client.set_tag(run_id, "mlflow.runName", "third")  # MLflow keeps the two in step both ways
    assert client.get_run(run_id).info.run_name == "third"
    client.set_tag(run_id, "doomed", "x")
    client.delete_tag(run_id, "doomed")
    assert "doomed" not in client.get_run(run_id).data.tags
    with pytest.raises(MlflowException) as e:
        client.delete_tag(run_id, "doomed")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    mlflow.set_experiment_tags({"owner": "ml-team", "purpose": "e2e"})
    assert client.get_experiment(exp_id).tags == {"owner": "ml-team", "purpose": "e2e"}


def test_nested_runs_carry_the_parent_tag(mlflow_uri: str) -> None:
    exp_id = _experiment()
    with mlflow.start_run() as parent:
        with mlflow.start_run(nested=True) as child:
            mlflow.log_metric("x", 1.0)
        with mlflow.start_run(nested=True) as child2:
            pass
    client = MlflowClient()
    assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert "mlflow.parentRunId" not in client.get_run(parent.info.run_id).data.tags
    found = client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert {r.info.run_id for r in found} == {child.info.run_id, child2.info.run_id}
    assert client.get_run(child.info.run_id).info.status == "FINISHED"


# ---- artifacts -------------------------------------------------------------------------------


@pytest.fixture
def artifact_run(mlflow_uri: str, tmp_path: Path) -> tuple[str, Path]:
    """A run with a file, a nested folder and a text artifact; returns its ID and the local source."""
    _experiment()
    src = tmp_path / "src"
    (src / "folder" / "deep").mkdir(parents=True)
    (src / "model.bin").write_bytes(os.urandom(300_000))
    (src / "folder" / "a.txt").write_text("alpha\n")
    (src / "folder" / "empty.dat").write_bytes(b"")
    (src / "folder" / "deep" / "b.bin").write_bytes(bytes(range(256)) * 40)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src / "model.bin"))
        mlflow.log_artifact(str(src / "folder" / "a.txt"), artifact_path="single")
        mlflow.log_artifacts(str(src / "folder"), artifact_path="folder")
        mlflow.log_text("héllo wörld\n", "notes/readme.txt")
    return run.info.run_id, src


def test_list_artifacts_root_and_subfolders(artifact_run: tuple[str, Path]) -> None:
    run_id, _ = artifact_run
    client = MlflowClient()
    root = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    assert root == {
        ("model.bin", False, 300_000),
        ("single", True, None),
        ("folder", True, None),
        ("notes", True, None),
    }
    folder = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "folder")}
    assert folder == {("folder/a.txt", False, 6), ("folder/empty.dat", False, 0), ("folder/deep", True, None)}
    deep = client.list_artifacts(run_id, "folder/deep")
    assert [(f.path, f.file_size) for f in deep] == [("folder/deep/b.bin", 10_240)]
    assert client.list_artifacts(run_id, "model.bin") == []  # a file lists as nothing, as in MLflow
    assert client.list_artifacts(run_id, "no-such-folder") == []


def test_download_artifacts_file_and_folder_byte_exact(
    artifact_run: tuple[str, Path], tmp_path: Path
) -> None:
    run_id, src = artifact_run
    client = MlflowClient()
    f = Path(client.download_artifacts(run_id, "model.bin", str(tmp_path)))
    assert f.name == "model.bin" and _sha(f) == _sha(src / "model.bin")

    out = tmp_path / "folder-out"
    out.mkdir()
    d = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="folder", dst_path=str(out)))
    assert _tree(d) == _tree(src / "folder")

    everything = tmp_path / "all"
    everything.mkdir()
    root = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(everything)))
    assert set(_tree(root)) == {
        "model.bin",
        "single/a.txt",
        "folder/a.txt",
        "folder/empty.dat",
        "folder/deep/b.bin",
        "notes/readme.txt",
    }
    assert (root / "notes" / "readme.txt").read_text(encoding="utf-8") == "héllo wörld\n"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.txt") == "héllo wörld\n"


def test_artifact_names_with_spaces_and_unicode(mlflow_uri: str, tmp_path: Path) -> None:
    _experiment()
    name = "a b+c&ü=1 (final).txt"
    (tmp_path / name).write_text("odd name", encoding="utf-8")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / name), artifact_path="dir with space")
    client = MlflowClient()
    listed = client.list_artifacts(run.info.run_id, "dir with space")
    assert [(f.path, f.file_size) for f in listed] == [(f"dir with space/{name}", 8)]
    out = tmp_path / "out"
    out.mkdir()
    got = Path(client.download_artifacts(run.info.run_id, f"dir with space/{name}", str(out)))
    assert got.read_text(encoding="utf-8") == "odd name"
    with pytest.raises(MlflowException) as e:
        client.download_artifacts(run.info.run_id, "dir with space/missing.txt", str(out))
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_multipart_upload_through_the_server(
    mlflow_uri: str, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(4 * 1024**2))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(1024**2))
    creates: list[Any] = []
    real_create = HttpArtifactRepository.create_multipart_upload

    def spy(self: HttpArtifactRepository, *args: Any, **kwargs: Any) -> Any:
        response = real_create(self, *args, **kwargs)
        creates.append(response)
        return response

    monkeypatch.setattr(HttpArtifactRepository, "create_multipart_upload", spy)
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(5 * 1024**2 + 12_345))
    small = tmp_path / "small.txt"
    small.write_text("below the multipart threshold")
    _experiment()
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), artifact_path="ckpt")
        mlflow.log_artifact(str(small))

    [create] = creates  # only the big file went multipart
    assert len(create.credentials) == 6
    assert [c.part_number for c in create.credentials] == [1, 2, 3, 4, 5, 6]
    assert all(c.url.startswith(f"{server.url}/api/2.0/loopline/uploads/") for c in create.credentials)
    back = Path(MlflowClient().download_artifacts(run.info.run_id, "ckpt/weights.bin", str(tmp_path / "dl")))
    assert back.stat().st_size == big.stat().st_size and _sha(back) == _sha(big)
    listed = MlflowClient().list_artifacts(run.info.run_id, "ckpt")
    assert [(f.path, f.file_size) for f in listed] == [("ckpt/weights.bin", big.stat().st_size)]
    # The upload's staging folder is gone once it completed.
    status = httpx.get(f"{server.url}/api/2.0/loopline/uploads/{create.upload_id}")
    assert status.status_code == 404


def _interrupted(data: bytes) -> Iterator[bytes]:
    yield data[: len(data) // 2]
    raise ConnectionAbortedError("the network went away mid-part")


def test_multipart_upload_resumes_by_resending_missing_parts(server: RunningServer) -> None:
    payload = os.urandom(3 * 256 * 1024 + 777)
    size = 256 * 1024
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
    # As in MLflow: the URL names the destination folder, "path" the client's local file.
    folder = f"0/{uuid.uuid4().hex}/artifacts/ckpt"
    body = {"path": "/home/me/resumed.bin"}
    path = f"{folder}/resumed.bin"
    uploads = "/api/2.0/loopline/uploads"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post(f"{ARTIFACTS}/mpu/create/{folder}", json={**body, "num_parts": len(chunks)})
        assert r.status_code == 200, r.text
        upload_id = r.json()["upload_id"]
        urls = {c["part_number"]: c["url"] for c in r.json()["credentials"]}
        assert sorted(urls) == [1, 2, 3, 4]

        etags = {}
        for n in (1, 3, 4):
            put = http.put(urls[n], content=chunks[n - 1])
            assert put.status_code == 200, put.text
            etags[n] = put.headers["ETag"]
        with pytest.raises(ConnectionAbortedError):  # part 2 breaks off halfway
            http.put(urls[2], content=_interrupted(chunks[1]))

        status = http.get(f"{uploads}/{upload_id}")
        assert status.json() == {"upload_id": upload_id, "path": path, "parts": [1, 3, 4]}
        complete = {**body, "upload_id": upload_id, "parts": [{"part_number": n} for n in (1, 2, 3, 4)]}
        incomplete = http.post(f"{ARTIFACTS}/mpu/complete/{folder}", json=complete)
        assert incomplete.status_code == 400
        assert incomplete.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "[2]" in incomplete.json()["message"]
        assert http.get(f"{ARTIFACTS}/artifacts/{path}").status_code == 404  # nothing half-written
        elsewhere = http.post(f"{ARTIFACTS}/mpu/complete/{folder}/x", json=complete)
        assert elsewhere.status_code == 400  # an upload completes where it was created, nowhere else

        assert http.put(urls[2], content=chunks[1]).status_code == 200  # re-send only the missing part
        assert http.get(f"{uploads}/{upload_id}").json()["parts"] == [1, 2, 3, 4]
        done = http.post(f"{ARTIFACTS}/mpu/complete/{folder}", json=complete)
        assert done.status_code == 200, done.text
        assert http.get(f"{ARTIFACTS}/artifacts/{path}").content == payload
        listed = http.get(f"{ARTIFACTS}/artifacts", params={"path": folder}).json()
        assert listed == {"files": [{"path": "resumed.bin", "is_dir": False, "file_size": len(payload)}]}
        assert http.get(f"{uploads}/{upload_id}").status_code == 404

        # An aborted upload leaves nothing behind.
        other = http.post(f"{ARTIFACTS}/mpu/create/{folder}", json={"path": "other.bin", "num_parts": 1})
        other_id = other.json()["upload_id"]
        assert http.put(other.json()["credentials"][0]["url"], content=b"x").status_code == 200
        aborted = http.post(
            f"{ARTIFACTS}/mpu/abort/{folder}", json={"path": "other.bin", "upload_id": other_id}
        )
        assert aborted.status_code == 200
        assert http.get(f"{uploads}/{other_id}").status_code == 404
        assert http.get(f"{ARTIFACTS}/artifacts/{folder}/other.bin").status_code == 404
    assert list(server.artifacts.rglob(".part-*")) == []  # the broken part's temporary file is gone


# ---- errors in MLflow's shape ----------------------------------------------------------------


@pytest.fixture(scope="module")
def live_run(server: RunningServer) -> str:
    r = httpx.post(server.url + API + "/runs/create", json={"experiment_id": "0", "start_time": 1})
    run_id: str = r.json()["run"]["info"]["run_id"]
    httpx.post(server.url + API + "/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"})
    return run_id


def _metric(i: int = 0) -> dict[str, Any]:
    return {"key": f"m{i}", "value": 1.0, "timestamp": 1, "step": 0}


_MISSING = "0" * 32
_ERRORS: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
    ("GET", "/runs/get", {"run_id": _MISSING}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("POST", "/runs/log-metric", {"run_id": _MISSING, **_metric()}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("POST", "/runs/update", {"run_id": _MISSING, "status": "FINISHED"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("POST", "/runs/delete", {"run_id": _MISSING}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("GET", "/metrics/get-history", {"run_id": _MISSING, "metric_key": "m"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("GET", "/experiments/get", {"experiment_id": "987654321"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("GET", "/experiments/get-by-name", {"experiment_name": "no such thing"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("POST", "/runs/create", {"experiment_id": "987654321"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    (
        "POST",
        "/runs/log-parameter",
        {"run_id": "$RUN", "key": "lr", "value": "0.2"},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "POST",
        "/runs/log-metric",
        {"run_id": "$RUN", **_metric(), "value": "abc"},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "POST",
        "/runs/log-metric",
        {"run_id": "$RUN", **_metric(), "step": "x"},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "POST",
        "/runs/log-metric",
        {"run_id": "$RUN", **_metric(), "timestamp": 2**70},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    ("POST", "/runs/log-metric", {"run_id": "$RUN", "key": "m", "value": 1}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/runs/log-metric", {"run_id": 42, **_metric()}, 400, "INVALID_PARAMETER_VALUE"),
    (
        "POST",
        "/runs/log-batch",
        {"run_id": "$RUN", "metrics": [_metric(i) for i in range(1001)]},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "POST",
        "/runs/log-batch",
        {"run_id": "$RUN", "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "POST",
        "/runs/log-batch",
        {"run_id": "$RUN", "tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "POST",
        "/runs/log-batch",
        {
            "run_id": "$RUN",
            "metrics": [_metric(i) for i in range(900)],
            "params": [{"key": f"q{i}", "value": "v"} for i in range(60)],
            "tags": [{"key": f"u{i}", "value": "v"} for i in range(60)],
        },
        400,
        "INVALID_PARAMETER_VALUE",
    ),  # 1,020 entities
    ("POST", "/runs/log-batch", {"run_id": "$RUN", "metrics": {"key": "m"}}, 400, "INVALID_PARAMETER_VALUE"),
    (
        "POST",
        "/runs/log-batch",
        {"run_id": "$RUN", "metrics": [{"key": "m", "value": [], "timestamp": 1}]},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    ("POST", "/runs/search", {"filter": "metrics.acc >>> 1"}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/runs/search", {"filter": "params.p = 1"}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/runs/search", {"order_by": ["bogus.x"]}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/runs/search", {"max_results": 50_001}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/runs/search", {"experiment_ids": [{}]}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/runs/update", {"run_id": "$RUN", "status": "DONE"}, 400, "INVALID_PARAMETER_VALUE"),
    (
        "GET",
        "/metrics/get-history",
        {"run_id": "$RUN", "metric_key": "m", "max_results": "0"},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "GET",
        "/metrics/get-history",
        {"run_id": "$RUN", "metric_key": "m", "page_token": "garbage"},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    ("GET", "/metrics/get-history", {"run_id": "$RUN"}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/experiments/create", {"name": ""}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/experiments/create", {"name": "nul\x00byte"}, 400, "INVALID_PARAMETER_VALUE"),
    (
        "POST",
        "/runs/set-tag",
        {"run_id": "$RUN", "key": "t", "value": "nul\x00"},
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    ("POST", "/experiments/create", {"name": "Default"}, 400, "RESOURCE_ALREADY_EXISTS"),
    ("POST", "/experiments/search", {"view_type": "SOME"}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/no/such/route", {}, 404, "ENDPOINT_NOT_FOUND"),
]


@pytest.mark.parametrize(("method", "route", "body", "status", "code"), _ERRORS)
def test_errors_have_mlflow_shape(
    server: RunningServer,
    live_run: str,
    method: str,
    route: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    body = {k: live_run if v == "$RUN" else v for k, v in (body or {}).items()}
    if method == "GET":
        r = httpx.get(server.url + API + route, params=body)
    else:
        r = httpx.post(server.url + API + route, json=body)
    assert (r.status_code, r.json()["error_code"]) == (status, code), r.text
    assert set(r.json()) == {"error_code", "message"} and r.json()["message"]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'{"run_id": ', b"\xff\xfe", b'"just a string"', b"NaN"],
)
def test_malformed_json_is_400(server: RunningServer, raw: bytes) -> None:
    r = httpx.post(
        server.url + API + "/runs/log-metric", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert set(r.json()) == {"error_code", "message"}


def test_params_are_immutable_but_relogging_the_same_value_is_fine(mlflow_uri: str) -> None:
    exp_id = _experiment()
    client = MlflowClient()
    run_id = client.create_run(exp_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "lr", "0.2")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "0.1" in e.value.message and "0.2" in e.value.message
    assert client.get_run(run_id).data.params == {"lr": "0.1"}


def test_the_mlflow_client_raises_mlflow_exceptions_with_the_error_code(mlflow_uri: str) -> None:
    client = MlflowClient()
    exp_id = _experiment()
    cases = [
        (lambda: client.get_run(uuid.uuid4().hex), "RESOURCE_DOES_NOT_EXIST"),
        (lambda: client.get_experiment("987654321"), "RESOURCE_DOES_NOT_EXIST"),
        (lambda: client.create_experiment(client.get_experiment(exp_id).name), "RESOURCE_ALREADY_EXISTS"),
        (lambda: client.search_runs([exp_id], "metrics.acc >>> 1"), "INVALID_PARAMETER_VALUE"),
        (lambda: client.search_runs([exp_id], order_by=["nope.x"]), "INVALID_PARAMETER_VALUE"),
        (lambda: client.log_metric(uuid.uuid4().hex, "m", 1.0), "RESOURCE_DOES_NOT_EXIST"),
        (lambda: client.get_metric_history(uuid.uuid4().hex, "m"), "RESOURCE_DOES_NOT_EXIST"),
    ]
    for call, code in cases:
        with pytest.raises(MlflowException) as e:
            call()
        assert e.value.error_code == code, e.value.message
    with pytest.raises(MlflowException) as e:
        client.log_metric(client.create_run(exp_id).info.run_id, "bad key!", 1.0)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


# ---- artifact path traversal -----------------------------------------------------------------


def _raw(
    server: RunningServer, method: str, target: str, body: bytes | None = None, content_type: str = ""
) -> tuple[int, bytes]:
    """Send ``target`` exactly as written: httpx would normalise the dot segments away."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(
            method, target, body=body, headers={"Content-Type": content_type} if content_type else {}
        )
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _escapes(server: RunningServer, name: str) -> list[str]:
    """Paths that would land ``name`` in the server's folder (outside the artifact root) if obeyed."""
    up = "/".join([".."] * (len(server.artifacts.relative_to(server.home).parts) + 3))
    enc = up.replace(".", "%2E")
    return [
        f"1/%2E%2E/%2E%2E/etc/{name}",  # the classic, fully percent-encoded
        f"1/{enc}/{name}",
        f"1/{up}/{name}",  # raw dot segments
        f"1/{up.replace('/', '%2F')}%2F{name}",  # ..%2F
        f"{up}/{name}",
        f"1/..%5C..%5C{name}",  # backslashes
        f"%2F{server.home.as_posix().lstrip('/')}/{name}",  # absolute
        f"1/%00/{name}",
    ]


def test_artifact_path_traversal_is_refused(server: RunningServer) -> None:
    name = f"escaped-{uuid.uuid4().hex[:8]}"
    for path in _escapes(server, name):
        status, body = _raw(server, "PUT", f"{ARTIFACTS}/artifacts/{path}", b"owned")
        assert status == 400, (path, body)
        assert b'"error_code":"INVALID_PARAMETER_VALUE"' in body
        for method in ("GET", "DELETE"):
            assert _raw(server, method, f"{ARTIFACTS}/artifacts/{path}")[0] == 400, (method, path)
        assert (
            _raw(server, "POST", f"{ARTIFACTS}/mpu/create/{path}", b'{"path": "f", "num_parts": 1}', JSON)[0]
            == 400
        ), path
    assert not [p for p in server.home.parent.rglob(f"*{name}*")]  # nothing written anywhere

    # Reading the server's own database through the artifact route must not work either.
    up = "/".join([".."] * 2)  # refs/ → artifacts/ → the server's folder
    for target in (
        f"{ARTIFACTS}/artifacts/{up}/server.db",
        f"{ARTIFACTS}/artifacts/{up.replace('.', '%2E')}/server.db",
    ):
        status, body = _raw(server, "GET", target)
        assert status == 400 and b"SQLite format" not in body

    for query in ("../x", "1/../../x", "..%2F..%2Fserver.db", "%2E%2E", "a/./b", "a\\..\\b"):
        status, body = _raw(server, "GET", f"{ARTIFACTS}/artifacts?path={query}")
        assert status == 400, (query, body)


# ---- fuzzing the JSON routes (in-process) ----------------------------------------------------


Post = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Post, str]]:
    """The server app in this process (fast for fuzzing) and one live run to aim at.

    Requests go through httpx's ASGI transport on an event loop in a helper thread.
    """
    from anyio.from_thread import start_blocking_portal

    from loopline.config import Settings
    from loopline.server import create_app

    home = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        Settings.from_env({}, tracking_uri=f"sqlite:///{home / 'fuzz.db'}", artifacts_uri=str(home / "a"))
    )
    # raise_app_exceptions=False: a crash comes back as the 500 a real client would see.
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    with start_blocking_portal() as portal:
        client = httpx.AsyncClient(transport=transport, base_url="http://loopline")

        def post(path: str, **kwargs: Any) -> httpx.Response:
            return portal.call(functools.partial(client.post, path, **kwargs))

        run_id = post(API + "/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
        yield post, run_id
        portal.call(client.aclose)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.sampled_from(["NaN", "Infinity", "-Infinity", "0", "-1", "1e5", "RUNNING", "ALL", "metrics.m > 1"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=12,
)
_entity = st.fixed_dictionaries(
    {}, optional={"key": st.one_of(_text, _json), "value": _json, "timestamp": _json, "step": _json}
)
_dataset = st.fixed_dictionaries(
    {},
    optional={
        "dataset": _json
        | st.fixed_dictionaries(
            {}, optional={k: _json for k in ("name", "digest", "source_type", "source", "schema", "profile")}
        ),
        "tags": _json | st.lists(_entity, max_size=2),
    },
)
# The main routes of the MLflow client, with the fields each reads; the rest of a body is noise.
_FIELDS = {
    "/runs/create": ["experiment_id", "user_id", "start_time", "tags", "run_name"],
    "/runs/log-batch": ["run_id", "metrics", "params", "tags"],
    "/runs/search": ["experiment_ids", "filter", "run_view_type", "max_results", "order_by", "page_token"],
    "/experiments/create": ["name", "artifact_location", "tags"],
    "/runs/update": ["run_id", "run_uuid", "status", "end_time", "run_name"],
    "/runs/log-metric": ["run_id", "run_uuid", "key", "value", "timestamp", "step"],
    "/runs/log-parameter": ["run_id", "key", "value"],
    "/runs/set-tag": ["run_id", "key", "value"],
    "/runs/log-inputs": ["run_id", "datasets"],
    "/experiments/search": ["view_type", "max_results", "filter", "order_by", "page_token"],
    "/logged-models/search": ["experiment_ids", "filter", "max_results", "order_by", "page_token"],
}


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    route = draw(st.sampled_from(sorted(_FIELDS)))
    fields = _FIELDS[route]
    value = st.one_of(_json, st.lists(_entity | _dataset, max_size=3), st.just("$RUN"))
    body = draw(st.dictionaries(st.sampled_from([*fields, "junk"]), value, max_size=len(fields)))
    return route, body


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_bodies())
def test_fuzzed_bodies_never_cause_a_server_error(
    app_client: tuple[Post, str], case: tuple[str, dict[str, Any]]
) -> None:
    post, run_id = app_client
    route, body = case
    body = {k: run_id if v == "$RUN" else v for k, v in body.items()}
    r = post(API + route, json=body)
    assert r.status_code < 500, (route, body, r.text)
    if r.status_code != 200:
        assert set(r.json()) == {"error_code", "message"}, r.text


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=64) | _json.map(lambda v: json.dumps(v).encode()))
def test_fuzzed_raw_bytes_never_cause_a_server_error(app_client: tuple[Post, str], raw: bytes) -> None:
    post, _ = app_client
    for route in ("/runs/log-batch", "/runs/search"):
        r = post(API + route, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code < 500, (route, raw, r.text)


def test_runstatus_enum_numbers_are_accepted(server: RunningServer) -> None:
    """protobuf's JSON mapping accepts an enum's number as well as its name, so MLflow's server does."""
    run = httpx.post(server.url + API + "/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
    r = httpx.post(server.url + API + "/runs/update", json={"run_id": run["run_id"], "status": 3})
    assert r.status_code == 200 and r.json()["run_info"]["status"] == RunStatus.to_string(RunStatus.FINISHED)
