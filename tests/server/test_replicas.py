"""Several ``loopline server`` replicas on one PostgreSQL and one artifact root, as behind a load
balancer: concurrent writes through different replicas stay gapless and lose nothing, and a cron
schedule that every replica's scheduler sees fires once per slot, in whichever workspace it is."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support import serve_loopline

from loopline.config import Settings
from loopline.metadata.engine import create_store_engine
from loopline.metadata.lineage import list_events
from loopline.pipelines.sql_store import ScheduleRecord, SqlPipelineStore
from loopline.registry import RegistryClient
from loopline.tracking import Client

GREET = """
from loopline.pipelines import pipeline, step


@step
def hello(name: str) -> str:
    return f"hello {name}"


@pipeline
def greet(name: str = "world"):
    return hello(name)
"""


@pytest.fixture
def replicas(
    tmp_path: Path, postgres_uri: str, request: pytest.FixtureRequest
) -> Iterator[tuple[list[str], str, Path]]:
    """Two replicas on one fresh PostgreSQL database. Indirect parameter: (setup, environment), the
    setup run on the database before the replicas start, the environment given to both."""
    setup, extra = getattr(request, "param", (None, {}))
    if setup is not None:
        setup(postgres_uri, tmp_path)
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(
                serve_loopline(
                    tmp_path / f"replica{i}",
                    store=postgres_uri,
                    artifacts=str(tmp_path / "artifacts"),
                    env=extra,
                )
            )
            for i in range(2)
        ]
        yield urls, postgres_uri, tmp_path


def _client(url: str) -> Client:
    return Client(Settings.from_env({}, tracking_uri=url, user="replica-test"))


def test_concurrent_registrations_and_runs_through_two_replicas_are_gapless(
    replicas: tuple[list[str], str, Path],
) -> None:
    urls, _, _ = replicas
    RegistryClient(_client(urls[0])).store.create_registered_model("shared")
    per_worker = 6

    def register(worker: int) -> list[int]:
        client = _client(urls[worker % 2])  # alternate replicas, as a load balancer would
        registry = RegistryClient(client)
        exp = client.set_experiment("replicas").experiment_id
        made = []
        for i in range(per_worker):
            run = client.create_run(exp, run_name=f"w{worker}-{i}")
            client.log_metric(run.info.run_id, "loss", float(i), step=i)
            client.set_terminated(run.info.run_id)
            mv = registry.store.create_model_version(
                "shared", f"runs:/{run.info.run_id}/model", run.info.run_id
            )
            made.append(int(mv.version))
        client.close()
        return made

    with ThreadPoolExecutor(4) as pool:
        versions = [v for made in pool.map(register, range(4)) for v in made]
    assert sorted(versions) == list(range(1, 4 * per_worker + 1))  # no gap, no duplicate
    # Every acknowledged write is visible through either replica.
    for url in urls:
        client = _client(url)
        exp = client.get_experiment_by_name("replicas")
        assert exp is not None
        runs = client.search_runs([exp.experiment_id], max_results=1000)
        assert len(runs) == 4 * per_worker
        assert all(r.data.metrics.get("loss") is not None for r in runs)
        client.close()


def _schedule_greet(store_uri: str, tmp_path: Path, workspace: str = "default") -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "greet_flow.py").write_text(GREET)
    store = SqlPipelineStore(create_store_engine(store_uri), workspace=workspace, actor="tester")
    created = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 120_000
    target = f"{tmp_path / 'proj' / 'greet_flow.py'}:greet"
    store.add_schedule(ScheduleRecord("minutely", target, "* * * * *", {"name": "cron"}, "", True, created))


@pytest.mark.parametrize(
    "replicas", [(_schedule_greet, {"LOOPLINE_SCHEDULER_INTERVAL": "0.3"})], indirect=True, ids=["cron"]
)
def test_a_schedule_seen_by_every_replica_fires_once_per_slot(replicas: tuple[list[str], str, Path]) -> None:
    urls, store_uri, _ = replicas
    deadline = time.monotonic() + 60
    while True:  # both schedulers poll every 0.3 s; one of them claims the current minute's slot
        runs = httpx.get(f"{urls[0]}/api/2.0/loopline/pipelines/runs", params={"name": "greet"}).json()[
            "runs"
        ]
        if any(r["status"] == "succeeded" for r in runs):
            break
        assert time.monotonic() < deadline, "the scheduled run did not finish"
        time.sleep(0.3)
    time.sleep(1.5)  # several more polls of both schedulers: none may launch the same slot again
    slots = SqlPipelineStore(create_store_engine(store_uri), workspace="default").slots("minutely")
    runs = httpx.get(f"{urls[1]}/api/2.0/loopline/pipelines/runs", params={"name": "greet"}).json()["runs"]
    assert len({slot for slot, *_ in slots}) == len(slots)  # one claim per slot
    assert len(runs) == len(slots)  # one run per claimed slot, whichever replica claimed it
    assert {r["run_id"] for r in runs} == {run_id for _, _, run_id, _ in slots}


def _schedule_greet_in_team_a(store_uri: str, tmp_path: Path) -> None:
    _schedule_greet(store_uri, tmp_path, "team-a")


@pytest.mark.parametrize(
    "replicas",
    [(_schedule_greet_in_team_a, {"LOOPLINE_SCHEDULER_INTERVAL": "0.3", "LOOPLINE_USER": "scheduler"})],
    indirect=True,
    ids=["team-a"],
)
def test_a_schedule_of_another_workspace_fires_once_per_slot_in_it(
    replicas: tuple[list[str], str, Path],
) -> None:
    """Both replicas serve the server's own workspace ("default"); the schedule is team-a's."""
    urls, store_uri, _ = replicas
    api, team_a = "/api/2.0/loopline/pipelines/runs", {"Loopline-Workspace": "team-a"}
    deadline = time.monotonic() + 60
    while True:
        runs = httpx.get(f"{urls[0]}{api}", params={"name": "greet"}, headers=team_a).json()["runs"]
        if any(r["status"] == "succeeded" for r in runs):
            break
        assert time.monotonic() < deadline, "the scheduled run in team-a did not finish"
        time.sleep(0.3)
    time.sleep(1.5)  # several more polls of both schedulers
    engine = create_store_engine(store_uri)
    slots = SqlPipelineStore(engine, workspace="team-a").slots("minutely")
    runs = httpx.get(f"{urls[1]}{api}", params={"name": "greet"}, headers=team_a).json()["runs"]
    assert len({slot for slot, *_ in slots}) == len(slots) == len(runs)  # one claim and one run per slot
    assert {r["run_id"] for r in runs} == {run_id for _, _, run_id, _ in slots}
    assert httpx.get(f"{urls[0]}{api}", params={"name": "greet"}).json()["runs"] == []  # none in default
    # The claims and the runs are recorded in team-a, as the servers' user.
    claims = list_events(engine, "team-a", "pipelines:/minutely", limit=100)
    assert {(e.action, e.actor) for e in claims} >= {("pipeline_schedule.claim", "scheduler")}
    assert list_events(engine, "default", "pipelines:/minutely", limit=100) == []
    run = list_events(engine, "team-a", f"pipelines:/greet/{runs[0]['run_id']}", limit=100)
    assert run and {e.actor for e in run} == {"scheduler"}
