"""One contract for ``FeatureRegistryStore``: the same tests over SQLite, PostgreSQL and a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopline.config import Settings
from loopline.context import Context
from loopline.errors import NotFound
from loopline.features import Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64
from loopline.features.registry import digest
from loopline.features.registry_store import FeatureRegistryStore, open_feature_registry_store
from loopline.features.types import DefinitionChange


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureRegistryStore]:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'loopline.db'}"
    elif request.param == "postgres":
        uri = request.getfixturevalue("postgres_uri")
    else:
        uri = request.getfixturevalue("loopline_server")
    context = Context(
        Settings.from_env({}, tracking_uri=uri, artifacts_uri=str(tmp_path / "a"), user="tester")
    )
    store = open_feature_registry_store(context)
    assert type(store).__name__ == (
        "RestFeatureRegistry" if request.param == "rest" else "SqlFeatureRegistry"
    )
    yield store
    if request.param == "postgres":
        context.engine.dispose()  # the database is dropped after the test: no pooled connection may stay


def _add(d: Any, op: str = "add") -> DefinitionChange:
    kind = {Entity: "entity", FeatureView: "feature_view", FeatureService: "feature_service"}[type(d)]
    spec = d.spec()
    return DefinitionChange(op, kind, d.name, spec, digest(spec))


@pytest.fixture
def objects(driver_parquet: Path) -> dict[str, Any]:
    driver = Entity(name="driver", join_keys=["driver_id"])
    stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        source=FileSource(path=str(driver_parquet)),
        schema=[Field("conv_rate", Float64), Field("trips", Int64)],
    )
    service = FeatureService(name="activity", features=[stats[["conv_rate"]]])
    return {"driver": driver, "stats": stats, "service": service}


def test_apply_then_list_and_get(registry: FeatureRegistryStore, objects: dict[str, Any]) -> None:
    assert registry.list_definitions() == []
    changes = [_add(objects["driver"]), _add(objects["stats"]), _add(objects["service"])]
    registry.apply(changes)
    listed = registry.list_definitions()
    assert [(d.kind, d.name) for d in listed] == [
        ("entity", "driver"),
        ("feature_service", "activity"),
        ("feature_view", "driver_stats"),
    ]
    assert [d.name for d in registry.list_definitions("feature_view")] == ["driver_stats"]
    got = registry.get_definition("driver_stats")
    assert got.spec == objects["stats"].spec() and got.digest == digest(objects["stats"].spec())
    assert got.creation_time == got.last_updated_time > 0
    assert registry.get_definition("driver", kinds=("entity",)).spec["join_keys"] == ["driver_id"]
    with pytest.raises(NotFound, match="driver_stats"):  # the error lists what is registered
        registry.get_definition("nope")
    with pytest.raises(NotFound):
        registry.get_definition("driver")  # an entity is not a view or service


def test_apply_is_idempotent_and_changes_and_removes(
    registry: FeatureRegistryStore, objects: dict[str, Any]
) -> None:
    changes = [_add(objects["driver"]), _add(objects["stats"])]
    registry.apply(changes)
    first = registry.get_definition("driver_stats")
    registry.apply(changes)  # a retried request: nothing is added twice, nothing changes
    assert registry.list_definitions() == [registry.get_definition("driver", ("entity",)), first]

    changed = objects["stats"].spec() | {"description": "hourly"}
    registry.apply([DefinitionChange("change", "feature_view", "driver_stats", changed, digest(changed))])
    now = registry.get_definition("driver_stats")
    assert now.spec["description"] == "hourly" and now.digest == digest(changed)
    assert now.creation_time == first.creation_time and now.last_updated_time >= first.last_updated_time

    registry.apply([DefinitionChange("remove", "feature_view", "driver_stats")])
    registry.apply([DefinitionChange("remove", "feature_view", "driver_stats")])  # retried: still fine
    assert [d.name for d in registry.list_definitions()] == ["driver"]


def test_lineage_from_apply_and_recorded(registry: FeatureRegistryStore, objects: dict[str, Any]) -> None:
    src = f"file://{objects['stats'].source.path}"
    registry.apply(
        [_add(objects["driver"]), _add(objects["stats"]), _add(objects["service"])],
        [
            (src, "features:/driver_stats", "input_of"),
            ("features:/driver_stats", "features:/activity", "member_of"),
        ],
    )
    edges = {(e.from_uri, e.to_uri, e.relation) for e in registry.lineage("features:/driver_stats")}
    assert edges == {
        (src, "features:/driver_stats", "input_of"),
        ("features:/driver_stats", "features:/activity", "member_of"),
    }
    registry.record_lineage(
        "training_set.create",
        "datasets:/train/1",
        [("features:/activity", "datasets:/train/1", "input_of")],
        features=["driver_stats:conv_rate"],
    )
    down = {(e.from_uri, e.to_uri) for e in registry.lineage("features:/activity")}
    assert ("features:/activity", "datasets:/train/1") in down


def test_no_materialisation_yet(registry: FeatureRegistryStore, objects: dict[str, Any]) -> None:
    registry.apply([_add(objects["driver"]), _add(objects["stats"])])
    assert registry.list_materializations() == []
    assert registry.list_materializations("driver_stats", limit=5) == []
    assert registry.last_materialized_end("driver_stats") is None
