"""The data data-validation.md names: orders tables (order_id, email, amount, country, price, cost) —
reference.parquet and ``reference_df``, a new batch new.parquet and orders.parquet, and versions 1-3
of ``orders`` (the doc's `data add` makes version 4)."""

import numpy as np
import pandas as pd

import loopline

rng = np.random.default_rng(1)


def orders(n: int, first: int = 0) -> pd.DataFrame:
    cost = rng.uniform(5, 200, n).round(2)
    return pd.DataFrame(
        {
            "order_id": np.arange(first, first + n, dtype="int64"),
            "email": [f"user{i}@example.com" for i in range(first, first + n)],
            "amount": rng.gamma(2.0, 40.0, n).round(2),
            "country": rng.choice(["DE", "FR", "IT", "ES"], n),
            "price": (cost * rng.uniform(1.0, 1.5, n)).round(2),
            "cost": cost,
        }
    )


reference_df = orders(2000, first=10_000)
reference_df.to_parquet("reference.parquet")
for version in range(3):
    loopline.log_dataset(orders(2000, first=10_000 * (version + 2)), name="orders")
batch = orders(2000, first=50_000)
batch.to_parquet("new.parquet")
batch.to_parquet("orders.parquet")
