"""The registry embedded and over HTTP: the same scenarios on ``SqlRegistryStore`` and ``RestRegistryStore``.

The HTTP side is a real ``loopline server`` on 127.0.0.1, shared by the module (each test names
its objects with a fresh prefix); the embedded side gets a fresh SQLite database per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from support import serve_loopline

from loopline.config import Settings
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata.engine import create_store_engine
from loopline.registry import RegistryClient, load_model, log_model, save_model
from loopline.registry.rest_store import RestRegistryStore
from loopline.registry.sql_store import SqlRegistryStore
from loopline.registry.types import LoggedModelStatus
from loopline.tracking import Client
from loopline.tracking.rest_store import RestTrackingStore
from loopline.tracking.sql_store import SqlTrackingStore
from loopline.uris import artifact_path

DIGEST = "ab" * 32


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``loopline server`` in a subprocess, shared by this module's HTTP cases."""
    with serve_loopline(tmp_path_factory.mktemp("registry-server"), check_log=True) as url:
        yield url


@dataclass
class Backend:
    """One registry and the tracking store beside it; ``name()`` makes names unique to the test."""

    kind: str
    tracking: Any
    registry: Any
    prefix: str

    def name(self, base: str) -> str:
        return f"{self.prefix}-{base}"

    def run(self) -> str:
        exp = self.tracking.create_experiment(self.name(f"exp-{uuid.uuid4().hex[:6]}"))
        return str(self.tracking.create_run(exp).info.run_id)


@pytest.fixture(params=["embedded", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    prefix = uuid.uuid4().hex[:8]
    if request.param == "embedded":
        engine = create_store_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        tracking: Any = SqlTrackingStore(engine, actor="tester")
        return Backend("embedded", tracking, SqlRegistryStore(engine, actor="tester"), prefix)
    url = request.getfixturevalue("server_url")
    return Backend("server", RestTrackingStore(url), RestRegistryStore(url), prefix)


def _source() -> str:
    return f"mlflow-artifacts:/1/models/m-{uuid.uuid4().hex}/artifacts"


# ---- the store contract, both ways -----------------------------------------------------------


def test_versions_count_up_and_carry_their_source(backend: Backend) -> None:
    reg, name, run = backend.registry, backend.name("churn"), backend.run()
    rm = reg.create_registered_model(name, tags={"team": "ml"}, description="churn model")
    assert (rm.name, rm.tags, rm.description, rm.latest_versions) == (name, {"team": "ml"}, "churn model", ())
    src = _source()
    v1 = reg.create_model_version(name, src, run_id=run, digests={"MLmodel": DIGEST}, description="one")
    v2 = reg.create_model_version(name, _source(), tags={"k": "v"})
    assert (v1.version, v2.version) == (1, 2)
    assert (v1.source, v1.run_id, v1.digests, v1.description) == (src, run, {"MLmodel": DIGEST}, "one")
    assert v1.user_id and v1.status.value == "READY" and v1.current_stage == "None"
    got = reg.get_model_version(name, "2")
    assert (got.tags, got.digests) == ({"k": "v"}, {})
    assert reg.get_model_version(name, 1) == v1
    model = reg.get_registered_model(name)
    assert [v.version for v in model.latest_versions] == [2]
    assert reg.update_model_version(name, 2, "two").description == "two"
    assert reg.update_registered_model(name, "new words").description == "new words"


def test_aliases_move_atomically_and_resolve(backend: Backend) -> None:
    reg, name = backend.registry, backend.name("m")
    reg.create_registered_model(name)
    for _ in range(3):
        reg.create_model_version(name, _source())
    reg.set_registered_model_alias(name, "champion", 1)
    reg.set_registered_model_alias(name, "challenger", "2")
    assert reg.get_model_version_by_alias(name, "champion").version == 1
    reg.set_registered_model_alias(name, "champion", 3)  # a move, not a second alias
    assert reg.get_model_version_by_alias(name, "champion").version == 3
    assert reg.get_registered_model(name).aliases == {"challenger": 2, "champion": 3}
    assert reg.get_model_version(name, 3).aliases == ("champion",)
    reg.delete_registered_model_alias(name, "challenger")
    with pytest.raises(NotFound, match="alias challenger not found") as err:
        reg.get_model_version_by_alias(name, "challenger")
    assert "champion" in str(err.value)  # says which aliases exist
    with pytest.raises(InvalidInput, match="reads as a version"):
        reg.set_registered_model_alias(name, "v2", 2)
    with pytest.raises(InvalidInput):
        reg.set_registered_model_alias(name, "no spaces", 2)
    with pytest.raises(NotFound, match="version=9"):
        reg.set_registered_model_alias(name, "x", 9)


def test_unknown_names_and_bad_input(backend: Backend) -> None:
    reg, name = backend.registry, backend.name("alpha")
    reg.create_registered_model(name)
    with pytest.raises(NotFound, match="not found"):
        reg.get_registered_model(backend.name("gamma"))
    reg.create_model_version(name, _source())
    with pytest.raises(NotFound) as err:
        reg.get_model_version(name, 5)
    assert f"Versions of {name}: 1" in str(err.value)
    with pytest.raises(AlreadyExists):
        reg.create_registered_model(name)
    with pytest.raises(InvalidInput):
        reg.create_registered_model("bad/name")
    with pytest.raises(InvalidInput, match="positive integers"):
        reg.get_model_version(name, "one")
    with pytest.raises(InvalidInput, match="stage"):
        reg.transition_model_version_stage(name, 1, "Live")
    with pytest.raises(NotFound):
        reg.create_model_version(backend.name("nope"), _source())


def test_stages_tags_rename_delete(backend: Backend) -> None:
    reg, name = backend.registry, backend.name("m")
    reg.create_registered_model(name)
    for _ in range(2):
        reg.create_model_version(name, _source())
    reg.transition_model_version_stage(name, 1, "production")
    moved = reg.transition_model_version_stage(name, 2, "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert reg.get_model_version(name, 1).current_stage == "Archived"
    assert [v.version for v in reg.get_latest_versions(name, ["Production"])] == [2]
    assert sorted(v.version for v in reg.get_latest_versions(name)) == [1, 2]

    reg.set_registered_model_tag(name, "owner", "ana")
    reg.set_model_version_tag(name, 2, "validated", "yes")
    reg.delete_model_version_tag(name, 2, "validated")
    reg.delete_registered_model_tag(name, "owner")
    assert reg.get_registered_model(name).tags == {} and reg.get_model_version(name, 2).tags == {}

    renamed = backend.name("m2")
    assert reg.rename_registered_model(name, renamed).name == renamed
    assert reg.get_model_version(renamed, 2).name == renamed
    reg.delete_model_version(renamed, 1)
    with pytest.raises(NotFound):
        reg.get_model_version(renamed, 1)
    assert reg.create_model_version(renamed, _source()).version == 3  # numbers are never reused
    reg.delete_registered_model(renamed)
    with pytest.raises(NotFound):
        reg.get_registered_model(renamed)


def test_search(backend: Backend) -> None:
    reg, p = backend.registry, backend.prefix
    run = backend.run()
    for base, team in (("churn-a", "x"), ("churn-b", "y"), ("fraud", "x")):
        reg.create_registered_model(backend.name(base), tags={"team": team})
        reg.create_model_version(backend.name(base), _source(), run_id=run if base == "fraud" else "")
    names = [m.name for m in reg.search_registered_models(f"name LIKE '{p}-churn%'").items]
    assert names == [f"{p}-churn-a", f"{p}-churn-b"]
    tagged = reg.search_registered_models(f"name LIKE '{p}-%' AND tags.team = 'x'", order_by=["name DESC"])
    assert [m.name for m in tagged.items] == [f"{p}-fraud", f"{p}-churn-a"]
    first = reg.search_registered_models(f"name LIKE '{p}-%'", max_results=2)
    assert len(first.items) == 2 and first.next_page_token
    rest = reg.search_registered_models(f"name LIKE '{p}-%'", max_results=2, page_token=first.next_page_token)
    assert [m.name for m in first.items + rest.items] == [f"{p}-churn-a", f"{p}-churn-b", f"{p}-fraud"]
    assert [v.name for v in reg.search_model_versions(f"run_id = '{run}'").items] == [f"{p}-fraud"]
    assert [v.version for v in reg.search_model_versions(f"name = '{p}-churn-b'").items] == [1]
    with pytest.raises(InvalidInput):
        reg.search_registered_models("metrics.acc > 1")


def test_logged_models(backend: Backend) -> None:
    reg, run = backend.registry, backend.run()
    exp = backend.tracking.get_run(run).info.experiment_id
    lm = reg.create_logged_model(exp, "clf", "sklearn", run, params={"C": "1"}, tags={"team": "ml"})
    assert (lm.status, lm.params, lm.tags, lm.source_run_id) == (
        LoggedModelStatus.PENDING,
        {"C": "1"},
        {"team": "ml"},
        run,
    )
    assert lm.artifact_location == f"mlflow-artifacts:/{exp}/models/{lm.model_id}/artifacts"
    assert reg.finalize_logged_model(lm.model_id, LoggedModelStatus.READY).status == LoggedModelStatus.READY
    reg.set_logged_model_tags(lm.model_id, {"stage": "dev", "team": "ds"})
    reg.delete_logged_model_tag(lm.model_id, "stage")
    reg.log_logged_model_params(lm.model_id, {"depth": "3"})
    got = reg.get_logged_model(lm.model_id)
    assert (got.tags, got.params, got.model_type, got.name) == (
        {"team": "ds"},
        {"C": "1", "depth": "3"},
        "sklearn",
        "clf",
    )
    reg.log_outputs(run, [lm.model_id])
    assert [m.model_id for m in reg.search_logged_models([exp], "name = 'clf'").items] == [lm.model_id]
    assert reg.search_logged_models([exp], "name = 'other'").items == []
    reg.delete_logged_model(lm.model_id)
    with pytest.raises(NotFound):
        reg.get_logged_model(lm.model_id)
    with pytest.raises(NotFound):
        reg.log_outputs(run, [lm.model_id])


def test_concurrent_registrations_get_distinct_gapless_versions(backend: Backend) -> None:
    reg, name = backend.registry, backend.name("race")
    reg.create_registered_model(name)
    make: Callable[[int], int] = lambda _: reg.create_model_version(name, _source()).version  # noqa: E731
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(make, range(40)))
    assert sorted(got) == list(range(1, 41))


# ---- log_model / load_model through RegistryClient, embedded and against the server ---------


@pytest.fixture(params=["embedded", "server"])
def registry_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryClient]:
    if request.param == "embedded":
        settings = Settings.from_env(
            {}, tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", artifacts_uri=str(tmp_path / "art")
        )
        client = Client(settings)
    else:
        client = Client(tracking_uri=request.getfixturevalue("server_url"))
    yield RegistryClient(client)
    client.close()


def test_log_register_alias_load_and_refuse_tampering(
    registry_client: RegistryClient, tmp_path: Path
) -> None:
    rc = registry_client
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X.a > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    name = f"churn-{uuid.uuid4().hex[:8]}"
    run_id = rc.tracking.create_run(rc.tracking.set_experiment(name).experiment_id).info.run_id
    info = log_model(
        model, "model", input_example=X[:5], registered_model_name=name, run_id=run_id, client=rc
    )
    assert info.registered_model_version == 1
    rc.set_alias(name, "champion", 1)
    mv = rc.get_model_version_by_alias(name, "champion")
    assert (mv.digests, mv.model_id, mv.run_id, mv.source) == (
        info.digests,
        info.model_id,
        run_id,
        info.artifact_location,
    )
    assert [m.name for m in rc.search_registered_models(f"name = '{name}'")] == [name]
    assert [v.version for v in rc.search_model_versions(f"name = '{name}'")] == [1]
    assert rc.store.get_logged_model(info.model_id).status == LoggedModelStatus.READY

    loaded = load_model(f"models:/{name}@champion", client=rc)
    assert loaded.verified
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    save_model(RandomForestClassifier(n_estimators=2).fit(X, y), tmp_path / "evil")
    rc.tracking.artifacts.put_file(
        tmp_path / "evil" / "model.skops", artifact_path(info.artifact_location) + "/model.skops"
    )
    with pytest.raises(InvalidInput, match=r"do not match the digests.*changed: model\.skops"):
        load_model(f"models:/{name}/1", client=rc)
