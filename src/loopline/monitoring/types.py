"""What the monitoring stores hold and return: monitors, their runs, and a run's full result.

Plain values shared by the SQL store, the REST store, the server's routes and the ``Monitors`` client,
with their JSON shapes (``*_to_json`` / ``*_from_json``) in one place so both ends of the wire agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from loopline.monitoring.alerts import Delivery
from loopline.monitoring.report import DriftReport

# Where a monitor's files live in the artifact store: <name>/window.parquet, <name>/reports/<digest>.json
MONITOR_FILES = "monitoring/monitors"


@dataclass(frozen=True)
class Monitor:
    name: str
    target: str  # deployments:/name or models:/name@alias
    reference: str  # a datasets:/ URI or a file; "" = the training data found through lineage
    window: str
    schedule: str
    config: Mapping[str, Any]
    state: Mapping[str, Any]
    created_ms: int
    updated_ms: int
    last_run_ms: int | None = None
    next_run_ms: int | None = None
    id: int = 0

    @property
    def uri(self) -> str:
        return f"monitors:/{self.name}"


@dataclass(frozen=True)
class MonitorRun:
    id: int
    monitor: str
    started_ms: int
    finished_ms: int
    rows: int
    new_rows: int
    status: str  # ok | drift | no_data | failed
    dataset_drift: bool
    drift_share: float | None
    summary: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    """One evaluation: the stored run, its drift report (None without rows), figures and alerts."""

    run: MonitorRun
    report: DriftReport | None
    metrics: dict[str, float]
    reference: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


# ---- JSON shapes (the REST API's) --------------------------------------------------------------


def monitor_to_json(m: Monitor) -> dict[str, Any]:
    return {
        "name": m.name,
        "uri": m.uri,
        "target": m.target,
        "reference": m.reference or None,
        "window": m.window,
        "schedule": m.schedule or None,
        "webhooks": list(m.config.get("webhooks", [])),
        "config": dict(m.config),
        "state": dict(m.state),
        "created_ms": m.created_ms,
        "updated_ms": m.updated_ms,
        "last_run_ms": m.last_run_ms,
        "next_run_ms": m.next_run_ms,
        "id": m.id,
    }


def monitor_from_json(d: Mapping[str, Any]) -> Monitor:
    return Monitor(
        name=d["name"],
        target=d["target"],
        reference=d.get("reference") or "",
        window=d["window"],
        schedule=d.get("schedule") or "",
        config=dict(d.get("config") or {}),
        state=dict(d.get("state") or {}),
        created_ms=int(d["created_ms"]),
        updated_ms=int(d.get("updated_ms") or d["created_ms"]),
        last_run_ms=d.get("last_run_ms"),
        next_run_ms=d.get("next_run_ms"),
        id=int(d.get("id") or 0),
    )


def run_to_json(r: MonitorRun) -> dict[str, Any]:
    return {**asdict(r), "summary": dict(r.summary)}


def run_from_json(d: Mapping[str, Any]) -> MonitorRun:
    return MonitorRun(
        id=int(d["id"]),
        monitor=d["monitor"],
        started_ms=int(d["started_ms"]),
        finished_ms=int(d["finished_ms"]),
        rows=int(d["rows"]),
        new_rows=int(d["new_rows"]),
        status=d["status"],
        dataset_drift=bool(d["dataset_drift"]),
        drift_share=d.get("drift_share"),
        summary=dict(d.get("summary") or {}),
    )


def result_to_json(r: RunResult) -> dict[str, Any]:
    """A run's result; the report keeps its histograms so a client can draw the HTML page."""
    return {
        "run": run_to_json(r.run),
        # the flat keys predate ``run`` and are kept for scripts that read them
        "run_id": r.run.id,
        "status": r.run.status,
        "rows": r.run.rows,
        "new_rows": r.run.new_rows,
        "reference": r.reference,
        "metrics": r.metrics,
        "alerts": r.alerts,
        "deliveries": [asdict(d) for d in r.deliveries],
        "report": r.report.to_dict(histograms=True) if r.report is not None else None,
    }


def result_from_json(d: Mapping[str, Any]) -> RunResult:
    report = d.get("report")
    return RunResult(
        run=run_from_json(d["run"]),
        report=DriftReport.from_dict(report) if report is not None else None,
        metrics={k: float(v) for k, v in (d.get("metrics") or {}).items()},
        reference=d.get("reference") or "",
        alerts=list(d.get("alerts") or []),
        deliveries=[Delivery(**x) for x in d.get("deliveries") or []],
    )
