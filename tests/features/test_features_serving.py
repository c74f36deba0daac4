"""The inference server told a model's feature service: requests carry entity keys, the store the features."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, Float64
from loopline.serving import ServeConfig, create_app


def test_requests_with_entity_keys_get_their_features(tmp_path: Path) -> None:
    from serving.helpers import COLUMNS, make_registry

    reg = make_registry(tmp_path / "registry", versions=2)
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    n = 10
    table = pa.table(
        {
            "customer_id": list(range(n)),
            "event_timestamp": [when] * n,
            **{c: reg.X[c].iloc[:n].tolist() for c in COLUMNS},
        }
    )
    pq.write_table(table, tmp_path / "customers.parquet")
    customer = Entity(name="customer", join_keys=["customer_id"])
    view = FeatureView(
        name="customer_stats",
        entities=[customer],
        source=FileSource(path=str(tmp_path / "customers.parquet")),
        schema=[Field(c, Float64) for c in COLUMNS],
    )
    client = reg.client()
    fs = FeatureStore(client.settings)
    fs.apply([customer, view, FeatureService(name="churn_features", features=[view])])
    fs.materialize(when - dt.timedelta(days=1), when)
    fs.close()
    expected = reg.expected(1, reg.X.iloc[[3, 7]])

    async def scenario() -> tuple[Any, Any, Any]:
        config = ServeConfig(
            model_uri="models:/churn/1",
            feature_service="churn_features",
            poll_interval=0,
            inference_log=False,
        )
        app = create_app(config, client=client)
        await app.startup()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://serve"
            ) as http:
                for _ in range(600):
                    if app.runtime.ready or app.runtime.error:
                        break
                    await asyncio.sleep(0.05)
                records = await http.post(
                    "/invocations", json={"dataframe_records": [{"customer_id": 3}, {"customer_id": 7}]}
                )
                split = await http.post(
                    "/invocations", json={"dataframe_split": {"columns": ["customer_id"], "data": [[3], [7]]}}
                )
                unknown = await http.post("/invocations", json={"dataframe_records": [{"id": 3}]})
                return records, split, unknown
        finally:
            await app.shutdown()

    records, split, unknown = asyncio.run(scenario())
    assert records.status_code == 200, records.text
    assert records.json()["predictions"] == list(expected)
    assert split.json()["predictions"] == list(expected)
    assert unknown.status_code == 400 and "customer_id" in unknown.json()["message"]
    client.close()
