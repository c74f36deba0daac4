"""Data versioning in a minute: version a table, change it, compare, alias, read back, lineage.

Run: python examples/data_quickstart.py   (writes to ./.loopline-data-example)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

import loopline
from loopline.data import DataClient

home = Path(".loopline-data-example")
shutil.rmtree(home, ignore_errors=True)
home.mkdir()
loopline.set_tracking_uri(f"sqlite:///{home / 'loopline.db'}", str(home / "artifacts"))

rng = np.random.default_rng(0)
customers = pd.DataFrame(
    {"id": np.arange(1000), "age": rng.integers(18, 90, 1000), "plan": rng.choice(["free", "pro"], 1000)}
)
customers.to_parquet(home / "customers.parquet")

client = DataClient(loopline.Settings.from_env(tracking_uri=f"sqlite:///{home / 'loopline.db'}"))
v1 = client.add(home / "customers.parquet", "customers").version
print(f"added {v1.uri}: {v1.num_rows} rows, digest {v1.digest[:12]}")
print(
    "same content again ->",
    client.add(home / "customers.parquet", "customers").version.uri,
    "(no new version)",
)

customers.assign(age=customers.age + 1).to_parquet(home / "customers.parquet")
v2 = client.add(home / "customers.parquet", "customers").version
client.set_alias("customers", "prod", v1.version)
print(
    f"changed -> {v2.uri}; datasets:/customers@prod -> version {client.get_version('customers@prod').version}"
)
print("diff:", client.diff(v1.uri, v2.uri)["files"])

with loopline.start_run(experiment="data-example") as run:
    train = loopline.load_dataset("datasets:/customers@prod")
    loopline.log_dataset("datasets:/customers@prod", context="training")  # the run's input: v1
    loopline.log_metric("rows", len(train))

from loopline.metadata import lineage  # noqa: E402

edges = lineage.downstream(client.store.engine, "default", v1.uri)
print(f"downstream of {v1.uri}:", [e.to_uri for e in edges])
assert any(e.to_uri == f"runs:/{run.info.run_id}" for e in edges)
