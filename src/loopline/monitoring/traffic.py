"""A deployment's traffic over time, read from the inference log: what its page charts live.

Per time bucket: the requests its routes answered (role ``primary``: a shadow's answers are only
logged, nobody waits for them), how many of those failed, and their p50 and p99 latency. Only the
log's parts written since the chart's start are read (see :func:`logwindow.parts_since`), so a
refresh costs the last hour's parts whatever the log's length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.artifacts import ArtifactStore
from loopline.monitoring.logwindow import parts_since, read_parts
from loopline.serving import log_schema as ls


@dataclass(frozen=True, slots=True)
class TrafficBucket:
    start_ms: int
    requests: int
    errors: int  # answers other than 200
    p50_ms: float | None  # None when the bucket has no request
    p99_ms: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }


def quantile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values (a value that was measured)."""
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


def deployment_traffic(
    store: ArtifactStore,
    deployment: str,
    models: Iterable[str],
    since_ms: int,
    bucket_ms: int,
    until_ms: int,
) -> list[TrafficBucket]:
    """``deployment``'s primary requests to any of ``models`` (registered model names) in buckets of
    ``bucket_ms`` from ``since_ms`` (rounded down to a bucket) to ``until_ms``, empty ones included."""
    first = since_ms - since_ms % bucket_ms
    count = max(1, -(-(until_ms - first) // bucket_ms))
    latencies: list[list[float]] = [[] for _ in range(count)]
    errors = [0] * count
    columns = [ls.TIMESTAMP, ls.DEPLOYMENT, ls.ROLE, ls.LATENCY_MS, ls.STATUS]
    for model in sorted(set(models)):
        for table in read_parts(store, parts_since(store, ls.predictions_dir(model), since_ms)):
            for r in table.select(columns).to_pylist():
                ms = int(r[ls.TIMESTAMP].timestamp() * 1000)
                if r[ls.DEPLOYMENT] != deployment or r[ls.ROLE] != "primary" or not since_ms <= ms < until_ms:
                    continue
                i = (ms - first) // bucket_ms
                latencies[i].append(float(r[ls.LATENCY_MS]))
                errors[i] += int(r[ls.STATUS] != 200)
    out = []
    for i, values in enumerate(latencies):
        values.sort()
        out.append(
            TrafficBucket(
                first + i * bucket_ms, len(values), errors[i], quantile(values, 0.5), quantile(values, 0.99)
            )
        )
    return out


__all__ = ["TrafficBucket", "deployment_traffic", "quantile"]
