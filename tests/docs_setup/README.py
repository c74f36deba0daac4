"""The data README.md names: model.pkl; a fitted ``model`` with ``X`` and ``X_new``; customers.parquet,
a first version of ``customers`` (the README's ``data add`` makes the second), suite.yaml, defs.py on
driver_stats.parquet, today.parquet; ``df``, ``entities``, ``reference`` and ``current``."""

import datetime as dt
import pickle
from pathlib import Path

import pandas as pd
from common import customers, driver_stats
from sklearn.linear_model import LogisticRegression

import loopline

X, X_new = customers(200).drop(columns="plan"), customers(5).drop(columns="plan")
model = LogisticRegression(max_iter=1000).fit(X, X.income > 50)
Path("model.pkl").write_bytes(pickle.dumps(model))

loopline.log_dataset(customers(300), name="customers")
customers(300).to_parquet("customers.parquet")
customers(300, shift=8).to_parquet("today.parquet")
Path("suite.yaml").write_text(
    "name: customers\nexpectations:\n"
    "  - {expect: column_exists, column: age, type: int64}\n"
    "  - {expect: not_null, column: income}\n"
    "  - {expect: in_set, column: plan, values: [basic, plus, pro]}\n"
)

driver_stats().to_parquet("driver_stats.parquet")
Path("defs.py").write_text(
    "from datetime import timedelta\n"
    "from loopline.features import Entity, FeatureView, Field, FileSource, Float64, Int64\n\n"
    "driver = Entity(name='driver', join_keys=['driver_id'])\n"
    "driver_stats = FeatureView(name='driver_stats', entities=[driver],\n"
    "    source=FileSource(path='driver_stats.parquet', timestamp_field='event_timestamp'),\n"
    "    schema=[Field('conv_rate', Float64), Field('trips_today', Int64)], ttl=timedelta(hours=2))\n"
)

df = customers(100)
entities = pd.DataFrame(
    {
        "driver_id": [1001, 1002, 1003],
        "event_timestamp": [dt.datetime(2026, 1, 1, h, 30, tzinfo=dt.UTC) for h in (3, 7, 1)],
    }
)
reference, current = customers(500), customers(500, shift=5)
