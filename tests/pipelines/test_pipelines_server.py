"""Pipelines through ``loopline server``: a client with only an ``http://`` URI runs, caches and inspects.

Steps run on the client; run and step records, cache lookups and step outputs go through a real
server subprocess on 127.0.0.1 (shared by the module; each test names its pipelines afresh). The
``PipelineStore`` contract runs the same scenarios over SQLite, PostgreSQL and that server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline_support import write
from support import serve_loopline

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.pipelines.rest_store import RestPipelineStore
from loopline.pipelines.store import PipelineStore, open_pipeline_store
from loopline.pipelines.types import Finished, RunRecord, ScheduleRecord, StepRecord

# ``numbers`` returns ~110 KB of JSON: above the inline limit, so it is stored as an artifact.
PIPE = """
from loopline.pipelines import pipeline, step

@step
def numbers(n: int) -> list:
    return list(range(n))

@step
def total(values: list) -> int:
    return sum(values)

@pipeline(name=NAME)
def p(n: int = 20000):
    return {"total": total(numbers(n))}
"""

NIGHTLY = """
from loopline.pipelines import pipeline, step

@step
def hello(name: str) -> str:
    return "hello " + name

@pipeline(name=NAME)
def greet(name: str = "world"):
    return hello(name)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``loopline server`` with its own SQLite store and artifacts; its scheduler ticks every 0.5 s."""
    home = tmp_path_factory.mktemp("pipelines-server")
    with serve_loopline(home, env={"LOOPLINE_SCHEDULER_INTERVAL": "0.5"}, check_log=True) as url:
        yield url, home / "artifacts"


def _client_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    return {**env, "LOOPLINE_TRACKING_URI": url, "COLUMNS": "200"}


def _cli(url: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``loopline …`` in a fresh process whose only setting is the server's URI."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        cwd=cwd,
        env=_client_env(url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout.strip().splitlines()[-1])


def _statuses(result: dict[str, Any]) -> dict[str, str]:
    return {s["node"]: s["status"] for s in result["steps"]}


def _project(tmp_path: Path, name: str, source: str = PIPE) -> Path:
    return write(tmp_path / "proj", pipe=source.replace("NAME", repr(name)))


# ---- the user's flow -------------------------------------------------------------------------


def test_a_pipeline_runs_caches_and_is_inspected_through_the_server_alone(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, server_artifacts = server
    name = f"p{uuid.uuid4().hex[:8]}"
    target = f"{_project(tmp_path, name) / 'pipe.py'}:p"

    alice = tmp_path / "alice"
    first = _json(_cli(url, ["pipeline", "run", target, "--format", "json"], alice))
    assert first["status"] == "succeeded" and first["outputs"] == {"total": sum(range(20000))}
    assert _statuses(first) == {"numbers": "succeeded", "total": "succeeded"}
    assert not (alice / ".loopline").exists()  # the client never opened a database or artifact folder

    again = _json(_cli(url, ["pipeline", "run", target, "--format", "json"], alice))
    assert _statuses(again) == {"numbers": "cached", "total": "cached"}
    assert again["outputs"] == first["outputs"] and again["run_id"] != first["run_id"]

    # A teammate in another folder (another process) reuses the same steps through the server.
    bob = tmp_path / "bob"
    shared = _json(_cli(url, ["pipeline", "run", target, "--format", "json", "--explain"], bob))
    assert _statuses(shared) == {"numbers": "cached", "total": "cached"}
    assert {s["cached_from"] for s in shared["steps"]} == {first["run_id"]}
    assert not (bob / ".loopline").exists()

    # The Python API, in this process, from a third empty folder: a changed parameter re-runs.
    from loopline.pipelines import load_target

    carol = tmp_path / "carol"
    carol.mkdir()
    monkeypatch.chdir(carol)
    for key in [k for k in os.environ if k.startswith(("LOOPLINE_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("LOOPLINE_TRACKING_URI", url)
    result = load_target(target).run(n=10)
    assert result.outputs == {"total": 45}
    assert {n: s.status for n, s in result.steps.items()} == {"numbers": "succeeded", "total": "succeeded"}
    cached = load_target(target).run()
    assert {s.status for s in cached.steps.values()} == {"cached"}
    assert cached.outputs == first["outputs"]  # read back through the server's artifact proxy
    assert not (carol / ".loopline").exists()

    # Inspection through the server: list (and its alias runs), show.
    listed = _json(_cli(url, ["pipeline", "runs", "--name", name, "--format", "json"], bob))
    assert {r["run_id"] for r in listed} == {first["run_id"], again["run_id"], shared["run_id"]} | {
        result.run_id,
        cached.run_id,
    }
    assert all(r["status"] == "succeeded" for r in listed)
    shown = _json(_cli(url, ["pipeline", "show", first["run_id"], "--format", "json"], bob))
    assert shown["run_id"] == first["run_id"] and shown["target"] == target
    assert [s["node"] for s in shown["steps"]] == ["numbers", "total"]
    assert "python" in shown["environment"]
    # The big output went through the server's artifact proxy into the server's own store.
    numbers = shown["steps"][0]
    assert numbers["output_inline"] is None and numbers["output_path"]
    with BlobArtifactStore(str(server_artifacts)).open(numbers["output_path"]) as f:
        assert json.loads(f.read()) == list(range(20000))
    text = _cli(url, ["pipeline", "show", first["run_id"]], bob).stdout
    assert name in text and "packages" in text  # the package count came over the wire too
    assert not (bob / ".loopline").exists()

    # The run is a tracked run on the same server as well.
    tracked = httpx.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": first["run_id"]}).json()
    assert tracked["run"]["info"]["status"] == "FINISHED"


def test_a_failed_run_resumes_through_the_server(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    name = f"flaky{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "fail"
    source = f"""
import os
from loopline.pipelines import pipeline, step

@step
def first() -> int:
    return 1

@step
def second(x: int) -> int:
    if os.path.exists({str(marker)!r}):
        raise RuntimeError("not yet")
    return x + 1

@pipeline(name={name!r})
def p():
    return second(first())
"""
    target = f"{write(tmp_path / 'proj', pipe=source) / 'pipe.py'}:p"
    marker.touch()
    work = tmp_path / "work"
    work.mkdir()
    failed = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "pipeline", "run", target, "--format", "json"],
        cwd=work, env=_client_env(url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert failed.returncode != 0
    run = _json(failed)
    assert run["status"] == "failed" and _statuses(run) == {"first": "succeeded", "second": "failed"}
    assert f"loopline pipeline resume {run['run_id']}" in failed.stderr

    marker.unlink()
    resumed = _json(_cli(url, ["pipeline", "resume", run["run_id"], "--format", "json"], work))
    assert resumed["run_id"] == run["run_id"] and resumed["status"] == "succeeded"
    assert resumed["outputs"] == 2 and _statuses(resumed)["second"] == "succeeded"
    assert not (work / ".loopline").exists()


def test_a_run_killed_mid_step_registers_no_output_and_resumes_through_the_server(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = server
    name = f"killed{uuid.uuid4().hex[:8]}"
    started = tmp_path / "started"
    source = f"""
import os, time
from loopline.pipelines import pipeline, step

@step
def first() -> list:
    return list(range(20000))

@step
def slow(values: list) -> int:
    if os.environ.get("SLEEP"):
        open({str(started)!r}, "w").close()
        time.sleep(60)
    return len(values)

@pipeline(name={name!r})
def p():
    return slow(first())
"""
    target = f"{write(tmp_path / 'proj', pipe=source) / 'pipe.py'}:p"
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "pipeline", "run", target, "-q"],
        cwd=work,
        env={**_client_env(url), "SLEEP": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the step started"
        time.sleep(0.05)
    proc.kill()
    proc.wait()

    store = open_pipeline_store(Context(Settings.from_env({}, tracking_uri=url)))
    [run] = store.list_runs(name)
    assert run.status == "running"  # nobody recorded an end
    steps = {s.node: s for s in store.steps(run.run_id)}
    assert steps["first"].status == "succeeded" and steps["first"].output_path
    assert steps["slow"].status == "running" and steps["slow"].output_digest == ""

    resumed = _json(_cli(url, ["pipeline", "resume", run.run_id, "--format", "json"], work))
    assert (
        resumed["run_id"] == run.run_id and resumed["status"] == "succeeded" and resumed["outputs"] == 20000
    )
    assert _statuses(resumed) == {"first": "succeeded", "slow": "succeeded"}  # first was kept, not re-run
    assert [r.run_id for r in store.list_runs(name)] == [run.run_id]
    assert not (work / ".loopline").exists()


def test_a_schedule_added_through_the_server_is_run_by_its_scheduler(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = server
    name = f"greet{uuid.uuid4().hex[:8]}"
    target = f"{_project(tmp_path, name, NIGHTLY) / 'pipe.py'}:greet"
    store = open_pipeline_store(Context(Settings.from_env({}, tracking_uri=url)))
    assert isinstance(store, RestPipelineStore)
    created = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 120_000  # the current minute is due
    store.add_schedule(ScheduleRecord(name, target, "* * * * *", {"name": "cron"}, "", True, created))

    deadline = time.monotonic() + 90
    while not (done := [r for r in store.list_runs(name) if r.status != "running"]):
        assert time.monotonic() < deadline, "the server's scheduler did not run the schedule"
        time.sleep(0.25)
    assert (
        done[-1].status == "succeeded" and done[-1].schedule == name and done[-1].params == {"name": "cron"}
    )
    assert done[-1].run_id in {run_id for _, _, run_id, _ in store.slots(name)}
    store.remove_schedule(name)


def test_sweep_rerun_graph_and_schedule_commands_work_through_the_server(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from loopline.cli.main import app

    url, _ = server
    name = f"sw{uuid.uuid4().hex[:8]}"
    target = f"{_project(tmp_path, name) / 'pipe.py'}:p"
    work = tmp_path / "work"
    swept = _json(
        _cli(url, ["sweep", target, "-s", "n=10,20", "--metric", "total", "--format", "json"], work)
    )
    assert swept["best_value"] == sum(range(20)) and swept["best_params"] == {"n": 20}
    assert {t["status"] for t in swept["trials"]} == {"succeeded"}
    store = open_pipeline_store(Context(Settings.from_env({}, tracking_uri=url)))
    assert store.get_sweep(swept["sweep_id"])["best_run_id"] == swept["best_run_id"]
    assert {r.sweep_id for r in store.list_runs(name)} == {swept["sweep_id"]}

    report = _json(
        _cli(url, ["pipeline", "rerun", swept["best_run_id"], "--check", "--format", "json"], work)
    )
    assert report["matched"] is True
    graph = _cli(url, ["pipeline", "graph", swept["best_run_id"]], work).stdout
    assert "numbers" in graph and "total" in graph
    assert not (work / ".loopline").exists()

    monkeypatch.chdir(work)
    env = {"LOOPLINE_TRACKING_URI": url, "COLUMNS": "200"}

    def cli(*args: str) -> str:
        done = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
        assert done.exit_code == 0, done.output
        return done.output

    sched = f"nightly-{name}"
    cli("pipeline", "schedule", "add", sched, target, "--cron", "0 3 * * *", "-p", "n=5")
    cli("pipeline", "schedule", "disable", sched)
    [added] = [s for s in store.list_schedules() if s.name == sched]
    assert (added.cron, dict(added.params), added.enabled) == ("0 3 * * *", {"n": 5}, False)
    assert sched in cli("pipeline", "schedule", "list")
    cli("pipeline", "schedule", "remove", sched)
    assert sched not in {s.name for s in store.list_schedules()}
    assert not (work / ".loopline").exists()


# ---- bad input over HTTP ---------------------------------------------------------------------


def _run_json(**changes: Any) -> dict[str, Any]:
    run = {
        "run_id": uuid.uuid4().hex, "name": "bad", "target": "x.py:p", "status": "running", "params": {},
        "seed": 1, "executor": "local", "environment": {}, "graph": {}, "outputs": None, "error": "",
        "rerun_of": "", "sweep_id": "", "schedule": "", "host": "h", "pid": 1, "start_time": 1,
        "end_time": None,
    }  # fmt: skip
    return {**run, **changes}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "runs/create", b"{not json", 400, "Malformed JSON"),
        ("POST", "runs/create", b"[1]", 400, "JSON object"),
        ("POST", "runs/create", {}, 400, "'run'"),
        ("POST", "runs/create", {"run": _run_json(seed="1")}, 400, "run.seed"),
        ("POST", "runs/create", {"run": _run_json(seed=2**63)}, 400, "run.seed"),
        ("POST", "runs/create", {"run": _run_json(name="n" * 300)}, 400, "run.name"),
        ("POST", "runs/create", {"run": _run_json(run_id="r" * 40)}, 400, "run.run_id"),
        ("POST", "runs/create", {"run": _run_json(name="a\x00b")}, 400, "NUL"),
        ("POST", "runs/create", {"run": _run_json(status="done")}, 400, "run.status"),
        ("POST", "runs/create", {"run": _run_json(params=[1])}, 400, "run.params"),
        ("POST", "runs/create", {"run": _run_json(bogus=1)}, 400, "bogus"),
        ("POST", "runs/create", {"run": _run_json(), "steps": [["a"]]}, 400, "steps"),
        ("POST", "runs/create", {"run": _run_json(), "steps": [["a", "s"], ["a", "s"]]}, 400, "twice"),
        ("GET", f"runs/{'0' * 32}", None, 404, "No pipeline run"),
        ("POST", f"runs/{'0' * 32}/finish", {"status": "succeeded"}, 404, "No pipeline run"),
        ("POST", f"runs/{'0' * 32}/finish", {"status": "bogus"}, 400, "status"),
        ("POST", f"runs/{'0' * 32}/restart", {"executor": "local"}, 400, "pid"),
        ("POST", f"runs/{'0' * 32}/progress", {"finished": {}}, 400, "finished"),
        ("POST", f"runs/{'0' * 32}/progress", {"finished": [{"step": {"run_id": "x"}}]}, 400, "finished[0]"),
        ("POST", f"runs/{'0' * 32}/progress", {"started": "a"}, 400, "started"),
        ("POST", f"runs/{'0' * 32}/progress", {"started": ["a"], "start_time": "soon"}, 400, "start_time"),
        ("POST", "steps/known-keys", {"fingerprints": "abc"}, 400, "fingerprints"),
        ("POST", "steps/known-keys", {"fingerprints": [], "limit": -1}, 400, "limit"),
        ("GET", "steps/cached", None, 400, "cache_key"),
        ("GET", "steps/last", {"pipeline": ""}, 400, "pipeline"),
        ("GET", "runs", {"max_results": "0"}, 400, "max_results"),
        ("GET", "runs", {"include_packages": "maybe"}, 400, "include_packages"),
        ("POST", "schedules/create", {"schedule": {"name": "s"}}, 400, "schedule.target"),
        (
            "POST",
            "schedules/create",
            {
                "schedule": {
                    "name": "s",
                    "target": "t",
                    "cron": "every day",
                    "params": {},
                    "executor": "",
                    "enabled": True,
                    "created_time": 1,
                }
            },
            400,
            "cron",
        ),
        ("POST", "schedules/enable", {"name": "s", "enabled": "yes"}, 400, "enabled"),
        ("POST", "schedules/enable", {"name": "missing", "enabled": True}, 404, "No schedule"),
        ("POST", "schedules/delete", {}, 400, "name"),
        ("POST", "schedules/claim", {"name": "s", "slot_ms": "x", "claimed_by": "me"}, 400, "slot_ms"),
        ("GET", "schedules/slots", None, 400, "name"),
        (
            "POST",
            "sweeps/create",
            {
                "sweep_id": "s1",
                "name": "n",
                "target": "t",
                "method": "grid",
                "metric": "m",
                "direction": "up",
            },
            400,
            "direction",
        ),
        ("POST", "sweeps/s1/finish", {"status": "succeeded", "best_value": "high"}, 400, "best_value"),
        ("GET", "sweeps/missing", None, 404, "No sweep"),
    ],
)
def test_bad_input_is_answered_4xx_with_a_json_error(
    server: tuple[str, Path], method: str, path: str, body: Any, status: int, says: str
) -> None:
    url = f"{server[0]}/api/2.0/loopline/pipelines/{path}"
    if method == "GET":
        resp = httpx.get(url, params=body)
    elif isinstance(body, bytes):
        resp = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
    else:
        resp = httpx.post(url, json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()
    assert error["error_code"] and says in error["message"], error


# ---- the PipelineStore contract: SQLite, PostgreSQL and REST ---------------------------------


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PipelineStore:
    if request.param == "rest":
        uri = request.getfixturevalue("server")[0]
    elif request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'loopline.db'}"
    else:
        uri = request.getfixturevalue("postgres_uri")
    context = Context(Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "artifacts")))
    return open_pipeline_store(context)


def _record(name: str, **changes: Any) -> RunRecord:
    run = RunRecord(
        uuid.uuid4().hex, name, "pipe.py:p", "running", {"lr": 0.1, "layers": [1, 2]}, 7, "local",
        {"python": {"version": "3"}, "packages": ["a==1"]}, {"nodes": {}}, {"$step": "b"}, "", "", "", "",
        "host", 42, 1_000, None,
    )  # fmt: skip
    return RunRecord(**{**run.__dict__, **changes})


def _done(run: RunRecord, node: str, key: str, fp: str, **changes: Any) -> StepRecord:
    fields: dict[str, Any] = {
        "attempts": 1, "cache_key": key, "fingerprint": fp, "inputs": {"a": "d1"}, "params": {"k": [1]},
        "serializer": "json", "output_digest": "d" * 64, "output_size": 3, "output_inline": "[1]",
        "output_meta": {"rows": 1}, "reason": "ran: first run of this step", "start_time": 5, "end_time": 9,
    }  # fmt: skip
    return StepRecord(run.run_id, run.name, node, node, "succeeded", **{**fields, **changes})


def test_store_contract_runs_and_steps(store: PipelineStore) -> None:
    name = f"c{uuid.uuid4().hex[:10]}"
    run = _record(name)
    store.create_run(run, [("a", "a"), ("b", "b")])
    store.create_run(run, [("a", "a"), ("b", "b")])  # a retry (its answer lost): no second run
    with pytest.raises(AlreadyExists):
        store.create_run(_record("other", run_id=run.run_id), [])
    assert store.get_run(run.run_id) == run  # every field back as written, environment included
    assert [s.status for s in store.steps(run.run_id)] == ["pending", "pending"]
    with pytest.raises(NotFound):
        store.get_run(uuid.uuid4().hex)

    key, fp = uuid.uuid4().hex * 2, uuid.uuid4().hex
    store.progress(run.run_id, started=["a"], start_time=4)
    assert store.steps(run.run_id)[0].status == "running"
    assert store.find_cached(key) is None and store.known_keys([fp]) == set()
    a = _done(run, "a", key, fp)
    store.progress(
        run.run_id, finished=[Finished(a, (), ("datasets:/d/1",), ())], started=["b"], start_time=9
    )
    by_node = {s.node: s for s in store.steps(run.run_id)}
    assert by_node["a"] == a and by_node["b"].status == "running" and by_node["b"].start_time == 9
    assert store.find_cached(key) == a
    assert store.known_keys([fp, "f" * 64]) == {key}
    assert store.known_keys([fp], limit=0) is None  # more than the caller can hold

    later = _record(name, start_time=2_000)
    store.create_run(later, [("a", "a")])
    assert store.last_steps(name, later.run_id) == {"a": a}
    store.progress(
        later.run_id, finished=[Finished(_done(later, "a", key, fp, output_inline="[2]"), (), (), ())]
    )
    assert store.find_cached(key) is not None and store.find_cached(key).output_inline == "[2]"  # newest

    store.add_inputs(run.run_id, name, ["datasets:/d/1"])
    store.finish_run(run.run_id, "failed", {"template": None}, "boom")
    failed = store.get_run(run.run_id)
    assert (failed.status, failed.error, failed.outputs) == ("failed", "boom", {"template": None})
    assert failed.end_time is not None
    store.restart_run(run.run_id, host="h2", pid=43, executor="ray")
    again = store.get_run(run.run_id)
    assert (again.status, again.host, again.pid, again.executor, again.error) == (
        "running",
        "h2",
        43,
        "ray",
        "",
    )
    assert again.end_time is None

    assert [r.run_id for r in store.list_runs(name)] == [later.run_id, run.run_id]  # newest first
    assert [r.run_id for r in store.list_runs(name, status="running", limit=1)] == [later.run_id]
    with pytest.raises(NotFound):
        store.progress(run.run_id, finished=[Finished(_done(run, "nope", key, fp))])


def test_store_contract_schedules_and_sweeps(store: PipelineStore) -> None:
    name = f"s{uuid.uuid4().hex[:10]}"
    future = 4_102_444_800_000  # 2100: no scheduler claims a slot of it meanwhile
    s = ScheduleRecord(name, "pipe.py:p", "0 * * * *", {"lr": 0.1}, "", True, future)
    store.add_schedule(s)
    store.add_schedule(s)  # the same again (a retry): no-op
    with pytest.raises(AlreadyExists):
        store.add_schedule(ScheduleRecord(name, "other.py:p", "0 * * * *", {}, "", True, future))
    assert [x for x in store.list_schedules() if x.name == name] == [s]
    store.set_schedule_enabled(name, False)
    assert name not in {x.name for x in store.list_schedules(enabled_only=True)}
    assert [x.enabled for x in store.list_schedules() if x.name == name] == [False]
    with pytest.raises(NotFound):
        store.set_schedule_enabled(f"{name}-missing", True)

    assert store.claim_slot(name, 60_000, "me") is True
    assert store.claim_slot(name, 60_000, "me") is True  # my retry
    assert store.claim_slot(name, 60_000, "you") is False  # the slot is mine
    store.set_slot_result(name, 60_000, run_id="r" * 32)
    assert store.slots(name) == [(60_000, "me", "r" * 32, "")]
    store.remove_schedule(name)
    assert name not in {x.name for x in store.list_schedules()}
    with pytest.raises(NotFound):
        store.remove_schedule(name)

    sweep_id = uuid.uuid4().hex
    space = {"lr": [0.1, 1.0]}
    store.create_sweep(sweep_id, name, "pipe.py:p", "grid", "auc", "max", space)
    store.create_sweep(sweep_id, name, "pipe.py:p", "grid", "auc", "max", space)  # a retry
    with pytest.raises(InvalidInput):
        store.create_sweep(uuid.uuid4().hex, name, "pipe.py:p", "grid", "auc", "up", space)
    store.finish_sweep(sweep_id, "succeeded", "b" * 32, 0.75)
    got = store.get_sweep(sweep_id)
    assert (got["status"], got["best_run_id"], got["best_value"], got["space"]) == (
        "succeeded",
        "b" * 32,
        "0.75",
        space,
    )
    with pytest.raises(NotFound):
        store.get_sweep(uuid.uuid4().hex)


def test_the_openapi_document_describes_the_pipeline_routes(server: tuple[str, Path]) -> None:
    doc = httpx.get(f"{server[0]}/openapi.json").json()
    api = "/api/2.0/loopline/pipelines"
    assert {f"{api}/runs/create", f"{api}/runs/{{run_id}}/progress", f"{api}/steps/cached"} <= set(
        doc["paths"]
    )
    step = doc["components"]["schemas"]["StepRecord"]["properties"]
    assert {"cache_key", "output_digest", "output_inline"} <= set(step)
