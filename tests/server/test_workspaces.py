"""A client's LOOPLINE_WORKSPACE reaches the server: each request acts in the workspace it names."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import run_cli, serve_loopline

from loopline.config import Settings
from loopline.data.client import DataClient
from loopline.errors import NotFound
from loopline.tracking import Client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_loopline(tmp_path_factory.mktemp("workspaces")) as url:
        yield url


def _client(url: str, workspace: str) -> Client:
    return Client(Settings(tracking_uri=url, workspace=workspace))


def test_runs_and_datasets_stay_in_the_workspace_that_made_them(server: str, tmp_path: Path) -> None:
    a, b = _client(server, "team-a"), _client(server, "team-b")
    exp = a.create_experiment(f"churn-{uuid.uuid4().hex[:6]}")
    run = a.create_run(exp)
    a.log_metric(run.info.run_id, "auc", 0.9)
    a.flush()
    assert a.get_run(run.info.run_id).data.metrics["auc"] == 0.9
    with pytest.raises(NotFound):
        b.get_run(run.info.run_id)
    assert b.get_experiment_by_name(a.get_experiment(exp).name) is None
    # MLflow's client sends no header: it sees the server's own workspace, not team-a's.
    r = httpx.get(f"{server}/api/2.0/mlflow/runs/get", params={"run_id": run.info.run_id})
    assert r.status_code == 404

    (tmp_path / "f.csv").write_text("x\n1\n")
    added = DataClient(Settings(tracking_uri=server, workspace="team-a")).add(tmp_path / "f.csv", "shared")
    in_b = DataClient(Settings(tracking_uri=server, workspace="team-b"))
    with pytest.raises(NotFound):
        in_b.get_version(added.version.uri)


def test_a_bad_workspace_name_is_a_400_json(server: str) -> None:
    for bad in ("../x", "a b", "x" * 64, "-flag"):
        r = httpx.get(
            f"{server}/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            headers={"Loopline-Workspace": bad},
        )
        assert r.status_code == 400, (bad, r.text)
        assert "workspace name" in r.json()["message"]


def test_one_idempotency_key_in_two_workspaces_makes_two_objects(server: str) -> None:
    key = str(uuid.uuid4())
    made = []
    for ws in ("ws-one", "ws-two"):
        r = httpx.post(
            f"{server}/api/2.0/mlflow/experiments/create",
            json={"name": "same-name"},
            headers={"Loopline-Workspace": ws, "Idempotency-Key": key},
        )
        assert r.status_code == 200, r.text
        assert "idempotency-replayed" not in r.headers
        made.append(r.json()["experiment_id"])
    assert made[0] != made[1]


# ---- the workspaces themselves: routes and `loopline workspaces` --------------------------------

API = "/api/2.0/loopline/workspaces"


def test_workspace_routes_list_create_and_show(server: str) -> None:
    name = f"ws-{uuid.uuid4().hex[:8]}"
    made = httpx.post(f"{server}{API}", json={"name": name, "description": "the churn team"})
    assert made.status_code == 200, made.text
    assert made.json()["workspace"]["name"] == name
    assert made.json()["workspace"]["counts"]["experiments"] == 1  # its Default experiment
    again = httpx.post(f"{server}{API}", json={"name": name})
    assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"  # as MLflow
    listed = httpx.get(f"{server}{API}").json()["workspaces"]
    assert {"name": name, "description": "the churn team"}.items() <= next(
        w for w in listed if w["name"] == name
    ).items()
    assert [w["name"] for w in listed] == sorted(w["name"] for w in listed)

    _client(server, name).create_experiment("e1")  # through the header, as every client does
    shown = httpx.get(f"{server}{API}/{name}").json()["workspace"]
    assert shown["counts"]["experiments"] == 2 and shown["counts"]["runs"] == 0
    missing = httpx.get(f"{server}{API}/nope-{uuid.uuid4().hex[:6]}")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for bad in ("../x", "a b", "x" * 64):
        r = httpx.post(f"{server}{API}", json={"name": bad})
        assert r.status_code == 400 and "workspace name" in r.json()["message"], (bad, r.text)

    doc = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(doc[API]) and "get" in doc[f"{API}/{{name}}"]


def test_cli_workspaces_embedded_and_through_the_server(server: str, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    db = f"sqlite:///{tmp_path / 'local.db'}"
    for where in (server, db):
        made = run_cli(where, tmp_path, "workspaces", "create", name, "-d", "team A", "--format", "json")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["description"] == "team A"
        dup = run_cli(where, tmp_path, "workspaces", "create", name)
        assert dup.returncode != 0 and "exists already" in dup.stderr
        # The global option picks the workspace every command acts in.
        exp = run_cli(where, tmp_path, "-w", name, "experiments", "create", "churn")
        assert exp.returncode == 0, exp.stderr
        shown = json.loads(run_cli(where, tmp_path, "workspaces", "show", name, "--format", "json").stdout)
        assert shown["counts"]["experiments"] == 2
        listed = run_cli(where, tmp_path, "workspaces", "list", "--format", "json")
        assert name in [w["name"] for w in json.loads(listed.stdout)]
        assert name in run_cli(where, tmp_path, "workspaces", "list").stdout  # the table
        other = run_cli(where, tmp_path, "experiments", "list", "--format", "json")
        assert "churn" not in [e["name"] for e in json.loads(other.stdout)]  # not in default
        bad = run_cli(where, tmp_path, "-w", "../up", "experiments", "list")
        assert bad.returncode != 0 and "workspace name" in bad.stderr
        gone = run_cli(where, tmp_path, "workspaces", "show", "nope")
        assert gone.returncode != 0 and "No workspace named 'nope'" in gone.stderr
