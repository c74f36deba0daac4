"""Fixtures of the feature-store tests: an embedded store, driver data on disk, a private Redis namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from feature_support import DEFS, at

REQUIRE_SERVICES = os.environ.get("LOOPLINE_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI requires every service (as tests/conftest.py does)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (LOOPLINE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from loopline.config import Settings

    return Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'home' / 'loopline.db'}",
        artifacts_uri=str(tmp_path / "artifacts"),
        user="tester",
    )


@pytest.fixture
def driver_parquet(tmp_path: Path) -> Path:
    """Three drivers' hourly stats over a day; driver 3 has a null conv_rate at hour 5."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for driver in (1, 2, 3):
        for hour in range(0, 24, 2):
            conv = None if (driver, hour) == (3, 4) else round(driver / 10 + hour / 100, 4)
            rows.append(
                {
                    "driver_id": driver,
                    "event_timestamp": at(hour * 3600),
                    "conv_rate": conv,
                    "trips": driver * 100 + hour,
                }
            )
    path = tmp_path / "driver_stats.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def defs_file(tmp_path: Path, driver_parquet: Path) -> Path:
    path = tmp_path / "defs.py"
    path.write_text(DEFS.format(path=str(driver_parquet), ttl_hours=3))
    return path


@pytest.fixture
def store(settings: Any, defs_file: Path) -> Iterator[Any]:
    from loopline.features import FeatureStore

    fs = FeatureStore(settings)
    fs.apply(defs_file)
    yield fs
    fs.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis on 127.0.0.1:6379, db 0, with a key prefix private to this test (deleted afterwards)."""
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
        client.ping()
    except Exception as e:
        unavailable(f"Redis is not reachable at 127.0.0.1:6379: {e}")
    yield "redis://127.0.0.1:6379/0"
    client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"loopline-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
