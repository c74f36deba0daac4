"""Prometheus metrics of the inference server, labelled by model name and version.

Each app has its own registry (so tests and several apps in one process do not collide). With
several worker processes (``--workers N``) the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start, and ``/metrics`` sums every worker's figures, as prometheus-client's multiprocess
mode does; otherwise one scrape would see one worker.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The server's counters and histograms. Label children are cached: ``labels()`` takes a lock."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "loopline_requests",
            "Inference requests answered.",
            ["model", "version", "protocol", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "loopline_request_duration_seconds",
            "Time from the request's body to its response, in seconds.",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("loopline_predicted_rows", "Rows predicted.", ["model", "version"], registry=r)
        self.batch_rows = Histogram(
            "loopline_batch_rows",
            "Rows per predict call.",
            ["model", "version"],
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "loopline_batch_duration_seconds",
            "Time of one predict call, in seconds.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejected = Counter(
            "loopline_rejected_requests",
            "Requests refused with 429 (queue full).",
            ["model", "version"],
            registry=r,
        )
        self.shadow = Counter(
            "loopline_shadow_requests",
            "Copies of requests sent to a shadow model, by outcome (ok, error, dropped).",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.log_dropped = Counter(
            "loopline_inference_log_dropped", "Inference log records dropped (writer behind).", registry=r
        )
        mode: dict[str, Any] = {"multiprocess_mode": "livemax"} if self.multiprocess else {}
        self.served = Gauge(
            "loopline_model_weight",
            "Traffic weight of each model version being served (0 for a shadow).",
            ["model", "version", "role"],
            registry=r,
            **mode,
        )
        self.ready = Gauge(
            "loopline_ready", "1 once every model is loaded and warmed up.", registry=r, **mode
        )
        self._cache: dict[tuple[str, ...], Any] = {}

    def observe_request(self, model: str, version: str, protocol: str, code: int, seconds: float) -> None:
        key = (model, version, protocol, str(code))
        children = self._cache.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(model, version, protocol))
            self._cache[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, model: str, version: str, rows: int, seconds: float) -> None:
        key = ("batch", model, version)
        children = self._cache.get(key)
        if children is None:
            children = (
                self.rows.labels(model, version),
                self.batch_rows.labels(model, version),
                self.batch_seconds.labels(model, version),
            )
            self._cache[key] = children
        children[0].inc(rows)
        children[1].observe(rows)
        children[2].observe(seconds)

    def render(self) -> bytes:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
            return generate_latest(registry)
        return generate_latest(self.registry)
