"""The registry-store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata.engine import create_store_engine
from loopline.metadata.lineage import list_events, upstream
from loopline.registry.sql_store import SqlRegistryStore
from loopline.registry.types import LoggedModelStatus
from loopline.tracking.sql_store import SqlTrackingStore
from loopline.tracking.types import Metric


@pytest.fixture
def stores(store_uri: str) -> tuple[SqlTrackingStore, SqlRegistryStore]:
    engine = create_store_engine(store_uri)
    return SqlTrackingStore(engine, actor="alice"), SqlRegistryStore(engine, actor="alice")


@pytest.fixture
def reg(stores: tuple[SqlTrackingStore, SqlRegistryStore]) -> SqlRegistryStore:
    return stores[1]


def test_versions_count_up_and_carry_their_source(stores: tuple[SqlTrackingStore, SqlRegistryStore]) -> None:
    tracking, reg = stores
    run = tracking.create_run(tracking.create_experiment("e")).info.run_id
    reg.create_registered_model("churn", tags={"team": "ml"}, description="churn model")
    v1 = reg.create_model_version(
        "churn", "mlflow-artifacts:/1/models/m-1/artifacts", run_id=run, digests={"MLmodel": "ab" * 32}
    )
    v2 = reg.create_model_version("churn", "mlflow-artifacts:/1/models/m-2/artifacts", tags={"k": "v"})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.digests == {"MLmodel": "ab" * 32} and v1.user_id == "alice" and v1.run_id == run
    assert reg.get_model_version("churn", "2").tags == {"k": "v"}
    model = reg.get_registered_model("churn")
    assert model.description == "churn model" and model.tags == {"team": "ml"}
    assert [v.version for v in model.latest_versions] == [2]
    assert [e.from_uri for e in upstream(reg.engine, "default", "models:/churn/1")] == [f"runs:/{run}"]


def test_aliases_move_atomically_and_resolve(reg: SqlRegistryStore) -> None:
    reg.create_registered_model("m")
    for _ in range(3):
        reg.create_model_version("m", "s")
    reg.set_registered_model_alias("m", "champion", 1)
    reg.set_registered_model_alias("m", "challenger", "2")
    assert reg.get_model_version_by_alias("m", "champion").version == 1
    reg.set_registered_model_alias("m", "champion", 3)  # a move, not a second alias
    assert reg.get_model_version_by_alias("m", "champion").version == 3
    assert reg.get_registered_model("m").aliases == {"challenger": 2, "champion": 3}
    assert reg.get_model_version("m", 3).aliases == ("champion",)
    events = list_events(reg.engine, "default", "models:/m@champion")
    assert [(e.payload["version"], e.payload["previous"]) for e in events] == [(3, 1), (1, None)]
    reg.delete_registered_model_alias("m", "challenger")
    with pytest.raises(NotFound, match="alias challenger not found") as err:
        reg.get_model_version_by_alias("m", "challenger")
    assert "champion" in err.value.hint  # says which aliases exist
    with pytest.raises(InvalidInput, match="reads as a version"):
        reg.set_registered_model_alias("m", "v2", 2)
    with pytest.raises(NotFound, match="version=9"):
        reg.set_registered_model_alias("m", "x", 9)


def test_unknown_names_list_what_exists(reg: SqlRegistryStore) -> None:
    reg.create_registered_model("alpha")
    reg.create_registered_model("beta")
    with pytest.raises(NotFound) as err:
        reg.get_registered_model("gamma")
    assert "alpha" in err.value.hint and "beta" in err.value.hint
    reg.create_model_version("alpha", "s")
    with pytest.raises(NotFound) as err:
        reg.get_model_version("alpha", 5)
    assert "Versions of alpha: 1" in err.value.hint
    with pytest.raises(AlreadyExists):
        reg.create_registered_model("alpha")
    with pytest.raises(InvalidInput):
        reg.create_registered_model("bad/name")
    with pytest.raises(InvalidInput, match="positive integers"):
        reg.get_model_version("alpha", "one")


def test_stages_rename_delete(reg: SqlRegistryStore) -> None:
    reg.create_registered_model("m")
    for _ in range(2):
        reg.create_model_version("m", "s")
    reg.transition_model_version_stage("m", 1, "production")
    reg.transition_model_version_stage("m", 2, "Production", archive_existing_versions=True)
    assert reg.get_model_version("m", 1).current_stage == "Archived"
    assert [v.version for v in reg.get_latest_versions("m", ["Production"])] == [2]
    with pytest.raises(InvalidInput, match="stage"):
        reg.transition_model_version_stage("m", 1, "Live")
    reg.rename_registered_model("m", "m2")
    assert reg.get_model_version("m2", 2).name == "m2"
    reg.delete_model_version("m2", 1)
    with pytest.raises(NotFound):
        reg.get_model_version("m2", 1)
    assert reg.create_model_version("m2", "s").version == 3  # numbers are never reused
    reg.delete_registered_model("m2")
    with pytest.raises(NotFound):
        reg.get_registered_model("m2")


def test_search(reg: SqlRegistryStore) -> None:
    for name, team in (("churn-a", "x"), ("churn-b", "y"), ("fraud", "x")):
        reg.create_registered_model(name, tags={"team": team})
        reg.create_model_version(name, f"src-{name}", run_id="r" * 32 if name == "fraud" else "")
    names = [m.name for m in reg.search_registered_models("name LIKE 'churn%'").items]
    assert names == ["churn-a", "churn-b"]
    assert [
        m.name for m in reg.search_registered_models("tags.team = 'x'", order_by=["name DESC"]).items
    ] == ["fraud", "churn-a"]
    page = reg.search_registered_models(max_results=2)
    assert len(page.items) == 2 and page.next_page_token
    assert [v.name for v in reg.search_model_versions(f"run_id = '{'r' * 32}'").items] == ["fraud"]
    assert [v.name for v in reg.search_model_versions("name = 'churn-b'").items] == ["churn-b"]


def test_logged_models(stores: tuple[SqlTrackingStore, SqlRegistryStore]) -> None:
    tracking, reg = stores
    exp = tracking.create_experiment("e")
    run = tracking.create_run(exp).info.run_id
    lm = reg.create_logged_model(exp, "model", "sklearn", run, params={"C": "1"}, tags={"a": "b"})
    assert lm.model_id.startswith("m-") and lm.status == LoggedModelStatus.PENDING
    assert lm.artifact_location == f"mlflow-artifacts:/{exp}/models/{lm.model_id}/artifacts"
    reg.finalize_logged_model(lm.model_id, LoggedModelStatus.READY)
    reg.set_logged_model_tags(lm.model_id, {"c": "d"})
    reg.log_logged_model_metrics(lm.model_id, [Metric("acc", 0.9, 1, 0)], run)
    got = reg.get_logged_model(lm.model_id)
    assert (
        got.status == LoggedModelStatus.READY
        and got.tags == {"a": "b", "c": "d"}
        and got.params == {"C": "1"}
    )
    assert [(m.key, m.value) for m in got.metrics] == [("acc", 0.9)]
    assert [m.model_id for m in reg.search_logged_models([exp]).items] == [lm.model_id]
    reg.log_outputs(run, [lm.model_id])
    reg.delete_logged_model(lm.model_id)
    with pytest.raises(NotFound):
        reg.get_logged_model(lm.model_id)


REGISTER = """
import sys
from loopline.metadata.engine import create_store_engine
from loopline.registry.sql_store import SqlRegistryStore
reg = SqlRegistryStore(create_store_engine(sys.argv[1]))
for _ in range(5):
    print(reg.create_model_version("race", "src").version)
"""


def test_eight_processes_get_distinct_gapless_versions(reg: SqlRegistryStore, store_uri: str) -> None:
    reg.create_registered_model("race")
    procs = [
        subprocess.Popen([sys.executable, "-c", REGISTER, store_uri], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    got = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        got += [int(x) for x in out.split()]
    assert sorted(got) == list(range(1, 41))


def test_a_version_links_to_the_code_its_run_came_from(
    stores: tuple[SqlTrackingStore, SqlRegistryStore],
) -> None:
    from loopline.tracking.types import RunTag

    tracking, reg = stores
    exp = tracking.create_experiment("code")
    sha = "0123456789abcdef0123456789abcdef01234567"
    clean = tracking.create_run(exp, tags=[RunTag("mlflow.source.git.commit", sha)]).info.run_id
    dirty_tags = [RunTag("mlflow.source.git.commit", sha), RunTag("loopline.source.git.dirty", "true")]
    dirty = tracking.create_run(exp, tags=dirty_tags).info.run_id
    reg.create_registered_model("coded")
    for run in (clean, dirty, ""):
        reg.create_model_version("coded", "mlflow-artifacts:/1/models/m-1/artifacts", run_id=run)

    def code_edges(version: int) -> list[tuple[str, str]]:
        edges = upstream(reg.engine, "default", f"models:/coded/{version}")
        return [(e.from_uri, e.relation) for e in edges if e.from_uri.startswith("code:/")]

    assert code_edges(1) == [(f"code:/{sha}", "code_of")]
    assert code_edges(2) == [(f"code:/{sha}+dirty", "code_of")]  # not exactly that commit
    assert code_edges(3) == []  # no run, no code version
