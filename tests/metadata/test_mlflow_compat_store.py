"""Store behaviour MLflow's REST suite asked for (issue 17), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time

import pytest

from loopline.errors import InvalidInput, NotFound
from loopline.metadata.engine import create_store_engine
from loopline.metadata.lineage import downstream, upstream
from loopline.registry.sql_store import SqlRegistryStore
from loopline.registry.types import ModelMetric
from loopline.tracking.sql_store import SqlTrackingStore
from loopline.tracking.types import Metric


@pytest.fixture
def stores(store_uri: str) -> tuple[SqlTrackingStore, SqlRegistryStore]:
    engine = create_store_engine(store_uri)
    return SqlTrackingStore(engine, actor="bo"), SqlRegistryStore(engine, actor="bo")


def test_a_version_of_a_run_kept_elsewhere_gets_an_external_edge(
    stores: tuple[SqlTrackingStore, SqlRegistryStore],
) -> None:
    tracking, reg = stores
    reg.create_registered_model("fraud")
    foreign = "0123456789abcdef0123456789abcdef"
    reg.create_model_version("fraud", f"runs:/{foreign}/model", run_id=foreign)
    local = tracking.create_run(tracking.create_experiment("fraud-training")).info.run_id
    reg.create_model_version("fraud", "mlflow-artifacts:/1/x", run_id=local)

    (edge,) = upstream(reg.engine, "default", "models:/fraud/1")
    assert (edge.from_uri, edge.relation, edge.external) == (f"runs:/{foreign}", "produced", True)
    (edge,) = upstream(reg.engine, "default", "models:/fraud/2")
    assert (edge.from_uri, edge.external) == (f"runs:/{local}", False)
    with pytest.raises(InvalidInput, match="at most 32 characters"):  # the column's size, on PostgreSQL too
        reg.create_model_version("fraud", "s3://b/m", run_id="r" * 33)


def test_logged_model_metrics_keep_their_run_and_dataset_and_search_filters_on_it(
    stores: tuple[SqlTrackingStore, SqlRegistryStore],
) -> None:
    tracking, reg = stores
    exp = tracking.create_experiment("ranking")
    run = tracking.create_run(exp).info.run_id
    a, b = reg.create_logged_model(exp), reg.create_logged_model(exp)
    reg.log_logged_model_metrics(a.model_id, [Metric("ndcg", 0.7, 10, 2)], run, ("clicks", "abc123"))
    reg.log_logged_model_metrics(b.model_id, [Metric("ndcg", 0.6, 11, 2)], run)
    assert reg.get_logged_model(a.model_id).metrics == (
        ModelMetric("ndcg", 0.7, 10, 2, run, "clicks", "abc123"),
    )

    def ids(datasets: list[tuple[str, str]]) -> set[str]:
        return {m.model_id for m in reg.search_logged_models([exp], datasets=datasets).items}

    assert ids([("clicks", "")]) == ids([("clicks", "abc123")]) == {a.model_id}
    assert ids([("clicks", "zzz"), ("views", "")]) == set()
    assert ids([]) == {a.model_id, b.model_id}
    with pytest.raises(InvalidInput, match="digests at most 64"):
        reg.log_logged_model_metrics(a.model_id, [Metric("ndcg", 0.1, 1)], run, ("clicks", "d" * 65))


def test_a_runs_model_inputs_and_outputs_are_read_with_it_and_purged_with_it(
    stores: tuple[SqlTrackingStore, SqlRegistryStore],
) -> None:
    tracking, reg = stores
    exp = tracking.create_experiment("pipeline")
    run = tracking.create_run(exp).info.run_id
    made, used = reg.create_logged_model(exp), reg.create_logged_model(exp)
    reg.log_outputs(run, [made.model_id], [5])
    tracking.log_inputs(run, [], [used.model_id])
    got = tracking.get_run(run)
    assert (got.model_outputs, got.model_inputs) == (((made.model_id, 5),), (used.model_id,))
    edges = downstream(reg.engine, "default", f"models:/{used.model_id}")
    assert (f"models:/{used.model_id}", f"runs:/{run}", "input_of") in {
        (e.from_uri, e.to_uri, e.relation) for e in edges
    }
    with pytest.raises(NotFound):
        tracking.log_inputs(run, [], ["m-missing"])
    tracking.delete_run(run)
    assert tracking.purge_runs([run]) == 1


def test_experiment_tags_can_be_deleted_and_locations_follow_the_root(
    stores: tuple[SqlTrackingStore, SqlRegistryStore], tmp_path: object
) -> None:
    tracking, _ = stores
    exp = tracking.create_experiment("tagged", tags={"a": "1", "b": "2"})
    tracking.delete_experiment_tag(exp, "a")
    assert tracking.get_experiment(exp).tags == {"b": "2"}
    with pytest.raises(NotFound, match="No tag with name: a in experiment"):
        tracking.delete_experiment_tag(exp, "a")

    relative = tracking.create_experiment("relative", artifact_location="out/art")
    assert tracking.get_experiment(relative).artifact_location == os.path.abspath("out/art")

    direct = SqlTrackingStore(tracking.engine, workspace="direct", artifact_root="file:///srv/ml/")
    exp = direct.create_experiment("direct-writes")
    assert direct.get_experiment(exp).artifact_location == f"file:///srv/ml/{exp}"
    default = direct.get_experiment_by_name("Default")
    assert default is not None and default.artifact_location.startswith("file:///srv/ml/")


def test_versions_are_searched_most_recently_updated_first_by_default(
    stores: tuple[SqlTrackingStore, SqlRegistryStore],
) -> None:
    _, reg = stores
    for name in ("beta", "alpha"):
        reg.create_registered_model(name)
    for name in ("beta", "alpha", "beta"):
        reg.create_model_version(name, "s3://bucket/m")
        time.sleep(0.003)  # distinct update times
    found = [(v.name, v.version) for v in reg.search_model_versions().items]
    assert found == [("beta", 2), ("alpha", 1), ("beta", 1)]  # MLflow's default order
    by_name = [(v.name, v.version) for v in reg.search_model_versions(order_by=["name"]).items]
    assert by_name == [("alpha", 1), ("beta", 2), ("beta", 1)]
