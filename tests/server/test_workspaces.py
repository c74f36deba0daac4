"""A client's LOOPLINE_WORKSPACE reaches the server: each request acts in the workspace it names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import serve_loopline

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
