"""Idempotent retries through a real ``loopline server`` on SQLite and PostgreSQL.

A write sent twice with one ``Idempotency-Key`` makes one run, one model version, one dataset
version, and the second answer is the first, replayed; a key reused for another request, a bad key
and an oversized body are refused; a key still running answers 409 with ``Retry-After``; 5xx answers
are not kept; expired keys are purged. Requests without the header behave as before (as MLflow's).
Loopline's client and lost answers: ``test_idempotency_client.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from idempotency_helpers import MLFLOW, Server, add_dataset, new_run, serving

from loopline.config import Settings
from loopline.errors import InvalidInput

DAY_MS = 86_400_000


@pytest.fixture
def server(tmp_path: Path, store_uri: str) -> Iterator[Server]:
    with serving(tmp_path / "server", store_uri) as s:
        yield s


# ---- one key, one object -------------------------------------------------------------------


def test_a_repeated_key_creates_one_run_and_replays_the_first_answer(server: Server) -> None:
    key = str(uuid.uuid4())
    first = server.post(f"{MLFLOW}/runs/create", new_run(), key=key)
    again = server.post(f"{MLFLOW}/runs/create", new_run(), key=f'"{key}"')  # the draft's quoted form
    assert first.status_code == again.status_code == 200
    assert "idempotency-replayed" not in first.headers
    assert again.headers["idempotency-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert [r["info"]["run_id"] for r in server.runs()] == [first.json()["run"]["info"]["run_id"]]
    assert server.key_rows()[key].status == 200


def test_without_a_key_requests_behave_as_mlflows(server: Server) -> None:
    a = server.post(f"{MLFLOW}/runs/create", new_run())
    b = server.post(f"{MLFLOW}/runs/create", new_run())
    assert a.status_code == b.status_code == 200
    assert "idempotency-replayed" not in b.headers
    assert a.json()["run"]["info"]["run_id"] != b.json()["run"]["info"]["run_id"]
    assert len(server.runs()) == 2
    # A read carrying a key is not touched either: safe methods are idempotent by themselves.
    run_id = a.json()["run"]["info"]["run_id"]
    got = httpx.get(
        f"{server.url}{MLFLOW}/runs/get", params={"run_id": run_id}, headers={"Idempotency-Key": "k"}
    )
    assert got.status_code == 200 and "idempotency-replayed" not in got.headers
    assert server.key_rows() == {}


def test_a_repeated_key_creates_one_model_version(server: Server) -> None:
    run_id = server.post(f"{MLFLOW}/runs/create", new_run()).json()["run"]["info"]["run_id"]
    model = {"name": "churn"}
    made = server.post(f"{MLFLOW}/registered-models/create", model, key="model-1")
    again = server.post(f"{MLFLOW}/registered-models/create", model, key="model-1")
    assert made.status_code == again.status_code == 200 and again.content == made.content
    # Without the key a retry is refused (as MLflow's server does), though the first call worked.
    assert server.post(f"{MLFLOW}/registered-models/create", model).json()["error_code"] == (
        "RESOURCE_ALREADY_EXISTS"
    )
    version = {"name": "churn", "source": f"runs:/{run_id}/model", "run_id": run_id}
    answers = [server.post(f"{MLFLOW}/model-versions/create", version, key="version-1") for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    assert {a.content for a in answers} == {answers[0].content}
    assert answers[0].json()["model_version"]["version"] == "1"
    found = httpx.get(f"{server.url}{MLFLOW}/model-versions/search", params={"filter": "name='churn'"}).json()
    assert [v["version"] for v in found["model_versions"]] == ["1"]


def test_a_repeated_key_creates_one_dataset_version(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    added = add_dataset(server.url, tmp_path / "data")
    v = added.version
    body = {
        "name": "copy",
        "digest": v.digest,
        "format": v.format,
        "num_files": v.num_files,
        "size_bytes": v.size_bytes,
        "num_rows": v.num_rows,
        "schema": dict(v.schema),
        "profile": dict(v.profile),
    }
    first = server.post("/api/2.0/loopline/data/versions", body, key="dataset-1")
    again = server.post("/api/2.0/loopline/data/versions", body, key="dataset-1")
    assert first.json()["created"] is True and again.content == first.content
    assert again.headers["idempotency-replayed"] == "true"
    assert server.dataset_versions("copy") == [1]
    # Without the key a retry says it made nothing (the version existed): the first answer is lost.
    assert server.post("/api/2.0/loopline/data/versions", body).json()["created"] is False


# ---- refusals ------------------------------------------------------------------------------


def test_a_key_reused_for_another_request_is_refused(server: Server) -> None:
    assert server.post(f"{MLFLOW}/runs/create", new_run("a"), key="k").status_code == 200
    for path, body in (
        (f"{MLFLOW}/runs/create", new_run("b")),
        (f"{MLFLOW}/experiments/create", {"name": "e"}),
    ):
        refused = server.post(path, body, key="k")
        assert refused.status_code == 422
        err = refused.json()
        assert err["error_code"] == "IDEMPOTENCY_KEY_REUSED"
        assert "runs/create" in err["message"] or "another body" in err["message"]
        assert "fresh key" in err["hint"]
    assert [r["info"]["run_name"] for r in server.runs()] == ["a"]
    gone = httpx.get(f"{server.url}{MLFLOW}/experiments/get-by-name", params={"experiment_name": "e"})
    assert gone.status_code == 404


def test_a_bad_key_or_an_oversized_body_is_refused(server: Server) -> None:
    for key in (b"", b'""', b"x" * 256, "clé".encode(), b"a b"):
        refused = server.post(f"{MLFLOW}/runs/create", new_run(), key=key)
        assert refused.status_code == 400, key
        assert refused.json()["error_code"] == "BAD_REQUEST"
        assert "Idempotency-Key" in refused.json()["message"] and refused.json()["hint"]
    big = new_run() | {"tags": [{"key": "t", "value": "v" * (5 << 20)}]}  # over the 4 MiB a key may cover
    refused = server.post(f"{MLFLOW}/runs/create", big, key="big")
    assert refused.status_code == 413 and "without the header" in refused.json()["hint"]
    assert server.runs() == [] and server.key_rows() == {}
    assert server.post(f"{MLFLOW}/runs/create", new_run(), key="x" * 255).status_code == 200  # the longest


# ---- what is kept ----------------------------------------------------------------------------


_BOOM = {
    "sqlite": ["CREATE TRIGGER boom BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'boom'); END"],
    "postgresql": [
        "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER boom BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION boom()",
    ],
}


def test_4xx_answers_are_kept_and_5xx_are_not(server: Server) -> None:
    unknown = {"run_id": "0" * 32, "status": "FINISHED"}
    first = server.post(f"{MLFLOW}/runs/update", unknown, key="missing-run")
    again = server.post(f"{MLFLOW}/runs/update", unknown, key="missing-run")
    assert first.status_code == again.status_code == 404
    assert again.headers["idempotency-replayed"] == "true" and again.content == first.content

    with server.db.begin() as conn:  # every run insert fails: the server answers 500
        for sql in _BOOM[server.db.dialect.name]:
            conn.exec_driver_sql(sql)
    failed = server.post(f"{MLFLOW}/runs/create", new_run(), key="flaky")
    assert failed.status_code == 500
    assert "flaky" not in server.key_rows()  # released: the retry runs again
    with server.db.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER boom" + (" ON runs" if server.db.dialect.name == "postgresql" else "")
        )
    retried = server.post(f"{MLFLOW}/runs/create", new_run(), key="flaky")
    assert retried.status_code == 200 and "idempotency-replayed" not in retried.headers
    assert len(server.runs()) == 1


def test_a_key_still_running_answers_409_then_the_stored_answer(server: Server) -> None:
    path = f"{MLFLOW}/runs/create"
    server.put_key("busy", path, orjson.dumps(new_run()))  # the first request is still running
    busy = server.post(path, new_run(), key="busy")
    assert busy.status_code == 409 and busy.headers["retry-after"] == "1"
    assert busy.json()["error_code"] == "IDEMPOTENCY_KEY_IN_USE" and busy.json()["hint"]
    server.put_key("busy", path, orjson.dumps(new_run()), status=201)  # ... and has now answered
    done = server.post(path, new_run(), key="busy")
    assert (done.status_code, done.json(), done.headers["idempotency-replayed"]) == (
        201,
        {"stored": True},
        "true",
    )
    assert server.runs() == []  # both answers came from the key's row, neither ran the route


def test_concurrent_requests_with_one_key_run_once(server: Server) -> None:
    start = threading.Barrier(8)

    def send(_: int) -> httpx.Response:
        start.wait()
        return server.post(f"{MLFLOW}/runs/create", new_run(), key="race")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    ok = [a for a in answers if a.status_code == 200]
    assert {a.status_code for a in answers} <= {200, 409}
    assert all(a.headers["retry-after"] == "1" for a in answers if a.status_code == 409)
    assert len({a.content for a in ok}) == 1
    assert len([a for a in ok if "idempotency-replayed" not in a.headers]) == 1  # the one that ran
    assert len(server.runs()) == 1


def test_replicas_on_one_postgresql_share_the_keys(tmp_path: Path, postgres_uri: str) -> None:
    with serving(tmp_path / "a", postgres_uri) as a, serving(tmp_path / "b", postgres_uri) as b:
        start = threading.Barrier(8)

        def send(i: int) -> httpx.Response:
            start.wait()
            return (a, b)[i % 2].post(f"{MLFLOW}/runs/create", new_run(), key="everywhere")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(8)))
        assert {x.status_code for x in answers} <= {200, 409}
        assert (
            len([x for x in answers if x.status_code == 200 and "idempotency-replayed" not in x.headers]) == 1
        )
        assert len(a.runs()) == 1
        assert b.post(f"{MLFLOW}/runs/create", new_run(), key="everywhere").headers["idempotency-replayed"]


def test_expired_and_abandoned_keys_are_purged_or_taken_over(server: Server) -> None:
    path = f"{MLFLOW}/runs/create"
    other = orjson.dumps(new_run("earlier"))
    server.put_key("old", path, other, age_ms=DAY_MS + 60_000, status=200)
    server.put_key("stale", path, other, age_ms=DAY_MS + 60_000, status=200)
    # The first keyed request of the process purges what expired: "stale" goes, "old" is free again.
    fresh = server.post(path, new_run("now"), key="old")
    assert fresh.status_code == 200 and "idempotency-replayed" not in fresh.headers
    assert set(server.key_rows()) == {"old"}
    # Expired since the last purge: the key is taken over by the next request that uses it.
    server.put_key("later", path, other, age_ms=DAY_MS + 60_000, status=200)
    assert server.post(path, new_run("again"), key="later").status_code == 200
    # A claim running for longer than its lease (its server died): a retry runs it.
    server.put_key("orphan", path, orjson.dumps(new_run("orphan")), age_ms=2 * 3_600_000)
    assert server.post(path, new_run("orphan"), key="orphan").status_code == 200
    assert sorted(r["info"]["run_name"] for r in server.runs()) == ["again", "now", "orphan"]
    assert server.key_rows()["later"].created_at > time.time() * 1000 - 60_000


def test_a_ttl_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    from loopline.server.app import create_app

    settings = Settings.from_env({}, tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", idempotency_ttl=0)
    with pytest.raises(InvalidInput, match="LOOPLINE_IDEMPOTENCY_TTL") as refused:
        create_app(settings)
    assert refused.value.hint


def test_a_lease_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    from loopline.server.app import create_app

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with pytest.raises(InvalidInput, match="LOOPLINE_IDEMPOTENCY_LEASE") as refused:
        create_app(Settings.from_env({"LOOPLINE_IDEMPOTENCY_LEASE": "0"}, tracking_uri=db))
    assert refused.value.hint
