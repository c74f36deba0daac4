"""The online route over a real ``loopline server`` subprocess, fed by a materialisation in this process."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx

from loopline.config import Settings
from loopline.features import FeatureStore


def test_online_features_over_http(loopline_server: str, tmp_path: Path, defs_file: Path) -> None:
    # The fixture's server keeps its database and online store in tmp_path: write to the same ones.
    fs = FeatureStore(
        Settings.from_env({}, tracking_uri=f"sqlite:///{tmp_path / 'server.db'}", user="tester")
    )
    fs.apply(defs_file)
    fs.materialize(dt.datetime(2025, 12, 31), dt.datetime(2026, 1, 1, 12))
    url = f"{loopline_server}/api/2.0/loopline/features/online"
    r = httpx.post(
        url,
        json={
            "features": ["driver_stats:conv_rate", "driver_stats:trips"],
            "entities": {"driver_id": [1, 99]},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"features": {"driver_id": [1, 99], "conv_rate": [0.22, None], "trips": [112, None]}}
    # The service has an on-demand view: Python, which this server does not run (not opted in).
    r = httpx.post(url, json={"feature_service": "activity", "entity_rows": [{"driver_id": 2, "bonus": 0.5}]})
    assert r.status_code == 400 and "does not run on-demand views (boosted)" in r.json()["message"]
    bad = httpx.post(url, json={"features": ["driver_stats:nope"], "entities": {"driver_id": [1]}})
    assert bad.status_code == 404 and "Unknown feature 'driver_stats:nope'" in bad.json()["message"]
    missing = httpx.post(url, json={"features": ["driver_stats:trips"], "entities": {"id": [1]}})
    assert missing.status_code == 400 and "no 'driver_id'" in missing.json()["message"]
    shape = httpx.post(url, json={"features": "driver_stats:trips", "entities": {"driver_id": [1]}})
    assert shape.status_code == 400
    listed = httpx.get(f"{loopline_server}/api/2.0/loopline/features/definitions").json()["definitions"]
    assert {d["name"] for d in listed} == {"driver", "driver_stats", "boosted", "activity"}
    fs.close()
