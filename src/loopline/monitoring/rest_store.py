"""``MonitoringStore`` over ``loopline server``'s REST API (``loopline.server.monitoring_api``).

Monitors run on the server, which holds the inference logs and references in its artifact store:
``run_monitor`` asks it to run one and returns the result it computed, report included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from loopline.monitoring.report import DriftReport
from loopline.monitoring.types import (
    Monitor,
    MonitorRun,
    RunResult,
    monitor_from_json,
    result_from_json,
    run_from_json,
)
from loopline.protocol.http import RestClient
from loopline.protocol.jobs import ProgressFn, request_job

_API = "/api/2.0/loopline/monitors"
RUN_TIMEOUT = 3600.0  # seconds a server without jobs may take to answer a run


class RestMonitoringStore:
    """Monitors on a server, scoped to the workspace the server gives the caller."""

    def __init__(self, client: RestClient) -> None:
        self.client = client  # the context's: one connection pool for every domain

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.client.call(method, _API + path, body)

    def create_monitor(
        self,
        name: str,
        target: str,
        *,
        reference: str = "",
        window: str = "1h",
        schedule: str = "",
        config: Mapping[str, Any] | None = None,
        next_run_ms: int | None = None,
        replace: bool = False,
    ) -> Monitor:
        # next_run_ms is the server's to compute (its clock decides when the monitor is due)
        body = {
            "name": name,
            "target": target,
            "reference": reference,
            "window": window,
            "schedule": schedule,
            "config": dict(config or {}),
            "replace": replace,
        }
        return monitor_from_json(self._call("POST", "/create", body)["monitor"])

    def get_monitor(self, name: str) -> Monitor:
        return monitor_from_json(self._call("GET", "/get", {"name": name})["monitor"])

    def list_monitors(self) -> list[Monitor]:
        return [monitor_from_json(m) for m in self._call("GET", "/list")["monitors"]]

    def delete_monitor(self, name: str) -> None:
        self._call("POST", "/delete", {"name": name})

    def due_monitors(self, at_ms: int) -> list[Monitor]:
        return [monitor_from_json(m) for m in self._call("GET", "/due", {"at_ms": at_ms})["monitors"]]

    def list_runs(self, name: str, limit: int = 100) -> list[MonitorRun]:
        body = self._call("GET", "/runs", {"name": name, "max_results": limit})
        return [run_from_json(r) for r in body["runs"]]

    def history(
        self,
        name: str,
        keys: Sequence[str] | None = None,
        *,
        since_ms: int | None = None,
        limit: int = 10_000,
    ) -> list[tuple[int, str, float]]:
        query = {"name": name, "key": list(keys or []) or None, "since_ms": since_ms, "max_results": limit}
        body = self._call("GET", "/history", query)
        return [
            (int(t), str(k), float(v))
            for t, k, v in zip(body["time_ms"], body["key"], body["value"], strict=True)
        ]

    def latest_metrics(self) -> dict[str, dict[str, float]]:
        body = self._call("GET", "/latest-metrics")
        return {m: {k: float(v) for k, v in figures.items()} for m, figures in body["monitors"].items()}

    def run_monitor(
        self, name: str, *, at_ms: int | None = None, progress: ProgressFn | None = None
    ) -> RunResult:
        # A job: answered when done or 202 and polled (protocol/jobs.py). A server of before jobs
        # answers when done, so the read may take that long (a timed-out request would be retried:
        # the run done twice).
        body = request_job(
            self.client,
            "POST",
            _API + "/run",
            json={"name": name, "at_ms": at_ms},
            progress=progress,
            timeout=httpx.Timeout(RUN_TIMEOUT, connect=10.0),
        )
        return result_from_json(body)

    def start_monitor(self, name: str) -> None:
        self._call("POST", "/run", {"name": name, "wait": False})

    def get_report(self, name: str, run_id: int | None = None) -> DriftReport | None:
        body = self._call("GET", "/report", {"name": name, "run_id": run_id})
        report = body.get("report")
        return DriftReport.from_dict(report) if report is not None else None
