"""What MLflow's own REST test suite taught us (issue 17), checked with our own data: the unmodified
``mlflow`` client or plain HTTP against a real ``loopline server``.

Two servers: the shared one of conftest (artifacts served through the server, the default) and one
started with MLflow's ``--no-serve-artifacts``, where clients write straight to the artifact root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelInput, LoggedModelOutput
from mlflow.exceptions import MlflowException
from support import serve_loopline

from .conftest import RunningServer

pytestmark = pytest.mark.e2e

API = "/api/2.0/mlflow"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + API + path, json=body, timeout=30)


def _run(client: MlflowClient) -> tuple[str, str]:
    exp_id = client.create_experiment(_name("compat"))
    return exp_id, client.create_run(exp_id).info.run_id


@pytest.fixture
def client(mlflow_uri: str) -> MlflowClient:
    return MlflowClient(mlflow_uri)


@pytest.fixture(scope="module")
def direct_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``loopline server --no-serve-artifacts --default-artifact-root file://…``."""
    home = tmp_path_factory.mktemp("direct")
    root = home / "root"
    args = ["--store-uri", f"sqlite:///{home / 'server.db'}", "--no-serve-artifacts"]
    with serve_loopline(home, args=[*args, "--default-artifact-root", root.as_uri()], check_log=True) as url:
        yield RunningServer(url, home, root, home / "server.log")


# ---- MLflow's wording for arguments of the wrong type -------------------------------------------


def test_wrong_typed_arguments_are_worded_as_mlflow_words_them(server: RunningServer) -> None:
    exp_id = _post(server.url, "/experiments/create", {"name": _name("wording")}).json()["experiment_id"]
    run_id = _post(server.url, "/runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]

    two_points = [{"key": "a", "value": 1.0, "timestamp": 5}, {"key": "b", "value": 2.0}]
    cases = [
        ("/runs/log-metric", {"run_id": 7, "key": "m", "value": 1, "timestamp": 1}, "7", "run_id"),
        ("/runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1, "step": "two"},
         '"two"', "step"),
        ("/runs/set-tag", {"run_id": run_id, "key": "k", "value": 3.5}, "3.5", "value"),
        ("/runs/log-batch", {"run_id": run_id, "params": "abc"}, '"abc"', "params"),
        ("/experiments/create", {"name": _name("x"), "tags": {"k": "v"}}, '{"k":"v"}', "tags"),
        ("/runs/search", {"experiment_ids": [exp_id], "max_results": 77777777}, "77777777", "max_results"),
    ]  # fmt: skip
    for path, body, shown, field in cases:
        r = _post(server.url, path, body)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert f"Invalid value {shown} for parameter '{field}' supplied" in r.json()["message"], r.text
    r = _post(server.url, "/runs/log-batch", {"run_id": run_id, "metrics": two_points})
    assert "Missing value for required parameter 'metrics[1].timestamp'" in r.json()["message"]


# ---- experiments -----------------------------------------------------------------------------------


def test_an_experiment_tag_can_be_deleted(client: MlflowClient) -> None:
    exp_id = client.create_experiment(_name("tags"), tags={"owner": "ana", "team": "vision"})
    client.delete_experiment_tag(exp_id, "owner")
    assert client.get_experiment(exp_id).tags == {"team": "vision"}
    with pytest.raises(MlflowException, match="No tag with name: owner") as e:
        client.delete_experiment_tag(exp_id, "owner")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_relative_artifact_location_is_made_absolute(client: MlflowClient, server: RunningServer) -> None:
    exp_id = client.create_experiment(_name("rel"), artifact_location="shelf/models")
    location = client.get_experiment(exp_id).artifact_location
    assert location == str(server.home / "shelf" / "models")  # the server runs in its home folder


# ---- registry: a run of another tracking server --------------------------------------------------


def test_a_version_from_an_unknown_run_is_registered_and_its_lineage_marked_external(
    client: MlflowClient, server: RunningServer
) -> None:
    name = _name("shared-registry")
    client.create_registered_model(name)
    elsewhere = uuid.uuid4().hex  # a run that only another tracking server knows
    mv = client.create_model_version(name, f"runs:/{elsewhere}/clf", run_id=elsewhere)
    assert (mv.version, mv.run_id, mv.source) == ("1", elsewhere, f"runs:/{elsewhere}/clf")

    _, local_run = _run(client)
    client.create_model_version(name, f"runs:/{local_run}/clf", run_id=local_run)

    def edges(run_id: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{server.url}/api/2.0/loopline/lineage/downstream", params={"uri": f"runs:/{run_id}"})
        return [e for e in r.json()["edges"] if e["relation"] == "produced"]

    assert [(e["to_uri"], e["external"]) for e in edges(elsewhere)] == [(f"models:/{name}/1", True)]
    assert [(e["to_uri"], e["external"]) for e in edges(local_run)] == [(f"models:/{name}/2", False)]

    env = {**os.environ, "LOOPLINE_TRACKING_URI": f"sqlite:///{server.home / 'server.db'}"}
    cli = [sys.executable, "-m", "loopline.cli", "lineage", f"runs:/{elsewhere}"]
    shown = subprocess.run([*cli, "--format", "json"], env=env, capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout) == [
        {"from": f"runs:/{elsewhere}", "to": f"models:/{name}/1", "relation": "produced", "resolved": False}
    ]
    tree = subprocess.run(cli, env={**env, "COLUMNS": "200"}, capture_output=True, text=True, check=True)
    assert "not in this store" in tree.stdout


# ---- registry: local sources (MLflow's rule) ------------------------------------------------------


def test_a_local_source_must_lie_in_the_artifact_folder_of_the_named_run(
    direct_server: RunningServer,
) -> None:
    client = MlflowClient(direct_server.url)
    name = _name("local-src")
    client.create_registered_model(name)
    _, run_id = _run(client)
    run_dir = client.get_run(run_id).info.artifact_uri
    assert run_dir.startswith(direct_server.artifacts.as_uri())

    ok = [run_dir, run_dir.removeprefix("file://") + "/weights", f"{run_dir}/weights/.."]
    for source in ok:
        body = {"name": name, "source": source, "run_id": run_id}
        assert _post(direct_server.url, "/model-versions/create", body).status_code == 200
    refused = [
        {"source": run_dir},  # no run named
        {"source": str(direct_server.home), "run_id": run_id},  # outside the run's folder
        {"source": f"{run_dir}/../../other-run", "run_id": run_id},
    ]
    for body in refused:
        r = _post(direct_server.url, "/model-versions/create", {"name": name, **body})
        assert r.status_code == 400, body
        assert "To use a local path as a model version source" in r.json()["message"]
    # A file URI on another host: bad input (MLflow answers 500 here).
    remote = {"name": name, "source": "file://fileserver/share/m", "run_id": run_id}
    r = _post(direct_server.url, "/model-versions/create", remote)
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "is not a valid remote uri" in r.json()["message"]


def test_with_artifact_serving_a_local_source_is_refused(client: MlflowClient, server: RunningServer) -> None:
    name = _name("served")
    client.create_registered_model(name)
    _, run_id = _run(client)
    body = {"name": name, "source": str(server.artifacts), "run_id": run_id}
    r = _post(server.url, "/model-versions/create", body)
    assert r.status_code == 400
    assert "To use a local path as a model version source" in r.json()["message"]


# ---- logged models ---------------------------------------------------------------------------------


def test_a_metric_logged_with_a_model_id_lands_on_the_model_and_search_finds_it_by_dataset(
    client: MlflowClient,
) -> None:
    exp_id, run_id = _run(client)
    scored, other = client.create_logged_model(exp_id), client.create_logged_model(exp_id)
    client.log_metric(
        run_id, "auc", 0.91, timestamp=1_700_000, step=3,
        model_id=scored.model_id, dataset_name="holdout", dataset_digest="d41d8cd9",
    )  # fmt: skip
    (metric,) = client.get_logged_model(scored.model_id).metrics
    assert (metric.key, metric.value, metric.step, metric.timestamp) == ("auc", 0.91, 3, 1_700_000)
    assert (metric.run_id, metric.dataset_name, metric.dataset_digest) == (run_id, "holdout", "d41d8cd9")
    assert client.get_run(run_id).data.metrics == {"auc": 0.91}  # still a point of the run, too

    def found(datasets: list[dict[str, str]]) -> list[str]:
        return [m.model_id for m in client.search_logged_models(experiment_ids=[exp_id], datasets=datasets)]

    assert found([{"dataset_name": "holdout"}]) == [scored.model_id]
    assert found([{"dataset_name": "holdout", "dataset_digest": "d41d8cd9"}]) == [scored.model_id]
    assert found([{"dataset_name": "holdout", "dataset_digest": "00000000"}]) == []
    assert set(found([])) == {scored.model_id, other.model_id}


def test_a_runs_model_outputs_and_model_inputs_are_kept(client: MlflowClient) -> None:
    exp_id, run_id = _run(client)
    produced, used = client.create_logged_model(exp_id), client.create_logged_model(exp_id)
    client.log_outputs(run_id, [LoggedModelOutput(produced.model_id, 12)])
    client.log_inputs(run_id, models=[LoggedModelInput(used.model_id)])
    run = client.get_run(run_id)
    assert run.outputs.model_outputs == [LoggedModelOutput(produced.model_id, 12)]
    assert [m.model_id for m in run.inputs.model_inputs] == [used.model_id]
    with pytest.raises(MlflowException, match="not found"):
        client.log_inputs(run_id, models=[LoggedModelInput("m-" + "0" * 32)])


def test_deleting_a_logged_model_tag_that_is_not_there_raises(client: MlflowClient) -> None:
    exp_id, _ = _run(client)
    model = client.create_logged_model(exp_id, tags={"stage": "dev"})
    client.delete_logged_model_tag(model.model_id, "stage")
    with pytest.raises(MlflowException, match="No tag with key 'stage'"):
        client.delete_logged_model_tag(model.model_id, "stage")


def test_a_logged_models_artifacts_are_listed_and_served(
    client: MlflowClient, server: RunningServer, tmp_path: Path
) -> None:
    exp_id, _ = _run(client)
    model = client.create_logged_model(exp_id)
    (tmp_path / "MLmodel").write_text(f"model_id: {model.model_id}\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "predict.py").write_text("print('hi')\n")
    client.log_model_artifacts(model.model_id, str(tmp_path))

    base = f"{server.url}/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts"
    listing = httpx.get(base + "/directories").json()
    assert {(f["path"], f["is_dir"]) for f in listing["files"]} == {("MLmodel", False), ("code", True)}
    inner = httpx.get(base + "/directories", params={"artifact_directory_path": "code"}).json()
    assert [f["path"] for f in inner["files"]] == ["code/predict.py"]
    served = httpx.get(base + "/files", params={"artifact_file_path": "MLmodel"})
    assert served.status_code == 200 and model.model_id in served.text
    bad = httpx.get(base + "/files", params={"artifact_file_path": "../../secret"})
    assert (bad.status_code, bad.json()) == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"},
    )


# ---- run artifacts through the server ---------------------------------------------------------------


def test_run_artifacts_are_listed_and_served_and_paths_cannot_escape(
    client: MlflowClient, server: RunningServer, tmp_path: Path
) -> None:
    _, run_id = _run(client)
    (tmp_path / "notes.txt").write_text("epoch 3 was best")
    client.log_artifact(run_id, str(tmp_path / "notes.txt"), "reports")

    listed = httpx.get(f"{server.url}{API}/artifacts/list", params={"run_id": run_id}).json()
    assert listed["root_uri"] == client.get_run(run_id).info.artifact_uri
    assert listed["files"] == [{"path": "reports", "is_dir": True}]
    inner = httpx.get(
        f"{server.url}{API}/artifacts/list", params={"run_id": run_id, "path": "reports"}
    ).json()
    assert inner["files"] == [{"path": "reports/notes.txt", "is_dir": False, "file_size": 16}]
    got = httpx.get(f"{server.url}/get-artifact", params={"run_id": run_id, "path": "reports/notes.txt"})
    assert got.text == "epoch 3 was best"

    invalid = {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}
    for path, params in [
        (f"{API}/artifacts/list", {"run_id": run_id, "path": "../other"}),
        ("/get-artifact", {"run_id": run_id, "path": "reports/../../x"}),
        ("//model-versions/get-artifact", {"name": "no-such-model", "version": "1", "path": "../x"}),
    ]:
        r = httpx.get(server.url + path, params=params)
        assert (r.status_code, r.json()) == (400, invalid), path


def test_without_artifact_serving_clients_write_to_the_root_and_the_server_reads_only_there(
    direct_server: RunningServer, tmp_path: Path
) -> None:
    client = MlflowClient(direct_server.url)
    exp_id, run_id = _run(client)
    assert client.get_experiment(exp_id).artifact_location == f"{direct_server.artifacts.as_uri()}/{exp_id}"
    assert client.get_experiment("0").artifact_location == f"{direct_server.artifacts.as_uri()}/0"
    (tmp_path / "w.bin").write_bytes(b"\x00\x01")
    client.log_artifact(run_id, str(tmp_path / "w.bin"))
    on_disk = direct_server.artifacts / exp_id / run_id / "artifacts" / "w.bin"
    assert on_disk.read_bytes() == b"\x00\x01"  # written by the client, not through the server

    listed = httpx.get(f"{direct_server.url}{API}/artifacts/list", params={"run_id": run_id}).json()
    assert listed["files"] == [{"path": "w.bin", "is_dir": False, "file_size": 2}]
    # A link the client wrote that leads out of the root is not followed by the server.
    (tmp_path / "outside.txt").write_text("not the server's to serve")
    (on_disk.parent / "leak").symlink_to(tmp_path / "outside.txt")
    leak = httpx.get(f"{direct_server.url}/get-artifact", params={"run_id": run_id, "path": "leak"})
    assert (leak.status_code, leak.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    # Locations outside the root (a client-chosen one) are the client's to read.
    outside = client.create_experiment(_name("own"), artifact_location=str(tmp_path / "own"))
    foreign_run = client.create_run(outside).info.run_id
    r = httpx.get(f"{direct_server.url}{API}/artifacts/list", params={"run_id": foreign_run})
    assert r.status_code == 404


def test_the_proxy_and_direct_root_flags_do_not_combine_ambiguously(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "server", "--store-uri", f"sqlite:///{tmp_path / 'x.db'}",
         "--artifacts-uri", str(tmp_path / "a"), "--default-artifact-root", (tmp_path / "b").as_uri()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "give one" in done.stderr


# ---- what Loopline does not claim -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "area"),
    [
        ("GET", "/api/3.0/mlflow/traces/tr-1", "traces"),
        ("POST", "/graphql", "GraphQL"),
        ("POST", "/api/3.0/mlflow/gateway/secrets/create", "gateway"),
        ("POST", "/api/3.0/mlflow/datasets/create", "evaluation datasets"),
        ("POST", "/api/3.0/mlflow/scorers/register", "scorers"),
        ("POST", "/api/3.0/mlflow/issues/create", "issues"),
        ("GET", "/ajax-api/2.0/mlflow/metrics/get-history-bulk", "web UI"),
    ],
)
def test_unclaimed_mlflow_areas_answer_a_404_that_says_so(
    server: RunningServer, method: str, path: str, area: str
) -> None:
    r = httpx.request(method, server.url + path, json={})
    assert r.status_code == 404
    body = r.json()
    assert body["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "Loopline does not implement" in body["message"] and area in body["message"]
    assert "docs/tracking.md" in body["message"]
