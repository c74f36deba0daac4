"""A deployment's traffic per minute, read from inference-log parts written the way serving writes them."""

from __future__ import annotations

import time
from pathlib import Path

from loopline.artifacts import open_artifact_store
from loopline.monitoring.traffic import deployment_traffic
from loopline.serving.inference_log import Prediction, _write_predictions

MIN = 60_000


def _p(
    ms: int, latency: float, *, status: int = 200, role: str = "primary", deployment: str = "prod"
) -> Prediction:
    return Prediction("r", ms, deployment, "churn", "1", role, 1, None, [1], latency, status)


def test_buckets_count_primary_requests_errors_and_latency_quantiles(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "artifacts"))
    now = int(time.time() * 1000)
    since = now - now % MIN - 2 * MIN  # three buckets: two full minutes and the current one
    _write_predictions(
        store,
        [_p(since + 1000 + i, float(i + 1)) for i in range(100)]  # 1..100 ms
        + [_p(since + 5000, 7.0, status=500), _p(since + 6000, 9.0, status=404)]
        + [_p(since + MIN + 10, 5.0)]
        + [_p(since + 10, 999.0, role="shadow"), _p(since + 20, 999.0, deployment="other")]
        + [_p(since - 1, 999.0)],  # before the window
    )
    _write_predictions(
        store, [Prediction("x", since + 30, "prod", "other-model", "1", "primary", 1, None, [1], 1.0, 200)]
    )
    buckets = deployment_traffic(store, "prod", ["churn"], since, MIN, now)
    assert [b.start_ms for b in buckets] == [since, since + MIN, since + 2 * MIN][: len(buckets)]
    first, second = buckets[0], buckets[1]
    assert (first.requests, first.errors) == (102, 2)
    assert first.p50_ms == 49.0 and first.p99_ms == 99.0  # nearest rank of 1..100 ms with 7 and 9 twice
    assert (second.requests, second.errors, second.p50_ms, second.p99_ms) == (1, 0, 5.0, 5.0)
    assert all(b.requests == 0 and b.p99_ms is None for b in buckets[2:])
    both = deployment_traffic(store, "prod", ["churn", "other-model"], since, MIN, now)
    assert both[0].requests == 103
    # Parts written before the window's start are not read, whatever rows they hold.
    assert deployment_traffic(store, "prod", ["churn"], now + 1, MIN, now + MIN)[0].requests == 0
