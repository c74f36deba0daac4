"""Long requests as jobs, through real ``loopline server`` subprocesses (``server/jobs.py``).

``LOOPLINE_JOB_WAIT=0`` makes every job route answer 202 at once to a client that sends
``Prefer: respond-async`` (Loopline's does), so the tests go through the job path; a request without
the header is answered when done, which is the synchronous path they compare with.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import run_cli, serve_loopline

from loopline.config import Settings
from loopline.context import Context
from loopline.errors import BackendUnavailable, InvalidInput, NotFound
from loopline.features import FeatureStore
from loopline.monitoring.monitors import Monitors
from loopline.protocol.jobs import JOBS_API, Progress, get_job, list_jobs, wait_job

MATERIALIZE = "/api/2.0/loopline/features/materialize"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
START_US, END_US = (
    int((T0 - dt.timedelta(days=1)).timestamp() * 1e6),
    int((T0 + dt.timedelta(days=1)).timestamp() * 1e6),
)
WINDOW = ("2025-12-31T00:00:00", "2026-01-02T00:00:00")
ASYNC = {"Prefer": "respond-async"}


def _write_repo(folder: Path, rows: int) -> Path:
    """``rows`` drivers with one conv_rate each, and the definitions of one online view over them."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "drivers.parquet"
    pq.write_table(
        pa.table(
            {
                "driver_id": list(range(rows)),
                "event_timestamp": [T0] * rows,
                "conv_rate": [i / rows for i in range(rows)],
            }
        ),
        data,
    )
    defs = folder / "defs.py"
    defs.write_text(
        "from datetime import timedelta\n"
        "from loopline.features import Entity, FeatureView, Field, FileSource, Float64\n"
        "driver = Entity(name='driver', join_keys=['driver_id'])\n"
        f"stats = FeatureView(name='stats', entities=[driver], source=FileSource(path={str(data)!r}),\n"
        "    schema=[Field('conv_rate', Float64)], ttl=timedelta(days=1))\n"
    )
    return defs


def _remote(url: str, workspace: str = "default") -> Context:
    return Context(Settings.from_env({}, tracking_uri=url, user="tester", workspace=workspace))


@pytest.fixture
def async_server(tmp_path: Path) -> Iterator[str]:
    """A server that answers 202 at once to a client that accepts it."""
    with serve_loopline(tmp_path / "server", env={"LOOPLINE_JOB_WAIT": "0"}, check_log=True) as url:
        yield url


def _materialize_body(**extra: Any) -> dict[str, Any]:
    return {"views": None, "start_us": START_US, "end_us": END_US, "batch_rows": 1000, **extra}


def _poll(client: httpx.Client, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(location).json()["job"]
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise TimeoutError(location)


def test_a_202_and_polling_answer_what_the_synchronous_path_does(async_server: str, tmp_path: Path) -> None:
    defs = _write_repo(tmp_path / "repo", 500)
    fs = FeatureStore(context=_remote(async_server))
    fs.apply(defs)
    with httpx.Client(base_url=async_server, timeout=60) as http:
        accepted = http.post(MATERIALIZE, json=_materialize_body(), headers=ASYNC)
        assert accepted.status_code == 202
        body = accepted.json()
        assert body["status"] == "running" and body["kind"] == "features.materialize"
        assert accepted.headers["location"] == f"{JOBS_API}/{body['job_id']}"
        job = _poll(http, accepted.headers["location"])
        sync = http.post(MATERIALIZE, json=_materialize_body())  # no Prefer: answered when done
        assert sync.status_code == 200
    assert job["status"] == "succeeded" and job["error"] is None
    assert job["result"] == sync.json()
    assert [r["rows"] for r in job["result"]["results"]] == [500]
    assert job["progress"]["done"] == 500 and job["finished_ms"] >= job["started_ms"] >= job["created_ms"]

    # The Python API goes through the 202 too, and reads back what it wrote.
    [result] = fs.materialize(*WINDOW)
    assert (result.view, result.rows) == ("stats", 500)
    online = fs.get_online_features(["stats:conv_rate"], {"driver_id": [0, 250, 499]}).to_dict()
    assert online["conv_rate"] == [0.0, 0.5, 0.998]
    kinds = [j.kind for j in list_jobs(_remote(async_server).http)]
    assert kinds == ["features.materialize"] * 3  # the one without Prefer ran as a job as well


def test_a_failing_job_raises_the_error_of_the_synchronous_path(async_server: str, tmp_path: Path) -> None:
    fs = FeatureStore(context=_remote(async_server))
    fs.apply(_write_repo(tmp_path / "repo", 10))
    with httpx.Client(base_url=async_server, timeout=60) as http:
        sync = http.post(MATERIALIZE, json=_materialize_body(views=["nope"]))
        accepted = http.post(MATERIALIZE, json=_materialize_body(views=["nope"]), headers=ASYNC)
        assert (sync.status_code, accepted.status_code) == (400, 202)
        job = _poll(http, accepted.headers["location"])
    assert job["status"] == "failed" and job["result"] is None
    assert job["error"]["status_code"] == 400
    assert {k: job["error"][k] for k in ("error_code", "message")} == sync.json()
    assert job["error"]["hint"] == "Online views: ['stats']."  # the hint kept apart as well
    with pytest.raises(InvalidInput) as raised:
        fs.materialize(*WINDOW, views=["nope"])
    assert raised.value.message == sync.json()["message"] and raised.value.status_code == 400

    with httpx.Client(base_url=async_server, timeout=60) as http:
        missing = http.post("/api/2.0/loopline/monitors/run", json={"name": "nope"})
    assert missing.status_code == 404
    with pytest.raises(NotFound) as gone:
        Monitors(context=_remote(async_server)).run("nope")  # a 202, then the job's 404
    assert gone.value.message == missing.json()["message"] and gone.value.status_code == 404


def test_a_job_goes_on_when_its_client_leaves(tmp_path: Path) -> None:
    defs = _write_repo(tmp_path / "repo", 60_000)
    # Jobs wait up to a minute here: the leaving client below is mid-request when it goes.
    with serve_loopline(tmp_path / "server", env={"LOOPLINE_JOB_WAIT": "60"}, check_log=True) as url:
        FeatureStore(context=_remote(url)).apply(defs)
        with httpx.Client(base_url=url, timeout=60) as first:
            accepted = first.post(
                MATERIALIZE,
                json=_materialize_body(batch_rows=100),
                headers={"Prefer": "respond-async, wait=0"},
            )
        assert accepted.status_code == 202  # wait=0 in Prefer: at once, whatever the server's wait
        with httpx.Client(base_url=url, timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
            impatient.post(MATERIALIZE, json=_materialize_body(batch_rows=100))  # no job id: it leaves

        later = _remote(url).http  # a new client, after both have gone
        job = wait_job(later, accepted.json()["job_id"])
        assert job.status == "succeeded" and job.result["results"][0]["rows"] == 60_000
        jobs = list_jobs(later)
        assert len(jobs) == 2
        left = wait_job(later, jobs[0].id)  # the newest: the request whose client timed out
        assert left.status == "succeeded" and left.outcome() == job.result


def test_progress_moves_and_ends_at_the_rows_written(async_server: str, tmp_path: Path) -> None:
    fs = FeatureStore(context=_remote(async_server))
    fs.apply(_write_repo(tmp_path / "repo", 60_000))
    seen: list[Progress] = []
    [result] = fs.materialize(*WINDOW, batch_rows=50, progress=seen.append)
    assert result.rows == 60_000
    assert seen[0].message == "accepted" and seen[0].job_id is not None
    assert {p.job_id for p in seen} == {seen[0].job_id}
    done = [p.done for p in seen]
    assert done == sorted(done) and done[-1] == 60_000
    assert any(0 < d < 60_000 for d in done), done  # seen mid-way, not only at the start and end
    assert seen[-1].total is None and seen[-1].message == "stats (view 1 of 1)"

    # Embedded, the same call reports the same shape as it goes (no job id: nothing to follow).
    here: list[Progress] = []
    local = FeatureStore(Settings.from_env({}, tracking_uri=f"sqlite:///{tmp_path / 'local.db'}", user="t"))
    local.apply(tmp_path / "repo" / "defs.py")
    [mine] = local.materialize(*WINDOW, batch_rows=20_000, progress=here.append)
    assert [(p.done, p.job_id) for p in here] == [(0, None), (20_000, None), (40_000, None), (60_000, None)]
    assert mine.rows == 60_000


def test_no_wait_prints_the_job_id_and_jobs_wait_finishes_it(async_server: str, tmp_path: Path) -> None:
    FeatureStore(context=_remote(async_server)).apply(_write_repo(tmp_path / "repo", 2_000))
    work = tmp_path / "client"
    work.mkdir()
    started = run_cli(async_server, work, "features", "materialize", *WINDOW, "--no-wait")
    assert started.returncode == 0, started.stderr
    found = re.search(r"Started as job ([0-9a-f]{32})\.", started.stdout)
    assert found is not None, started.stdout
    job_id = found.group(1)
    assert f"loopline jobs wait {job_id}" in started.stdout

    waited = run_cli(async_server, work, "jobs", "wait", job_id, "--format", "json")
    assert waited.returncode == 0, waited.stderr
    assert [r["rows"] for r in json.loads(waited.stdout)["results"]] == [2_000]
    shown = json.loads(run_cli(async_server, work, "jobs", "show", job_id, "--format", "json").stdout)
    assert shown["status"] == "succeeded" and shown["kind"] == "features.materialize"
    assert shown["progress"]["done"] == 2_000
    table = run_cli(async_server, work, "jobs", "show", job_id).stdout
    assert job_id in table and "succeeded" in table and "2,000" in table

    # Waited for (the default), the same command prints the outcome; a failing job exits 1 with it.
    ran = run_cli(async_server, work, "features", "materialize", *WINDOW, "--format", "json")
    assert ran.returncode == 0 and json.loads(ran.stdout)[0]["rows"] == 2_000
    bad = run_cli(async_server, work, "features", "materialize", *WINDOW, "--view", "nope")
    assert bad.returncode == 2 and "No online feature view(s) ['nope']" in bad.stderr
    failed_id = list_jobs(_remote(async_server).http)[0].id
    again = run_cli(async_server, work, "jobs", "wait", failed_id)
    assert again.returncode == 2 and "No online feature view(s) ['nope']" in again.stderr
    assert sorted(p.name for p in work.iterdir()) == []  # the client opened no database


def test_unknown_job_ids_are_404_json_and_jobs_are_per_workspace(store_uri: str, tmp_path: Path) -> None:
    """Replicas on one database (SQLite, PostgreSQL) answer for each other's jobs; another workspace
    sees none of them: a server's own (LOOPLINE_WORKSPACE), or the one a client's header names."""
    store = store_uri
    artifacts = str(tmp_path / "artifacts")
    env = {"LOOPLINE_JOB_WAIT": "0"}
    defs = _write_repo(tmp_path / "repo", 300)
    with (
        serve_loopline(tmp_path / "a", store=store, artifacts=artifacts, env=env) as a,
        serve_loopline(tmp_path / "b", store=store, artifacts=artifacts, env=env) as b,
        serve_loopline(
            tmp_path / "c", store=store, artifacts=artifacts, env={**env, "LOOPLINE_WORKSPACE": "other"}
        ) as c,
    ):
        FeatureStore(context=_remote(a)).apply(defs)
        with httpx.Client(base_url=a, timeout=60) as http:
            job_id = http.post(MATERIALIZE, json=_materialize_body(), headers=ASYNC).json()["job_id"]
        job = wait_job(_remote(b).http, job_id)  # polled through the other replica
        assert job.status == "succeeded" and job.result["results"][0]["rows"] == 300

        for url, unknown in ((a, "0" * 32), (c, job_id), (a, "not-a-job")):
            resp = httpx.get(f"{url}{JOBS_API}/{unknown}")
            assert resp.status_code == 404
            body = resp.json()
            assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST" and unknown in body["message"]
        for other in (_remote(c), _remote(a, "other")):  # c's own workspace, or one the client names
            with pytest.raises(NotFound):
                get_job(other.http, job_id)
            assert list_jobs(other.http) == []
        bad = httpx.get(f"{a}{JOBS_API}", params={"status": "done"})
        assert bad.status_code == 400 and "queued, running, succeeded or failed" in bad.json()["message"]
        missing = run_cli(a, tmp_path, "jobs", "show", "0" * 32)
        assert missing.returncode == 2 and f"No job '{'0' * 32}'" in missing.stderr


def test_a_job_whose_server_died_reads_as_failed(async_server: str, tmp_path: Path) -> None:
    """The heartbeat rule, on rows as a killed server leaves them (running, last beat long ago)."""
    from sqlalchemy import insert

    from loopline.metadata.engine import create_store_engine
    from loopline.metadata.schema_jobs import jobs

    now = int(time.time() * 1000)
    engine = create_store_engine(f"sqlite:///{tmp_path / 'server' / 'server.db'}")
    row = {"workspace": "default", "kind": "features.materialize", "actor": "x", "done": 7, "message": ""}
    row |= {"status": "running", "created_ms": now - 90_000}
    with engine.begin() as conn:
        conn.execute(
            insert(jobs),
            [
                {**row, "id": "d" * 32, "heartbeat_ms": now - 60_000},
                {**row, "id": "a" * 32, "heartbeat_ms": now - 1_000},
            ],
        )
    engine.dispose()
    client = _remote(async_server).http
    dead, alive = get_job(client, "d" * 32), get_job(client, "a" * 32)
    assert (dead.status, alive.status) == ("failed", "running")
    assert dead.error is not None and dead.error["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert re.search(r"has not reported for 6\d s", dead.error["message"]) and dead.progress.done == 7
    with pytest.raises(BackendUnavailable, match="stopped: the server running it"):
        wait_job(client, "d" * 32).outcome()
    assert [j.id for j in list_jobs(client, status="failed")] == ["d" * 32]
    assert [j.id for j in list_jobs(client, status="running")] == ["a" * 32]


def test_the_wait_setting_is_a_number() -> None:
    assert Settings.from_env({"LOOPLINE_JOB_WAIT": "0.5"}).job_wait == 0.5
    assert Settings.from_env({}).job_wait == 2.0
    with pytest.raises(InvalidInput, match=r"job_wait='soon'.*a number"):
        Settings.from_env({"LOOPLINE_JOB_WAIT": "soon"})
