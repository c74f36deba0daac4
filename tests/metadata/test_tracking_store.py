"""The tracking-store contract, run against SQLite and PostgreSQL (the ``store_uri`` fixture)."""

from __future__ import annotations

import math

import pytest

from loopline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopline.metadata.engine import create_store_engine
from loopline.metadata.lineage import downstream, list_events, upstream
from loopline.tracking.sql_store import SqlTrackingStore
from loopline.tracking.types import (
    Dataset,
    DatasetInput,
    LifecycleStage,
    Metric,
    Param,
    RunStatus,
    RunTag,
)


@pytest.fixture
def store(store_uri: str) -> SqlTrackingStore:
    return SqlTrackingStore(create_store_engine(store_uri), actor="alice")


def test_default_experiment_exists_with_id_zero(store: SqlTrackingStore) -> None:
    exp = store.get_experiment("0")
    assert exp.name == "Default"
    assert exp.artifact_location == "mlflow-artifacts:/0"


def test_experiment_lifecycle(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("churn", tags={"team": "ml"})
    exp = store.get_experiment(exp_id)
    assert (exp.name, exp.tags["team"], exp.artifact_location) == (
        "churn",
        "ml",
        f"mlflow-artifacts:/{exp_id}",
    )
    assert store.get_experiment_by_name("churn") == exp
    assert store.get_experiment_by_name("nope") is None
    with pytest.raises(AlreadyExists, match="already exists"):
        store.create_experiment("churn")
    store.rename_experiment(exp_id, "churn2")
    store.set_experiment_tag(exp_id, "team", "ds")
    assert store.get_experiment(exp_id).tags["team"] == "ds"
    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == LifecycleStage.DELETED
    names = [e.name for e in store.search_experiments().items]
    assert "churn2" not in names and "Default" in names
    assert "churn2" in [e.name for e in store.search_experiments("DELETED_ONLY").items]
    store.restore_experiment(exp_id)
    assert [e.name for e in store.search_experiments(filter_string="name LIKE 'chu%'").items] == ["churn2"]
    with pytest.raises(NotFound):
        store.get_experiment("99999")
    with pytest.raises(InvalidInput, match="integers"):
        store.get_experiment("abc")


def test_run_round_trip(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("e")
    run = store.create_run(exp_id, "bob", 1000, [RunTag("k", "v")], "first")
    rid = run.info.run_id
    assert len(rid) == 32 and run.info.status == RunStatus.RUNNING
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{rid}/artifacts"
    store.log_batch(
        rid,
        metrics=[Metric("loss", 1.0, 10, 0), Metric("loss", 0.5, 20, 1), Metric("nan", math.nan, 5, 0)],
        params=[Param("lr", "0.1")],
        tags=[RunTag("stage", "dev")],
    )
    got = store.get_run(rid)
    assert got.info.run_name == "first" and got.info.user_id == "bob" and got.info.start_time == 1000
    assert got.data.params == {"lr": "0.1"}
    assert got.data.tags["stage"] == "dev" and got.data.tags["mlflow.runName"] == "first"
    assert got.data.metrics["loss"] == 0.5
    assert math.isnan(got.data.metrics["nan"])
    info = store.update_run_info(rid, RunStatus.FINISHED, 2000, "renamed")
    assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, 2000, "renamed")
    assert store.get_run(rid).data.tags["mlflow.runName"] == "renamed"


def test_latest_metric_is_highest_step_not_last_written(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    store.log_batch(rid, [Metric("m", 3.0, 100, 5)])
    store.log_batch(rid, [Metric("m", 1.0, 200, 2)])  # later write, earlier step
    assert store.get_run(rid).data.metrics["m"] == 3.0
    store.log_batch(rid, [Metric("m", 7.0, 50, 9), Metric("m", 8.0, 40, 9)])  # same step: newer ts wins
    assert store.get_run(rid).data.metrics["m"] == 7.0


def test_params_are_immutable(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    store.log_batch(rid, params=[Param("p", "1")])
    store.log_batch(rid, params=[Param("p", "1")])  # the same value again is fine
    with pytest.raises(InvalidInput, match="Changing param values is not allowed"):
        store.log_batch(rid, params=[Param("p", "2")])
    with pytest.raises(InvalidInput, match="twice in one batch"):
        store.log_batch(rid, params=[Param("q", "1"), Param("q", "2")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": [Metric("m", 1.0, 0, 0)] * 1001}, "limit is 1000"),
        ({"params": [Param(f"p{i}", "v") for i in range(101)]}, "limit is 100"),
        ({"tags": [RunTag(f"t{i}", "v") for i in range(101)]}, "limit is 100"),
        ({"metrics": [Metric("../x", 1.0, 0, 0)]}, "Invalid metric name"),
        ({"params": [Param("p", "x" * 6001)]}, "limit is 6000"),
        ({"metrics": [Metric("m", "abc", 0, 0)]}, "non-numeric"),  # type: ignore[arg-type]
    ],
)
def test_bad_batches_are_refused_and_nothing_is_written(
    store: SqlTrackingStore, kwargs: dict[str, object], message: str
) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    with pytest.raises(InvalidInput, match=message):
        store.log_batch(rid, **kwargs)  # type: ignore[arg-type]
    run = store.get_run(rid)
    assert run.data.params == {} and run.data.metrics == {}


def test_failed_batch_rolls_back_whole_transaction(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    store.log_batch(rid, params=[Param("p", "1")])
    with pytest.raises(InvalidInput):
        store.log_batch(rid, metrics=[Metric("m", 1.0, 0, 0)], params=[Param("p", "2")])
    assert store.get_run(rid).data.metrics == {}
    assert store.count_metric_points(rid) == 0


def test_deleted_runs_refuse_writes_and_can_be_restored(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    store.delete_run(rid)
    with pytest.raises(InvalidInput, match="must be in the 'active' state"):
        store.log_batch(rid, [Metric("m", 1.0, 0, 0)])
    store.restore_run(rid)
    store.log_batch(rid, [Metric("m", 1.0, 0, 0)])
    with pytest.raises(NotFound, match="not found"):
        store.get_run("0" * 32)


def test_metric_history_pages_in_mlflow_order(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    points = [Metric("m", float(i), 1000 + (i * 7) % 50, i) for i in range(50)]
    store.log_batch(rid, points)
    seen, token = [], None
    while True:
        page = store.get_metric_history(rid, "m", max_results=8, page_token=token)
        seen += page.items
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen, key=lambda m: m.value) == sorted(points, key=lambda m: m.value)
    assert [(m.timestamp, m.step) for m in seen] == sorted((m.timestamp, m.step) for m in points)
    with pytest.raises(InvalidInput, match="page token"):
        store.get_metric_history(rid, "m", 5, page_token="WyJhIiwiYiJd")  # ["a","b"]


def test_a_point_logged_twice_is_stored_once(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    for _ in range(2):  # a client retrying a request whose answer was lost
        store.log_batch(rid, [Metric("m", 1.0, 1000, 0), Metric("m", math.nan, 1000, 0)])
    assert store.count_metric_points(rid) == 2


def test_nul_characters_are_refused(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    with pytest.raises(InvalidInput, match="NUL"):
        store.log_batch(rid, params=[Param("p", "a\x00b")])
    with pytest.raises(InvalidInput, match="NUL"):
        store.create_experiment("x\x00y")


def test_search_runs_filters_and_orders(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("e")
    other = store.create_experiment("other")
    ids = {}
    for i, (acc, model) in enumerate([(0.9, "rf"), (0.7, "lr"), (0.8, "rf"), (None, "svm")]):
        rid = store.create_run(exp, start_time=1000 + i, run_name=f"r{i}").info.run_id
        store.log_batch(
            rid,
            [Metric("acc", acc, 0, 0)] if acc is not None else [],
            [Param("model", model)],
            [RunTag("team", "a" if i % 2 else "b")],
        )
        ids[i] = rid
    store.create_run(other, run_name="elsewhere")
    store.update_run_info(ids[0], RunStatus.FINISHED, 5000)

    def names(
        filter_string: str | None = None, order_by: list[str] | None = None, exps: list[str] | None = None
    ) -> list[str]:
        page = store.search_runs(exps if exps is not None else [exp], filter_string, order_by=order_by)
        return [r.info.run_name for r in page.items]

    assert names() == ["r3", "r2", "r1", "r0"]  # newest first by default
    assert names("metrics.acc > 0.75", ["metrics.acc ASC"]) == ["r2", "r0"]
    assert names(None, ["metrics.acc DESC"]) == ["r0", "r2", "r1", "r3"]  # missing key sorts last
    assert names(None, ["metrics.acc ASC"]) == ["r1", "r2", "r0", "r3"]
    assert names("params.model = 'rf'", ["attributes.start_time"]) == ["r0", "r2"]
    assert names("params.model IN ('lr', 'svm')") == ["r3", "r1"]
    assert names("tags.team = 'a' and params.model != 'lr'") == ["r3"]
    assert names("attributes.status = 'FINISHED'") == ["r0"]
    assert names("run_name LIKE 'r%' AND metrics.acc <= 0.8", ["params.model DESC"]) == ["r2", "r1"]
    assert names("tags.missing IS NULL and params.model ILIKE 'RF'") == ["r2", "r0"]
    assert names("params.model LIKE 'R%'") == []  # LIKE is case-sensitive on every backend
    assert names("params.model LIKE 'r%'") == ["r2", "r0"]
    assert names(f"attributes.run_id = '{ids[1]}'") == ["r1"]
    assert set(names(exps=[])) == {"r0", "r1", "r2", "r3", "elsewhere"}  # across experiments
    assert store.count_runs([exp], "metrics.acc > 0.75") == 2
    light = store.search_runs([exp], include=("metrics",)).items[0]
    assert light.data.params == {} and light.data.tags == {}


def test_search_runs_pages(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("e")
    for i in range(7):
        store.create_run(exp, start_time=i)
    seen, token = [], None
    while True:
        page = store.search_runs([exp], max_results=3, page_token=token)
        seen += [r.info.run_id for r in page.items]
        if not (token := page.next_page_token):
            break
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.acc >",
        "metrics.acc > 'x'",
        "params.p > '1'",
        "foo.x = '1'",
        "metrics.a > 1 OR metrics.b > 1",
        "attributes.nope = 'x'",
    ],
)
def test_bad_filters_are_clear_errors(store: SqlTrackingStore, bad: str) -> None:
    with pytest.raises(InvalidInput):
        store.search_runs(["0"], bad)


def test_dataset_inputs_and_lineage(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("e")
    rid = store.create_run(exp).info.run_id
    ds = DatasetInput(Dataset("iris", "abc123", "local", "/data/iris.csv"), {"mlflow.data.context": "train"})
    store.log_inputs(rid, [ds, ds])  # logging twice does not duplicate
    got = store.get_run(rid).inputs
    assert got == (ds,)
    assert [r.info.run_id for r in store.search_runs([exp], "datasets.context = 'train'").items] == [rid]
    edges = downstream(store.engine, "default", "datasets:/iris/abc123")
    assert [(e.to_uri, e.relation) for e in edges] == [(f"runs:/{rid}", "input_of")]
    assert upstream(store.engine, "default", f"runs:/{rid}")[0].from_uri == "datasets:/iris/abc123"


def test_every_mutation_appends_an_event_with_its_actor(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("e")).info.run_id
    store.log_batch(rid, [Metric("m", 1.0, 0, 0)])
    store.delete_run(rid)
    events = list_events(store.engine, "default", f"runs:/{rid}")
    assert [e.action for e in events] == ["run.delete", "run.log_batch", "run.create"]
    assert {e.actor for e in events} == {"alice"}
    assert events[1].payload == {"metrics": 1, "params": 0, "tags": 0}


def test_workspaces_do_not_see_each_other(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("shared-name")
    rid = store.create_run(exp).info.run_id
    other = store.scoped(workspace="team-b", actor="carol")
    assert other.get_experiment_by_name("shared-name") is None
    other.create_experiment("shared-name")  # same name, other workspace: allowed
    with pytest.raises(NotFound):
        other.get_run(rid)
    assert other.search_runs([]).items == []


def test_purge_removes_only_deleted_runs(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("e")
    keep = store.create_run(exp).info.run_id
    gone = store.create_run(exp).info.run_id
    store.log_batch(gone, [Metric("m", 1.0, 0, i) for i in range(10)], [Param("p", "1")])
    with pytest.raises(Conflict):
        store.purge_runs([keep])
    store.delete_run(gone)
    assert [r.run_id for r in store.deleted_runs()] == [gone]
    assert store.purge_runs([gone]) == 1
    assert store.count_metric_points(gone) == 0
    with pytest.raises(NotFound):
        store.get_run(gone)
    store.get_run(keep)


# ---- a run created whole: client-chosen ID, first batch, final status -------------------------


def _whole_run(store: SqlTrackingStore, exp_id: str, run_id: str, start: int = 1_000) -> None:
    store.create_run(
        exp_id,
        "alice",
        start,
        [RunTag("team", "ml")],
        "whole",
        run_id=run_id,
        params=[Param("lr", "0.1"), Param("depth", "3")],
        metrics=[
            Metric("loss", 0.5, 1_001, 0),
            Metric("loss", 0.25, 1_002, 1),
            Metric("acc", float("nan"), 1_003),
        ],
        status=RunStatus.FINISHED,
        end_time=2_000,
    )


def test_create_run_whole_in_one_transaction(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("whole")
    run_id = "ab" * 16
    _whole_run(store, exp_id, run_id)
    run = store.get_run(run_id)
    assert (run.info.run_id, run.info.status, run.info.start_time, run.info.end_time) == (
        run_id,
        RunStatus.FINISHED,
        1_000,
        2_000,
    )
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    assert run.data.params == {"lr": "0.1", "depth": "3"}
    assert run.data.tags["team"] == "ml" and run.data.tags["mlflow.runName"] == "whole"
    assert run.data.metrics["loss"] == 0.25 and math.isnan(run.data.metrics["acc"])
    assert [m.value for m in store.get_metric_history(run_id, "loss").items] == [0.5, 0.25]
    # One call, one event, which says what it wrote.
    events = list_events(store.engine, "default", f"runs:/{run_id}")
    assert [(e.action, e.payload["status"], e.payload["params"], e.payload["metrics"]) for e in events] == [
        ("run.create", "FINISHED", 2, 3)
    ]
    assert (
        store.search_runs([exp_id], "metrics.loss < 0.3 and params.depth = '3'").items[0].info.run_id
        == run_id
    )


def test_create_run_with_a_taken_id_conflicts_unless_it_is_a_retry(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("ids")
    run_id = "cd" * 16
    _whole_run(store, exp_id, run_id)
    _whole_run(store, exp_id, run_id)  # the same call again (an answer lost in transit): no change
    assert len(store.get_metric_history(run_id, "loss").items) == 2
    assert len(list_events(store.engine, "default", f"runs:/{run_id}")) == 1
    with pytest.raises(Conflict, match="already in use"):
        _whole_run(store, exp_id, run_id, start=5_000)  # another run wanting the same ID
    with pytest.raises(Conflict, match="already in use"):
        store.create_run(store.create_experiment("other"), "alice", 1_000, (), "whole", run_id=run_id)


@pytest.mark.parametrize("bad", ["ABCD" * 8, "ab" * 15, "../../etc/passwd", "g" * 32, 7])
def test_create_run_refuses_malformed_ids(store: SqlTrackingStore, bad: object) -> None:
    with pytest.raises(InvalidInput, match="32 lowercase hex"):
        store.create_run("0", run_id=bad)  # type: ignore[arg-type]


def test_create_run_checks_its_batch_like_log_batch(store: SqlTrackingStore) -> None:
    with pytest.raises(InvalidInput, match="needs an end_time"):
        store.create_run("0", status=RunStatus.FINISHED)
    with pytest.raises(InvalidInput, match="limit is 100"):
        store.create_run("0", params=[Param(f"p{i}", "x") for i in range(101)])
    with pytest.raises(InvalidInput, match="different values"):
        store.create_run("0", params=[Param("p", "1"), Param("p", "2")])
    exp_id = store.create_experiment("gone")
    store.delete_experiment(exp_id)
    with pytest.raises(InvalidInput, match="deleted"):
        store.create_run(exp_id, run_id="ef" * 16, params=[Param("p", "1")])
    assert store.search_runs(["0", exp_id], run_view_type="ALL").items == []  # nothing half-written


def test_a_metric_history_can_be_read_within_a_step_or_time_range(store: SqlTrackingStore) -> None:
    rid = store.create_run(store.create_experiment("zoom"), "bob", 1000).info.run_id
    store.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1), 1000 + s * 10, s) for s in range(100)])
    rows, _ = store.metric_history_rows(rid, "loss", within=("step", 10, 19))
    assert [r[1] for r in rows] == list(range(10, 20))
    rows, _ = store.metric_history_rows(rid, "loss", within=("timestamp", 1900, None))
    assert [r[1] for r in rows] == list(range(90, 100))
    assert len(store.metric_history_rows(rid, "loss")[0]) == 100
    with pytest.raises(InvalidInput, match="step or timestamp"):
        store.metric_history_rows(rid, "loss", within=("value; DROP TABLE metrics", 0, 1))
