"""Values the feature tests share, in a module of its own: ``from conftest import …`` resolves to
whichever conftest.py was imported last when several test folders are collected together."""

from __future__ import annotations

import datetime as dt

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


DEFS = """
from datetime import timedelta
from loopline.features import (Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64,
                               PushSource, RequestSource, on_demand_feature_view)

driver = Entity(name="driver", join_keys=["driver_id"])
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    source=PushSource(name="driver_push", batch_source=FileSource(path={path!r})),
    schema=[Field("conv_rate", Float64), Field("trips", Int64)],
    ttl=timedelta(hours={ttl_hours}),
)

@on_demand_feature_view(
    sources=[driver_stats, RequestSource("req", [Field("bonus", Float64)])],
    schema=[Field("boosted", Float64), Field("trips_k", Float64)],
)
def boosted(df):
    return pd.DataFrame({{"boosted": df["conv_rate"] * 2 + df["bonus"], "trips_k": df["trips"] / 1000}})

activity = FeatureService(name="activity", features=[driver_stats[["conv_rate"]], boosted])
"""
