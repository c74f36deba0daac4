"""Sweeps (grid, random, Optuna) as tracked pipeline runs; cron slots claimed once; the server's routes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pipeline_support import write

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.metadata.engine import create_store_engine
from loopline.pipelines import Runner, pipeline, step, sweep
from loopline.pipelines.schedule import Scheduler, due_slot
from loopline.pipelines.sql_store import ScheduleRecord, SqlPipelineStore
from loopline.pipelines.sweeps import parse_space

CALLS: list[str] = []


@step
def prepare(n: int) -> list[float]:
    CALLS.append("prepare")
    return [float(i) for i in range(n)]


@step
def score(xs: list[float], lr: float, depth: int) -> dict[str, float]:
    return {"loss": (lr - 0.1) ** 2 + abs(depth - 3) + 0 * sum(xs)}


@pipeline
def tune(lr: float = 0.5, depth: int = 1, n: int = 4) -> Any:
    return score(prepare(n), lr, depth)


def test_a_grid_sweep_runs_tracked_trials_shares_the_cache_and_marks_the_best(settings: Settings) -> None:
    CALLS.clear()
    result = sweep(
        tune,
        {"lr": [0.01, 0.1, 1.0], "depth": [2, 3]},
        metric="loss",
        direction="min",
        settings=settings,
        parallel=2,
    )
    assert len(result.trials) == 6 and all(t.status == "succeeded" for t in result.trials)
    best = result.best
    assert best is not None and best.params == {"lr": 0.1, "depth": 3} and best.value == 0.0
    assert CALLS.count("prepare") <= 2  # the unswept step ran once (twice at worst, when two trials raced)
    with Runner(settings) as runner:
        client = runner.client
        assert client.get_run(best.run_id).data.tags["loopline.sweep.best"] == "true"
        assert {t.run_id for t in result.trials} == {
            r.run_id for r in runner.store.list_runs(sweep_id=result.sweep_id)
        }
        other = next(t for t in result.trials if t is not best)
        assert "loopline.sweep.best" not in client.get_run(other.run_id).data.tags
        parent = client.get_run(result.sweep_id)
        assert parent.data.params["best.lr"] == "0.1" and parent.data.metrics["best_loss"] == 0.0
        assert client.get_run(other.run_id).data.tags["mlflow.parentRunId"] == result.sweep_id
        assert runner.store.get_sweep(result.sweep_id)["best_run_id"] == best.run_id


def test_random_and_optuna_sweeps_sample_the_space(settings: Settings) -> None:
    space = parse_space(["lr=loguniform:0.001:1", "depth=int:1:5"])
    for method in ("random", "optuna"):
        result = sweep(
            tune, space, metric="loss", direction="min", method=method, trials=4, settings=settings
        )
        assert len(result.trials) == 4
        for t in result.trials:
            assert 0.001 <= t.params["lr"] <= 1 and t.params["depth"] in range(1, 6) and t.value is not None
    with pytest.raises(InvalidInput, match="A grid needs listed values"):
        sweep(tune, space, metric="loss", settings=settings)
    with pytest.raises(InvalidInput, match="has no parameter 'epochs'"):
        sweep(tune, {"epochs": [1, 2]}, settings=settings)
    assert parse_space(["k=rbf,linear", "c=choice:1,2"])["c"].values == (1, 2)


def test_due_slot_is_the_newest_slot_at_or_before_now() -> None:
    at = int(dt.datetime(2026, 1, 1, 10, 30, tzinfo=dt.UTC).timestamp() * 1000)
    assert due_slot("0 * * * *", at) == int(dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC).timestamp() * 1000)
    exactly = int(dt.datetime(2026, 1, 1, 11, 0, tzinfo=dt.UTC).timestamp() * 1000)
    assert due_slot("0 * * * *", exactly) == exactly


def test_a_slot_runs_once_across_racing_schedulers_and_restarts(any_settings: Settings) -> None:
    engine = create_store_engine(any_settings.tracking_uri)
    store = SqlPipelineStore(engine, workspace="default", actor="tester")
    created = int(dt.datetime(2026, 1, 1, 9, 59, tzinfo=dt.UTC).timestamp() * 1000)
    store.add_schedule(ScheduleRecord("hourly", "pkg.mod:train", "0 * * * *", {"lr": 0.1}, "", True, created))
    launched: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def launcher(who: str) -> Any:
        def launch(s: ScheduleRecord, slot: int) -> None:
            with lock:
                launched.append((s.name, slot, who))

        return launch

    now = int(dt.datetime(2026, 1, 1, 10, 0, 30, tzinfo=dt.UTC).timestamp() * 1000)
    schedulers = [Scheduler(store, launcher(f"server{i}"), identity=f"server{i}") for i in range(4)]
    threads = [threading.Thread(target=s.tick, args=(now,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(launched) == 1  # four servers raced for the 10:00 slot: one won
    winner = schedulers[int(launched[0][2].removeprefix("server"))]
    assert winner.tick(now + 1_000) == [] and len(launched) == 1  # its next tick does not launch it again
    # a restarted server (a new scheduler, same database) does not run the slot again
    assert Scheduler(store, launcher("restarted")).tick(now + 60_000) == []
    later = now + 3600_000
    assert Scheduler(store, launcher("restarted")).tick(later) == [("hourly", due_slot("0 * * * *", later))]
    assert [s[0] for s in store.slots("hourly")] == [due_slot("0 * * * *", now), due_slot("0 * * * *", later)]
    store.set_schedule_enabled("hourly", False)
    assert Scheduler(store, launcher("x")).tick(later + 3600_000) == []
    with pytest.raises(Exception, match="exists already"):
        store.add_schedule(ScheduleRecord("hourly", "pkg.mod:train", "0 * * * *", {}, "", True, created))


NIGHTLY = """
from loopline.pipelines import pipeline, step

@step
def hello(name: str) -> str:
    return f"hello {name}"

@pipeline
def greet(name: str = "world"):
    return hello(name)
"""


@pytest.fixture
def scheduled_server_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The database the loopline_server fixture will open, with an every-minute schedule in it."""
    settings = Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifacts_uri=str(tmp_path / "server-artifacts"),
    )
    target = f"{write(tmp_path / 'proj', nightly=NIGHTLY) / 'nightly.py'}:greet"
    store = SqlPipelineStore(create_store_engine(settings.tracking_uri), workspace="default", actor="tester")
    created = int(dt.datetime.now(dt.UTC).timestamp() * 1000) - 120_000
    store.add_schedule(ScheduleRecord("minutely", target, "* * * * *", {"name": "cron"}, "", True, created))
    monkeypatch.setenv("LOOPLINE_SCHEDULER_INTERVAL", "0.5")
    return settings


def test_the_server_runs_due_schedules_and_lists_pipeline_runs(
    tmp_path: Path, scheduled_server_db: Settings, loopline_server: str
) -> None:
    api = f"{loopline_server}/api/2.0/loopline/pipelines"
    deadline = time.monotonic() + 90
    while True:  # the server's scheduler claims the current minute's slot and launches the run
        runs = httpx.get(f"{api}/runs", params={"name": "greet"}).json()["runs"]
        finished = [r for r in runs if r["status"] != "running"]
        if finished:
            break
        assert time.monotonic() < deadline, "the scheduled run did not finish"
        time.sleep(0.25)
    run = finished[-1]  # (a new minute may have started a second slot meanwhile)
    assert (
        run["status"] == "succeeded" and run["schedule"] == "minutely" and run["params"] == {"name": "cron"}
    )
    assert run["uri"] == f"pipelines:/greet/{run['run_id']}" and "packages" not in run["environment"]
    [schedule] = httpx.get(f"{api}/schedules").json()["schedules"]
    assert schedule["name"] == "minutely" and schedule["last_slot_ms"] is not None
    slots = SqlPipelineStore(
        create_store_engine(scheduled_server_db.tracking_uri), workspace="default"
    ).slots("minutely")
    assert run["run_id"] in {run_id for _, _, run_id, _ in slots}  # the slot records the run it launched
    shown = httpx.get(f"{api}/runs/{run['run_id']}").json()
    assert shown["steps"][0]["node"] == "hello" and shown["steps"][0]["output_inline"] == '"hello cron"'
    assert httpx.get(f"{api}/runs/nope").status_code == 404
