"""Loopline's own client and ``Idempotency-Key``: which calls carry one, the same key on every retry of
a call, and a lost answer that ends as one object, against a real server on SQLite and PostgreSQL.

Answers are lost by a TCP proxy between the client and the server (``tcp_proxy.py``): the request
reaches the server, the client sees its connection closed and retries, as after a timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from idempotency_helpers import MLFLOW, Server, add_dataset, new_run, serving
from tcp_proxy import proxy_to

from loopline.config import Settings
from loopline.errors import Conflict
from loopline.protocol.http import RestClient, needs_key
from loopline.registry import RegistryClient
from loopline.tracking import Client

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server(tmp_path: Path, store_uri: str) -> Iterator[Server]:
    with serving(tmp_path / "server", store_uri) as s:
        yield s


def test_which_calls_carry_a_key() -> None:
    assert needs_key("POST", f"{MLFLOW}/runs/create", JSON)
    assert needs_key("POST", "/api/2.0/loopline/data/versions", JSON)
    assert needs_key("DELETE", f"{MLFLOW}/registered-models/delete", JSON)
    assert needs_key(
        "PATCH", f"{MLFLOW}/registered-models/update", {"content-type": "application/json; charset=utf-8"}
    )
    # Reads sent as POST, and the hot logging writes the server makes idempotent itself.
    for route in ("runs/search", "runs/log-batch", "runs/log-metric", "runs/log-parameter", "runs/set-tag"):
        assert not needs_key("POST", f"{MLFLOW}/{route}", JSON), route
    assert not needs_key("POST", "/api/2.0/loopline/data/blobs/missing", JSON)
    assert not needs_key("GET", f"{MLFLOW}/runs/get", JSON)
    assert not needs_key(
        "PUT", "/api/2.0/loopline/data/blobs/ab12", {"Content-Type": "application/octet-stream"}
    )
    assert not needs_key("POST", f"{MLFLOW}/runs/create", None)


def test_the_clients_send_one_key_per_call_that_is_not_safe_to_repeat(server: Server, tmp_path: Path) -> None:
    with proxy_to(server.url) as (url, proxy):
        client = Client(Settings.from_env({}, tracking_uri=url))
        run_id = client.create_run("0", run_name="keyed").info.run_id
        client.log_param(run_id, "lr", 0.1)
        client.log_metric(run_id, "loss", 0.5, step=1)
        client.flush()
        (tmp_path / "model.txt").write_text("weights")
        client.log_artifact(run_id, str(tmp_path / "model.txt"))
        assert [r.info.run_id for r in client.search_runs(["0"])] == [run_id]
        client.set_terminated(run_id)
        RegistryClient(client).register(f"runs:/{run_id}/model.txt", "churn", run_id=run_id)
        client.close()
    keyed = [s for s in proxy.seen if "idempotency-key" in s.headers]
    plain = {s.path.split("?")[0].rsplit("/", 1)[-1] for s in proxy.seen if s not in keyed}
    assert {s.path.rsplit("/", 1)[-1] for s in keyed} >= {"create", "finish"}
    assert {"log-batch", "search", "model.txt"} <= plain  # the logging write, the search, the upload
    assert all(s.method != "GET" for s in keyed)
    keys = [s.headers["idempotency-key"] for s in keyed]
    assert len(set(keys)) == len(keys)  # one fresh key per call (no call was retried here)
    assert len(server.key_rows()) == len(keys)  # each answered once and kept for its retries


def test_a_lost_answer_is_retried_with_the_same_key_and_runs_once(server: Server) -> None:
    with proxy_to(server.url, lose_on="/runs/create", lose=1) as (url, proxy):
        rest = RestClient(url)
        try:
            run = rest.call("POST", f"{MLFLOW}/runs/create", new_run())["run"]
        finally:
            rest.close()
    sent = proxy.paths("/runs/create")
    assert proxy.lost == 1 and len(sent) == 2
    assert sent[0].headers["idempotency-key"] == sent[1].headers["idempotency-key"]
    assert [r["info"]["run_id"] for r in server.runs()] == [run["info"]["run_id"]]


def test_a_model_version_whose_answer_was_lost_is_registered_once(server: Server) -> None:
    run_id = server.post(f"{MLFLOW}/runs/create", new_run()).json()["run"]["info"]["run_id"]
    with proxy_to(server.url, lose_on="/model-versions/create", lose=1) as (url, proxy):
        client = Client(Settings.from_env({}, tracking_uri=url))
        version = RegistryClient(client).register(f"runs:/{run_id}/model", "churn", run_id=run_id)
        client.close()
    assert proxy.lost == 1 and len(proxy.paths("/model-versions/create")) == 2
    found = httpx.get(f"{server.url}{MLFLOW}/model-versions/search", params={"filter": "name='churn'"}).json()
    assert int(version.version) == 1
    assert [v["version"] for v in found["model_versions"]] == ["1"]


def test_a_dataset_version_whose_answer_was_lost_is_made_once(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    with proxy_to(server.url, lose_on="/data/versions", lose=1) as (url, proxy):
        added = add_dataset(url, tmp_path / "data")
    assert proxy.lost == 1 and len(proxy.paths("/data/versions")) == 2
    assert (added.created, added.version.version) == (True, 1)  # the first answer, not "existed already"
    assert server.dataset_versions("customers") == [1]


def test_a_call_still_running_is_retried_after_retry_after(server: Server) -> None:
    """The caller's own key, already running on the server: 409s, then the stored answer."""
    path, body = f"{MLFLOW}/runs/create", orjson.dumps(new_run())
    headers = {**JSON, "Idempotency-Key": "mine"}
    server.put_key("mine", path, body)
    rest = RestClient(server.url, retries=1, running_wait=1.5)
    try:
        began = time.monotonic()
        with pytest.raises(Conflict, match="still running") as still:
            rest.request("POST", path, content=body, headers=headers)
        assert time.monotonic() - began >= 1.5  # it waited for the call, Retry-After by Retry-After
        assert still.value.hint
        rest.running_wait = 30.0
        threading.Timer(0.5, lambda: server.put_key("mine", path, body, status=200)).start()
        answer = rest.request("POST", path, content=body, headers=headers)
    finally:
        rest.close()
    assert (answer.json(), answer.headers["idempotency-replayed"]) == ({"stored": True}, "true")
    assert server.runs() == []


def test_a_lost_answer_while_the_call_still_runs(tmp_path: Path, postgres_uri: str) -> None:
    """The retry arrives while the first try still runs: 409, retried after Retry-After, then the answer."""
    with serving(tmp_path / "server", postgres_uri) as server:
        with server.db.begin() as conn:  # every run insert takes 1.5 s
            conn.exec_driver_sql(
                "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$"
                " LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER slow BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION slow()"
            )
        with proxy_to(server.url, lose_on="/runs/create", lose=1, early=True) as (url, proxy):
            rest = RestClient(url)
            try:
                run = rest.call("POST", f"{MLFLOW}/runs/create", new_run())["run"]
            finally:
                rest.close()
        sent = proxy.paths("/runs/create")
        assert len(sent) >= 3  # the lost try, at least one 409 while it ran, then the stored answer
        assert len({s.headers["idempotency-key"] for s in sent}) == 1
        assert [r["info"]["run_id"] for r in server.runs()] == [run["info"]["run_id"]]
