"""What several docs' setups share: small, seeded frames shaped as the docs describe them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

rng = np.random.default_rng(0)


def customers(n: int, shift: float = 0.0) -> pd.DataFrame:
    """Customers as the README and monitoring.md show them: age, income, visits, plan."""
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 10, n).round().astype("int64"),
            "income": rng.normal(50 + shift / 4, 15, n),
            "visits": rng.poisson(3, n).astype("int64"),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5 - shift / 40, 0.3, 0.2 + shift / 40]),
        }
    )


def driver_stats() -> pd.DataFrame:
    """examples/features_quickstart.py's data: drivers 1001-1003, hourly on 2026-01-01."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [
        {
            "driver_id": driver,
            "event_timestamp": start + dt.timedelta(hours=hour),
            "conv_rate": round(0.1 * (driver - 1000) + 0.01 * hour, 3),
            "trips_today": hour * (driver - 1000),
        }
        for hour in range(12)
        for driver in (1001, 1002, 1003)
        if not (driver == 1003 and hour > 2)
    ]
    return pd.DataFrame(rows)
