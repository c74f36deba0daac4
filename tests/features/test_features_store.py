"""The FeatureStore end to end on small data: apply/plan, training sets, materialisation, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feature_support import DEFS, at

from loopline.errors import InvalidInput, NotFound
from loopline.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64
from loopline.metadata import lineage

ENTITY = pd.DataFrame(
    {
        "driver_id": [3, 1, 2, 1, 9],
        "event_timestamp": [at(4 * 3600), at(5 * 3600), at(0), at(30 * 3600), at(3600)],
        "bonus": [0.5, 1.0, 0.0, 2.0, 1.0],
    }
)


def test_apply_is_idempotent_and_plans_changes(settings: Any, defs_file: Path, driver_parquet: Path) -> None:
    fs = FeatureStore(settings)
    first = fs.apply(defs_file)
    assert [(c.kind, c.name) for c in first.added] == [
        ("entity", "driver"),
        ("feature_view", "driver_stats"),
        ("on_demand_feature_view", "boosted"),
        ("feature_service", "activity"),
    ]
    assert fs.apply(defs_file).empty
    defs_file.write_text(
        DEFS.format(path=str(driver_parquet), ttl_hours=5).replace(
            'activity = FeatureService(name="activity", features=[driver_stats[["conv_rate"]], boosted])', ""
        )
    )
    p = fs.plan(defs_file)
    assert [(c.op, c.name, c.fields) for c in p.changes] == [
        ("change", "driver_stats", ("ttl_seconds",)),
        ("remove", "activity", ()),
    ]
    assert fs.plan(defs_file).changes == p.changes  # plan writes nothing
    fs.apply(defs_file)
    assert fs.get_feature_view("driver_stats").ttl == dt.timedelta(hours=5)
    with pytest.raises(NotFound, match="activity"):
        fs.get("activity")
    actions = [e.action for e in lineage.list_events(fs.registry.engine, "default", "features:/driver_stats")]
    assert actions == ["feature_view.update", "feature_view.create"]
    up = lineage.upstream(fs.registry.engine, "default", "features:/boosted")
    assert {(e.from_uri, e.to_uri) for e in up} == {
        ("features:/driver_stats", "features:/boosted"),
        (f"file://{driver_parquet}", "features:/driver_stats"),
    }


def test_training_set_is_point_in_time_correct_keeps_order_and_every_row(store: FeatureStore) -> None:
    out = store.get_historical_features(
        ENTITY, ["driver_stats:conv_rate", "driver_stats:trips", "boosted:boosted"]
    )
    assert list(out.columns) == ["driver_id", "event_timestamp", "bonus", "conv_rate", "trips", "boosted"]
    assert out["driver_id"].tolist() == [3, 1, 2, 1, 9]
    # driver 3 at 04:00: the row at 04:00 has a null conv_rate (the latest row wins, with its null).
    # driver 1 at 05:00: the 04:00 row. driver 2 at 00:00: the 00:00 row (a tie is included).
    # driver 1 at 30:00: nothing within the 3 h TTL. driver 9: no rows at all.
    assert out["trips"].tolist()[:3] == [304, 104, 200]
    assert out["trips"].isna().tolist() == [False, False, False, True, True]
    assert out["conv_rate"].isna().tolist() == [True, False, False, True, True]
    assert out["boosted"].tolist()[1] == pytest.approx(0.14 * 2 + 1.0)
    polars = store.get_historical_features(ENTITY, "activity", format="polars")
    assert polars.columns == ["driver_id", "event_timestamp", "bonus", "conv_rate", "boosted", "trips_k"]
    arrow = store.get_historical_features(
        ENTITY, ["driver_stats:trips"], format="arrow", full_feature_names=True
    )
    assert isinstance(arrow, pa.Table) and "driver_stats__trips" in arrow.column_names


def test_on_demand_values_are_identical_offline_and_online(store: FeatureStore) -> None:
    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    store.materialize(dt.datetime(2025, 12, 31), now)
    entity = pd.DataFrame({"driver_id": [1, 2, 3], "event_timestamp": [now] * 3, "bonus": [0.25, -1.0, 3.0]})
    # The online store holds each driver's last row, so ask offline for the same moment with a long TTL.
    store.apply([*_with_ttl(store, hours=48)])
    offline = store.get_historical_features(entity, ["boosted:boosted", "boosted:trips_k"])
    online = store.get_online_features(
        ["boosted:boosted", "boosted:trips_k"], entity[["driver_id", "bonus"]].to_dict("records")
    )
    assert online["boosted"] == offline["boosted"].tolist()
    assert online["trips_k"] == offline["trips_k"].tolist()


def _with_ttl(store: FeatureStore, hours: int) -> list[Any]:
    import dataclasses

    defs = store.definitions()
    view = dataclasses.replace(store.get_feature_view("driver_stats"), ttl=dt.timedelta(hours=hours))
    return [*store.list_entities(), *(view if d.name == "driver_stats" else d for d in defs.values())]


def test_bad_input_gives_clear_errors(store: FeatureStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="Unknown feature 'driver_stats:nope'"):
        store.get_historical_features(ENTITY, ["driver_stats:nope"])
    with pytest.raises(NotFound, match="Unknown feature view 'ghost'"):
        store.get_online_features(["ghost:x"], [{"driver_id": 1}])
    with pytest.raises(InvalidInput, match="Invalid feature reference"):
        store.get_historical_features(ENTITY, ["conv_rate"])
    with pytest.raises(InvalidInput, match="no join key column 'driver_id'"):
        store.get_historical_features(ENTITY.rename(columns={"driver_id": "id"}), ["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="no timestamp column 'event_timestamp'"):
        store.get_historical_features(ENTITY.drop(columns="event_timestamp"), ["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="not a timestamp"):
        store.get_historical_features(ENTITY.assign(event_timestamp=[1, 2, 3, 4, 5]), ["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="Join key 'driver_id' is string in the entity frame but integer"):
        store.get_historical_features(
            ENTITY.assign(driver_id=["a", "b", "c", "d", "e"]), ["driver_stats:trips"]
        )
    with pytest.raises(InvalidInput, match="needs request field 'bonus'"):
        store.get_historical_features(ENTITY.drop(columns="bonus"), ["boosted:boosted"])
    with pytest.raises(InvalidInput, match="entity rows have no 'driver_id'"):
        store.get_online_features(["driver_stats:trips"], [{"id": 1}])
    with pytest.raises(InvalidInput, match="Unknown format"):
        store.get_historical_features(ENTITY, ["driver_stats:trips"], format="excel")  # type: ignore[arg-type]
    bad = FeatureView(
        name="broken",
        entities=["driver"],
        source=FileSource(path=str(store.get_feature_view("driver_stats").source.batch_source.path)),  # type: ignore[union-attr]
        schema=[Field("speed", Float64)],
    )
    with pytest.raises(InvalidInput, match=r"has no column\(s\) \['speed'\]"):
        store.apply([Entity(name="driver", join_keys=["driver_id"]), bad])
    with pytest.raises(InvalidInput, match="uses entity 'rider', which is not defined"):
        store.plan(
            [FeatureView(name="x", entities=["rider"], source=bad.source, schema=[Field("trips", Float64)])]
        )


def test_materialize_incremental_and_resume(store: FeatureStore, driver_parquet: Path) -> None:
    end = dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC)
    (first,) = store.materialize_incremental(end)
    assert first.rows == 3 and first.start_us == int((end - dt.timedelta(hours=3)).timestamp() * 1e6)
    later = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)
    (second,) = store.materialize_incremental(later)
    assert second.start_us == int(end.timestamp() * 1e6)  # starts where the last one ended
    assert store.get_online_features(["driver_stats:trips"], [{"driver_id": 2}])["trips"] == [210]
    # A job that died after its first batch resumes after the last key it committed.
    reg = store.registry
    window = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 23, tzinfo=dt.UTC))
    job = reg.begin_materialization(
        "driver_stats", int(window[0].timestamp() * 1000), int(window[1].timestamp() * 1000)
    )
    reg.materialization_progress(job.id, 2, [2])
    reg.end_materialization(job.id, rows=2, error="killed")
    (resumed,) = store.materialize(*window, batch_rows=1)
    assert resumed.resumed_from == [2] and resumed.rows == 3  # only driver 3 was left to write
    jobs = reg.list_materializations("driver_stats")
    assert [j.status for j in jobs][:1] == ["done"] and jobs[0].id == job.id
    assert store.get_online_features(["driver_stats:trips"], [{"driver_id": 3}, {"driver_id": 1}])[
        "trips"
    ] == [322, 110]


def test_training_set_saved_as_a_dataset_with_lineage(store: FeatureStore, settings: Any) -> None:
    pytest.importorskip("loopline.data")
    from loopline.tracking import Client

    client = Client(settings)
    run = client.create_run(client.set_experiment("train").experiment_id)
    store.get_historical_features(
        ENTITY, ["boosted:boosted"], save_as="drivers_train", run_id=run.info.run_id
    )
    up = lineage.upstream(store.registry.engine, "default", f"runs:/{run.info.run_id}")
    froms = {(e.from_uri, e.to_uri) for e in up}
    assert ("datasets:/drivers_train/1", f"runs:/{run.info.run_id}") in froms
    assert ("features:/boosted", "datasets:/drivers_train/1") in froms
    assert ("features:/driver_stats", "datasets:/drivers_train/1") in froms
    assert any(f.startswith("file://") and t == "features:/driver_stats" for f, t in froms)
    client.close()


def test_sources_csv_sql_and_folder(settings: Any, tmp_path: Path, driver_parquet: Path) -> None:
    from loopline.features import SqlSource

    table = pq.read_table(driver_parquet)
    csv = tmp_path / "stats.csv"
    table.to_pandas().to_csv(csv, index=False)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table.slice(0, 20), folder / "a.parquet")
    pq.write_table(table.slice(20), folder / "b.parquet")
    driver = Entity(name="driver", join_keys=["driver_id"])
    views = [
        FeatureView(
            name=name,
            entities=[driver],
            source=src,
            schema=[Field("trips", Float64)],
            ttl=dt.timedelta(hours=3),
        )
        for name, src in {
            "from_csv": FileSource(path=str(csv)),
            "from_folder": FileSource(path=str(folder)),
            "from_sql": SqlSource(
                query=f"SELECT * FROM read_parquet('{driver_parquet}') WHERE driver_id <> 2"
            ),
        }.items()
    ]
    fs = FeatureStore(settings)
    fs.apply([driver, *views])
    out = fs.get_historical_features(ENTITY, [f"{v.name}:trips" for v in views], full_feature_names=True)
    assert out["from_csv__trips"].tolist()[:3] == [304, 104, 200]
    assert out["from_folder__trips"].tolist()[:3] == [304, 104, 200]
    assert out["from_sql__trips"].isna().tolist()[:3] == [False, False, True]
    fs.close()
