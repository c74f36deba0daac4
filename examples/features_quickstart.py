"""Feature store quickstart: define features once, build a leak-free training set, serve the same values.

Run it in an empty folder: ``python examples/features_quickstart.py``. It writes hourly driver
statistics to ``driver_stats.parquet`` and a definitions file, registers them in ``./.loopline``,
builds a point-in-time-correct training set (saved as a dataset version), materialises the latest
values into the online store (``./.loopline/online.db``) and reads them back.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from loopline.features import FeatureStore

DEFINITIONS = """
from datetime import timedelta

from loopline.features import (Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64,
                               RequestSource, on_demand_feature_view)

driver = Entity(name="driver", join_keys=["driver_id"])

driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    source=FileSource(path="driver_stats.parquet", timestamp_field="event_timestamp"),
    schema=[Field("conv_rate", Float64), Field("trips_today", Int64)],
    ttl=timedelta(hours=2),
)

@on_demand_feature_view(
    sources=[driver_stats, RequestSource("ride", [Field("distance_km", Float64)])],
    schema=[Field("expected_value", Float64)],
)
def ride_value(df):
    return pd.DataFrame({"expected_value": df["conv_rate"] * df["distance_km"] * 1.2})

driver_activity = FeatureService(name="driver_activity", features=[driver_stats, ride_value])
"""

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def write_data() -> None:
    rows = []
    for hour in range(12):
        for driver in (1001, 1002, 1003):
            if driver == 1003 and hour > 2:
                continue  # driver 1003 goes offline after 02:00: its values expire after the 2 h TTL
            rows.append(
                {
                    "driver_id": driver,
                    "event_timestamp": START + dt.timedelta(hours=hour),
                    "conv_rate": round(0.1 * (driver - 1000) + 0.01 * hour, 3),
                    "trips_today": hour * (driver - 1000),
                }
            )
    pd.DataFrame(rows).to_parquet("driver_stats.parquet")
    Path("feature_defs.py").write_text(DEFINITIONS)


def main() -> None:
    write_data()
    store = FeatureStore()  # the metadata store in ./.loopline, the online store beside it

    plan = store.apply("feature_defs.py")
    print(f"apply: {plan.summary()}")
    for line in plan.lines():
        print(f"  {line}")
    print(f"apply again: {store.apply('feature_defs.py').summary()}")

    # Labelled events: each row gets the feature values as they were at its own time, never later.
    rides = pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003, 1003],
            "event_timestamp": [START + dt.timedelta(hours=h, minutes=30) for h in (3, 7, 1, 6)],
            "distance_km": [4.0, 10.0, 2.5, 8.0],
            "completed": [1, 0, 1, 1],
        }
    )
    train = store.get_historical_features(rides, "driver_activity", save_as="rides_training")
    print("training set (driver 1003 at 06:30 has no value within the TTL, so nulls):")
    print(train.to_string(index=False))

    results = store.materialize(START, START + dt.timedelta(hours=12))
    print(f"materialised {results[0].rows} drivers into the online store")
    online = store.get_online_features("driver_activity", [{"driver_id": 1001, "distance_km": 4.0}])
    print(f"online for driver 1001: {online.to_dict()}")
    store.close()


if __name__ == "__main__":
    main()
