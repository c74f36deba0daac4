"""Deferred runs: a run's ID is final at once, the store gets the run with its first batch.

Embedded and against a real ``loopline server``: a short run is one write, nothing logged is lost,
the errors are the store's, and an ID that leaves the client always names a run that exists.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import loopline
from loopline.config import Settings
from loopline.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from loopline.metadata.lineage import list_events
from loopline.tracking import Client, default_client
from loopline.tracking.rest_store import RestTrackingStore
from loopline.tracking.types import Metric, RunStatus


@pytest.fixture(params=["embedded", "server"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "embedded":
        uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
        return Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "art"), flush_interval=60)
    return Settings.from_env({}, tracking_uri=request.getfixturevalue("loopline_server"), flush_interval=60)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings)  # flush_interval=60: nothing is written behind the test's back
    yield c
    c.close()


def _actions(client: Client, run_id: str) -> list[str]:
    """The audit trail of one run, oldest first."""
    uri = f"runs:/{run_id}"
    if client.settings.is_remote:
        body = httpx.get(
            f"{client.settings.tracking_uri}/api/2.0/loopline/events", params={"object_uri": uri}
        ).json()
        return [e["action"] for e in reversed(body["events"])]
    engine = client.store.engine  # type: ignore[attr-defined]
    return [e.action for e in reversed(list_events(engine, "default", uri))]


def _exists(client: Client, run_id: str) -> bool:
    try:
        client.store.get_run(run_id)  # the store itself: no flush first
    except NotFound:
        return False
    return True


def test_a_short_run_is_one_write(client: Client) -> None:
    exp = client.set_experiment("short").experiment_id
    run = client.create_run(exp, run_name="r1", tags={"team": "ml"}, defer=True)
    rid = run.info.run_id
    assert len(rid) == 32 and run.info.artifact_uri.endswith(f"/{rid}/artifacts")
    client.log_param(rid, "lr", 0.1)
    client.log_batch(rid, params={"depth": 3}, tags={"stage": "dev"})
    for step in range(3):
        client.log_metric(rid, "loss", 1 / (step + 1), step=step)
    assert not _exists(client, rid)
    client.set_terminated(rid)
    assert _actions(client, rid) == ["run.create"]
    got = client.get_run(rid)
    assert (got.info.status, got.info.run_name, got.info.artifact_uri) == (
        RunStatus.FINISHED,
        "r1",
        run.info.artifact_uri,
    )
    assert got.data.params == {"lr": "0.1", "depth": "3"}
    assert got.data.tags["team"] == "ml" and got.data.tags["stage"] == "dev"
    assert [m.value for m in client.get_metric_history(rid, "loss")] == [1.0, 0.5, 1 / 3]


def test_reads_flushes_and_id_hand_outs_write_the_run(client: Client) -> None:
    exp = client.set_experiment("visible").experiment_id
    rid = client.create_run(exp, defer=True).info.run_id
    client.log_param(rid, "a", 1)
    client.flush()
    assert _exists(client, rid) and client.store.get_run(rid).data.params == {"a": "1"}
    client.log_param(rid, "b", 2)  # after the first write: the usual path
    rid2 = client.create_run(exp, defer=True).info.run_id
    assert client.search_runs([exp], "params.b = '2'")[0].info.run_id == rid  # reads see everything
    assert _exists(client, rid2)
    rid3 = client.create_run(exp, defer=True).info.run_id
    client.ensure_created(rid3)  # what ActiveRun.info / .run_id call before handing the ID out
    assert _exists(client, rid3)
    client.set_terminated(rid3, RunStatus.KILLED)
    assert _actions(client, rid3) == ["run.create", "run.finish"]


def test_the_background_writer_creates_a_quiet_run_within_the_interval(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    client = Client(
        Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "a"), flush_interval=0.05)
    )
    rid = client.create_run("0", defer=True).info.run_id
    deadline = time.monotonic() + 10
    while not _exists(client, rid):  # no metric, no read: the writer thread still writes it
        assert time.monotonic() < deadline, "the deferred run was never written"
        time.sleep(0.02)
    client.close()


def test_changing_a_deferred_param_is_refused_like_the_store_refuses_it(client: Client) -> None:
    exp = client.set_experiment("immutable").experiment_id
    rid = client.create_run(exp, defer=True).info.run_id
    client.log_param(rid, "lr", 0.1)
    client.log_param(rid, "lr", 0.1)  # the same value again is fine, as in the store
    with pytest.raises(InvalidInput, match="Changing param values is not allowed"):
        client.log_param(rid, "lr", 0.2)
    with pytest.raises(InvalidInput, match="Invalid param name"):
        client.log_batch(rid, params={"bad\x00key": 1})
    client.set_terminated(rid)
    assert client.get_run(rid).data.params == {"lr": "0.1"}  # nothing of the refused calls


def test_batches_larger_than_one_request_all_arrive(client: Client) -> None:
    exp = client.set_experiment("large").experiment_id
    rid = client.create_run(exp, defer=True).info.run_id
    client.log_batch(rid, params={f"p{i}": i for i in range(60)})
    client.log_batch(rid, params={f"q{i}": i for i in range(60)})  # over 100 params: first batch written
    for i in range(2500):
        client.log_metric(rid, "m", float(i), step=i)
    client.set_terminated(rid)
    run = client.get_run(rid)
    assert len(run.data.params) == 120 and run.info.status == RunStatus.FINISHED
    assert len(client.get_metric_history(rid, "m")) == 2500

    rid2 = client.create_run(exp, defer=True).info.run_id
    client.log_param(rid2, "p", 1)
    for i in range(1500):  # more points than fit beside the params in the first request
        client.log_metric(rid2, "m", float(i), step=i)
    client.set_terminated(rid2, RunStatus.FAILED)
    assert len(client.get_metric_history(rid2, "m")) == 1500
    assert client.get_run(rid2).info.status == RunStatus.FAILED


def test_deferral_needs_a_known_active_experiment(client: Client) -> None:
    with pytest.raises(NotFound):
        client.create_run("987654", defer=True)  # refused at once, as an eager create would be
    exp = client.set_experiment("doomed").experiment_id
    client.delete_experiment(exp)
    with pytest.raises(InvalidInput, match="deleted"):
        client.create_run(exp, defer=True)


def test_a_transient_failure_keeps_the_run_for_the_next_flush(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = client.set_experiment("flaky").experiment_id
    rid = client.create_run(exp, defer=True).info.run_id
    client.log_param(rid, "a", 1)
    client.log_metric(rid, "m", 1.0)
    real = client.store.create_run
    calls: list[str] = []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append("x")
        if len(calls) == 1:
            raise BackendUnavailable("the server is restarting")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(client.store, "create_run", flaky)
    with pytest.raises(BackendUnavailable):
        client.flush()
    client.flush()
    run = client.get_run(rid)
    assert run.data.params == {"a": "1"} and run.data.metrics == {"m": 1.0} and len(calls) == 2


def test_points_flushed_while_the_run_is_being_written_wait_for_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handing out a run's ID writes the run; a flush meanwhile (the background writer's) must wait
    for that write, not send its points to a run the store does not have yet (seen at exit under
    load: every point refused, the run left RUNNING)."""
    exp = client.set_experiment("race").experiment_id
    rid = client.create_run(exp, defer=True).info.run_id
    real, writing, release = client.store.create_run, threading.Event(), threading.Event()

    def slow(*args: object, **kwargs: object) -> object:
        writing.set()
        release.wait(30)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(client.store, "create_run", slow)
    hand_out = threading.Thread(target=client.ensure_created, args=(rid,))
    hand_out.start()
    assert writing.wait(30)
    for i in range(10):
        client.log_metric(rid, "m", float(i), step=i)
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            client.flush()
        except BaseException as e:
            errors.append(e)

    flusher = threading.Thread(target=flush)
    flusher.start()
    flusher.join(0.5)  # before the fix it had failed by now; after it, it waits for the write
    release.set()
    hand_out.join(30)
    flusher.join(30)
    assert errors == []
    assert [m.step for m in client.get_metric_history(rid, "m")] == list(range(10))


def test_without_client_run_ids_runs_are_created_at_once(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client.store, "accepts_run_ids", lambda: False)  # e.g. MLflow's own server
    exp = client.set_experiment("eager").experiment_id
    rid = client.create_run(exp, defer=True).info.run_id
    assert _exists(client, rid)


def test_mlflow_servers_get_mlflow_calls(loopline_server: str) -> None:
    store = RestTrackingStore(loopline_server)
    store._loopline = False  # what an MLflow server answers to server-info
    with pytest.raises(InvalidInput, match="chooses run IDs itself"):
        store.create_run("0", run_id="ab" * 16)
    run = store.create_run(
        "0", params=[], metrics=[Metric("m", 2.0, 5)], status=RunStatus.FINISHED, end_time=10
    )  # MLflow's three calls, one result
    assert run.info.status == RunStatus.FINISHED and run.data.metrics == {"m": 2.0}


def test_the_create_route_speaks_mlflows_error_shape(loopline_server: str) -> None:
    url = f"{loopline_server}/api/2.0/loopline/runs/create"
    rid = "12" * 16
    body = {"experiment_id": "0", "run_id": rid, "start_time": 1, "params": [{"key": "a", "value": "1"}]}
    assert httpx.post(url, json=body).json()["run"]["data"]["params"] == [{"key": "a", "value": "1"}]
    taken = httpx.post(url, json={**body, "start_time": 2})
    assert taken.status_code == 409 and taken.json()["error_code"] == "INVALID_STATE"
    for bad in ({"status": "DONE"}, {"run_id": "x"}, {"metrics": "m"}, {"status": "FINISHED"}):
        r = httpx.post(url, json={"experiment_id": "0", **bad})
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", bad
    with pytest.raises(Conflict):
        RestTrackingStore(loopline_server).create_run("0", start_time=3, run_id=rid)


def test_fluent_runs_are_written_whole_and_their_ids_are_real(tmp_path: Path) -> None:
    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    client = default_client()
    with loopline.start_run(experiment="fluent") as run:
        loopline.log_params({"a": 1})
        loopline.log_metric("m", 1.0)
        rid = run._id
        assert not _exists(client, rid)
        assert _exists(client, run.info.run_id)  # the ID leaves the client: it names a stored run
        with loopline.start_run(nested=True) as child:
            loopline.set_tag("k", "v")
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == rid
    assert client.get_run(rid).info.status == RunStatus.FINISHED

    script = f"""
import loopline
loopline.set_tracking_uri({f"sqlite:///{tmp_path / 'exit.sqlite'}"!r}, {str(tmp_path / "a")!r})
run = loopline.start_run(experiment="atexit")
loopline.log_param("p", 1)
print(run._id)
"""  # never ended, never flushed, ID not handed out: written at exit
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    other = loopline.Client(
        loopline.Settings.from_env({}, tracking_uri=f"sqlite:///{tmp_path / 'exit.sqlite'}")
    )
    got = other.get_run(out.stdout.strip())
    assert got.info.status == RunStatus.FINISHED and got.data.params == {"p": "1"}
