"""Sources beyond files: a real PostgreSQL table and a dataset version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from feature_support import at
from test_features_store import ENTITY

from loopline.features import (
    DatasetSource,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    Float64,
    Int64,
    PostgresSource,
)

DRIVER = Entity(name="driver", join_keys=["driver_id"])


def _view(name: str, source: Any) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[DRIVER],
        source=source,
        schema=[Field("conv_rate", Float64), Field("trips", Int64)],
        ttl=dt.timedelta(hours=3),
    )


def test_a_postgresql_table(settings: Any, postgres_uri: str, driver_parquet: Path) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_uri)
    rows = pq.read_table(driver_parquet).to_pylist()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE driver_stats (driver_id BIGINT, event_timestamp TIMESTAMPTZ, "
                "conv_rate DOUBLE PRECISION, trips BIGINT)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO driver_stats VALUES (:driver_id, :event_timestamp, :conv_rate, :trips)"),
            rows,
        )
    engine.dispose()
    fs = FeatureStore(settings)
    fs.apply([DRIVER, _view("pg_stats", PostgresSource(table="driver_stats", uri=postgres_uri))])
    out = fs.get_historical_features(ENTITY, ["pg_stats:trips", "pg_stats:conv_rate"])
    assert out["trips"].tolist()[:3] == [304, 104, 200]
    assert out["trips"].isna().tolist() == [False, False, False, True, True]
    (done,) = fs.materialize(at(0), at(6 * 3600))
    assert done.rows == 3
    assert fs.get_online_features(["pg_stats:trips"], [{"driver_id": 2}])["trips"] == [206]
    fs.close()


def test_a_dataset_version(settings: Any, driver_parquet: Path) -> None:
    pytest.importorskip("loopline.data")
    from loopline.data import DataClient, log_dataset

    version = log_dataset(driver_parquet, name="driver_stats", client=DataClient(settings))
    fs = FeatureStore(settings)
    fs.apply([DRIVER, _view("ds_stats", DatasetSource(uri=version.uri))])
    out = fs.get_historical_features(ENTITY, ["ds_stats:trips"])
    assert out["trips"].tolist()[:3] == [304, 104, 200]
    fs.close()
