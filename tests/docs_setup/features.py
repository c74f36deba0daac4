"""The data features.md names: examples/features_quickstart.py's driver_stats.parquet, and ``rides``
(driver_id, event_timestamp, distance_km, label); ``pd`` is in scope, as in a definitions file."""

import datetime as dt

import pandas as pd
from common import driver_stats

driver_stats().to_parquet("driver_stats.parquet")
rides = pd.DataFrame(
    {
        "driver_id": [1001, 1002, 1003, 1003],
        "event_timestamp": [dt.datetime(2026, 1, 1, h, 30, tzinfo=dt.UTC) for h in (3, 7, 1, 6)],
        "distance_km": [4.0, 10.0, 2.5, 8.0],
        "label": [1, 0, 1, 1],
    }
)
