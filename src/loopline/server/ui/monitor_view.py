"""A monitor as its page shows it: the drift share over time, the latest report's columns, its runs.

Read from the monitoring store of the request's context (runs, the ``drift_share`` series and the
stored drift reports). The per-column bars and distribution overlays are SVG drawn here, so they
need no script; the drift share over time is drawn by uPlot from the points the page carries (a
monitor keeps one point per run: a few thousand at most, no downsampling needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from loopline.context import Context
from loopline.monitoring.types import Monitor, MonitorRun

if TYPE_CHECKING:
    from loopline.monitoring.report import ColumnDrift, DriftReport
    from loopline.monitoring.sql_store import SqlMonitoringStore

RUNS = 50  # runs listed on the page
CHART_POINTS = 5_000  # the newest drift-share points drawn


BAR_PX = 160  # the widest bar
AT_THRESHOLD_PX = 40  # where a bar reaches its column's threshold: the bar reads 4x past it at most


@dataclass(frozen=True, slots=True)
class ColumnRow:
    """One column of a drift report: its verdict, and how far past its threshold it is."""

    drift: ColumnDrift
    label: str
    ratio: float  # the score in units of its threshold: past 1, the test says "drifted"
    overlay: Markup  # the reference's and the current distribution, side by side (SVG)

    @property
    def bar_px(self) -> float:
        return round(min(self.ratio * AT_THRESHOLD_PX, BAR_PX), 1)


@dataclass(frozen=True, slots=True)
class Summary:
    """A monitor in the list: its newest run, if any."""

    monitor: Monitor
    latest: MonitorRun | None


@dataclass(frozen=True, slots=True)
class MonitorPage:
    monitor: Monitor
    runs: list[MonitorRun]
    report_run: MonitorRun | None  # the newest run with a report
    report: DriftReport | None
    columns: list[ColumnRow]
    chart: dict[str, Any] = field(default_factory=dict)  # {"x": [s], "y": [drift share], "threshold"}


def store(context: Context) -> SqlMonitoringStore:
    from loopline.monitoring.sql_store import SqlMonitoringStore  # brings NumPy: only when asked

    return SqlMonitoringStore(
        context.engine, workspace=context.workspace, actor=context.actor, context=context
    )


def list_all(context: Context) -> list[Summary]:
    s = store(context)
    return [Summary(m, next(iter(s.list_runs(m.name, 1)), None)) for m in s.list_monitors()]


def columns(report: DriftReport) -> list[ColumnRow]:
    """Drifted columns first, then by name; prediction and target drift (when measured) on top."""
    from loopline.monitoring.html import overlay

    cols: list[tuple[str, ColumnDrift]] = [
        (c.name, c) for c in sorted(report.columns.values(), key=lambda c: (not c.drifted, c.name))
    ]
    for label, extra in (("target", report.target_drift), ("prediction", report.prediction_drift)):
        if extra is not None:
            cols.insert(0, (f"{label}: {extra.name}", extra))
    # The SVG is built with every label escaped (monitoring.html).
    return [ColumnRow(c, label, ratio(c), Markup(overlay(c, 220, 70))) for label, c in cols]


def ratio(c: ColumnDrift) -> float:
    """The column's score against its threshold, so tests of different scales share one bar: a
    distance (PSI, Wasserstein…) over its threshold, or a p-value's -log10 over alpha's."""
    if c.p_value is None:
        return _finite(c.statistic / c.threshold) if c.threshold > 0 else 0.0
    p = c.p_value_adjusted if c.p_value_adjusted is not None else c.p_value
    if not 0 < c.threshold < 1:
        return 0.0
    return _finite(-math.log10(max(p, 1e-300)) / -math.log10(c.threshold))


def _finite(x: float) -> float:
    return x if math.isfinite(x) and x > 0 else 0.0


def load(context: Context, name: str) -> MonitorPage:
    """``NotFound`` when there is no monitor ``name``."""
    s = store(context)
    monitor = s.get_monitor(name)
    runs = s.list_runs(name, RUNS)
    report_run = next((r for r in runs if r.summary.get("report")), None)
    report = s.get_report(name, report_run.id) if report_run is not None else None
    points = s.history(name, ["drift_share"], limit=CHART_POINTS)
    threshold = float(report.options.get("drift_share", 0.5)) if report is not None else 0.5
    chart = {"x": [t / 1000 for t, _, _ in points], "y": [v for _, _, v in points], "threshold": threshold}
    return MonitorPage(monitor, runs, report_run, report, columns(report) if report else [], chart)


def history_by_column(points: Sequence[tuple[int, str, float]]) -> dict[str, list[tuple[int, float]]]:
    """Each column's drift statistic over time (``drift.<column>`` series), for the HTML report."""
    out: dict[str, list[tuple[int, float]]] = {}
    for t, key, value in points:
        if key.startswith("drift."):
            out.setdefault(key.removeprefix("drift."), []).append((t, value))
    return out


def report_html(context: Context, name: str, run_id: int | None) -> str:
    """The self-contained HTML drift report of run ``run_id`` (default: the newest with one);
    ``NotFound`` when that run has no report."""
    from loopline.errors import NotFound
    from loopline.monitoring.html import render_html

    s = store(context)
    report = s.get_report(name, run_id)
    if report is None:
        which = f"Run {run_id}" if run_id is not None else "No run"
        raise NotFound(
            f"{which} of monitor {name!r} has no drift report.", hint="A run with no rows has none."
        )
    history = history_by_column(s.history(name))
    title = f"Monitor {name}" + (f", run {run_id}" if run_id is not None else "")
    return render_html(report, history=history, title=title)


__all__ = [
    "ColumnRow",
    "MonitorPage",
    "Summary",
    "columns",
    "history_by_column",
    "list_all",
    "load",
    "ratio",
    "report_html",
]
