"""DORA's four metrics for models, read from the loop's events (``automation/events.py``).

Over a window ``[since, until)``, overall and per model (the events' payload ``model``):

- **deployment frequency**: ``loop.promote`` events (a candidate became champion), and per day;
- **lead time for changes**: a promotion's time minus its payload ``change_ms`` (when the data or
  code change that led to it happened), median and p90;
- **change failure rate**: of the rollouts that reached traffic in the window (a ``loop.rollout_step``
  of stage ``canary``, or a ``loop.promote``), the share that were rolled back (``loop.rollback``);
  a rollback during shadow is no failure, users never saw the candidate;
- **time to restore**: a ``loop.restored`` event's time minus its payload ``detected_ms`` (when the
  regression was seen), median and p90, for the rollouts that failed so (reached traffic): putting
  back a shadow restored nobody's service.

One query reads only those four actions in the window (the events table's index on workspace,
action and time), so the report costs what the loop did in the window, not the table's size.
``read_dora(context)`` computes it from the database, or asks the ``loopline server`` the context
names (``GET /api/2.0/loopline/dora``). ``DoraCollector`` shows a report as Prometheus gauges.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.automation import events as ev
from loopline.automation.timespec import parse_duration_ms
from loopline.clock import now_ms

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry
    from sqlalchemy import Engine, Select

    from loopline.context import Context

DAY_MS = 86_400_000
ALL_MODELS = "*"  # the ``model`` label of the overall figures in Prometheus
_ACTIONS = (ev.PROMOTE, ev.ROLLOUT_STEP, ev.ROLLBACK, ev.RESTORED)


@dataclass(frozen=True)
class Durations:
    """How many durations were measured, and their median and 90th percentile (None without any)."""

    count: int = 0
    median_ms: float | None = None
    p90_ms: float | None = None

    @classmethod
    def of(cls, values: list[int]) -> Durations:
        if not values:
            return cls()
        ordered = sorted(values)
        return cls(len(ordered), quantile(ordered, 0.5), quantile(ordered, 0.9))


@dataclass(frozen=True)
class DoraFigures:
    """The four metrics over one window, for one model or for all."""

    deployments: int = 0
    deployments_per_day: float = 0.0
    lead_time: Durations = field(default_factory=Durations)
    rollouts: int = 0  # that reached traffic
    failures: int = 0  # of those, rolled back
    change_failure_rate: float | None = None  # failures / rollouts; None without rollouts
    time_to_restore: Durations = field(default_factory=Durations)


@dataclass(frozen=True)
class DoraReport:
    """DORA metrics over ``[since_ms, until_ms)``: ``overall``, and per model by name."""

    since_ms: int
    until_ms: int
    overall: DoraFigures
    models: Mapping[str, DoraFigures] = field(default_factory=dict)
    model: str | None = None  # the one model asked for, if any

    @property
    def window_ms(self) -> int:
        return self.until_ms - self.since_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "model": self.model,
            "overall": asdict(self.overall),
            "models": {name: asdict(f) for name, f in sorted(self.models.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DoraReport:
        return cls(
            since_ms=int(data["since_ms"]),
            until_ms=int(data["until_ms"]),
            model=data.get("model"),
            overall=_figures_from_json(data["overall"]),
            models={name: _figures_from_json(f) for name, f in (data.get("models") or {}).items()},
        )


def _figures_from_json(data: Mapping[str, Any]) -> DoraFigures:
    return DoraFigures(
        deployments=int(data["deployments"]),
        deployments_per_day=float(data["deployments_per_day"]),
        lead_time=Durations(**data["lead_time"]),
        rollouts=int(data["rollouts"]),
        failures=int(data["failures"]),
        change_failure_rate=data.get("change_failure_rate"),
        time_to_restore=Durations(**data["time_to_restore"]),
    )


def quantile(ordered: list[int], q: float) -> float:
    """The ``q`` quantile of sorted ``ordered``, interpolated linearly between the nearest ranks (as
    NumPy's default): the median of 1, 2, 3, 4 is 2.5."""
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class _Tally:
    """What the events of one model (or all) add up to, before the figures are taken."""

    deployments: int = 0
    lead_times: list[int] = field(default_factory=list)
    reached: set[str] = field(default_factory=set)  # rollouts that reached traffic
    rolled_back: set[str] = field(default_factory=set)
    restores: list[tuple[str, int]] = field(default_factory=list)  # (rollout, detected → restored)

    def add(self, time_ms: int, action: str, rollout: str, payload: Mapping[str, Any]) -> None:
        if action == ev.PROMOTE:
            self.deployments += 1
            self.reached.add(rollout)
            if (change := _ms(payload.get("change_ms"))) is not None:
                self.lead_times.append(time_ms - change)
        elif action == ev.ROLLOUT_STEP:
            if payload.get("stage") == "canary":
                self.reached.add(rollout)
        elif action == ev.ROLLBACK:
            self.rolled_back.add(rollout)
        elif action == ev.RESTORED and (detected := _ms(payload.get("detected_ms"))) is not None:
            self.restores.append((rollout, time_ms - detected))

    def figures(self, window_ms: int) -> DoraFigures:
        failures = len(self.reached & self.rolled_back)
        rollouts = len(self.reached)
        return DoraFigures(
            deployments=self.deployments,
            deployments_per_day=self.deployments * DAY_MS / window_ms,
            lead_time=Durations.of(self.lead_times),
            rollouts=rollouts,
            failures=failures,
            change_failure_rate=failures / rollouts if rollouts else None,
            time_to_restore=Durations.of([ms for r, ms in self.restores if r in self.reached]),
        )


def _ms(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value)


def dora_query(workspace: str, *, since_ms: int, until_ms: int, model: str | None = None) -> Select[Any]:
    """The one query a report reads: the four actions DORA counts, in the window (the events
    table's index on workspace, action and time finds them), oldest first."""
    from sqlalchemy import or_, select

    from loopline.metadata import schema as t

    e = t.events.c
    q = select(e.time_ms, e.action, e.object_uri, e.payload).where(
        e.workspace == workspace,
        e.action.in_(_ACTIONS),
        e.time_ms >= since_ms,
        e.time_ms < until_ms,
        # Shadow steps never count: leave them in the database (the payload is checked again).
        or_(e.action != ev.ROLLOUT_STEP, e.payload.contains('"canary"', autoescape=True)),
    )
    if model is not None:
        # A pre-filter on the payload's text (append_event writes json.dumps' spacing); each row's
        # parsed payload decides in compute_dora.
        q = q.where(e.payload.contains(json.dumps({"model": model})[1:-1], autoescape=True))
    return q.order_by(e.time_ms, e.id)


def compute_dora(
    engine: Engine,
    workspace: str,
    *,
    since_ms: int,
    until_ms: int,
    model: str | None = None,
) -> DoraReport:
    """The report of ``workspace``'s events in ``[since_ms, until_ms)`` (of ``model`` only, if given)."""
    from loopline.errors import InvalidInput

    if until_ms <= since_ms:
        raise InvalidInput(
            f"The window is empty: it ends ({until_ms}) before it starts ({since_ms}).",
            hint="Give a window such as 30d.",
        )
    q = dora_query(workspace, since_ms=since_ms, until_ms=until_ms, model=model)
    overall = _Tally()
    per_model: dict[str, _Tally] = {}
    with engine.connect() as conn:
        for time_ms, action, rollout, text in conn.execute(q):
            payload = json.loads(text)
            name = payload.get("model")
            if model is not None and name != model:
                continue
            overall.add(time_ms, action, rollout, payload)
            if isinstance(name, str) and name:
                per_model.setdefault(name, _Tally()).add(time_ms, action, rollout, payload)
    window = until_ms - since_ms
    return DoraReport(
        since_ms=since_ms,
        until_ms=until_ms,
        model=model,
        overall=overall.figures(window),
        models={name: tally.figures(window) for name, tally in sorted(per_model.items())},
    )


def read_dora(
    context: Context, window: str = "30d", *, model: str | None = None, until_ms: int | None = None
) -> DoraReport:
    """The DORA report of the ``window`` (``30d``, ``12h``, …) up to ``until_ms`` (default: now),
    from the context's database or, when its tracking URI is a server, from that server."""
    window_ms = parse_duration_ms(window)
    if context.is_remote:
        query = {"window": window, "model": model, "until_ms": until_ms}
        return DoraReport.from_json(context.http.call("GET", "/api/2.0/loopline/dora", query))
    end = now_ms() if until_ms is None else until_ms
    return compute_dora(
        context.engine, context.workspace, since_ms=end - window_ms, until_ms=end, model=model
    )


# ---- Prometheus ---------------------------------------------------------------------------------


class DoraCollector:
    """A prometheus_client collector of the report ``read()`` returns, per model and overall (the
    ``model`` label ``*``). ``read`` runs at each scrape, inside ``generate_latest``: on a server,
    compute the report in a thread first and hand over ``lambda: report``."""

    def __init__(self, read: Callable[[], DoraReport]) -> None:
        self.read = read

    def describe(self) -> list[Any]:
        return []  # nothing to check at registration: the families depend on the report

    def collect(self) -> Iterator[Any]:
        return dora_metric_families(self.read())


def dora_metric_families(report: DoraReport) -> Iterator[Any]:
    """The report's figures as Prometheus gauge families (seconds, as Prometheus prefers)."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, text: str, *extra: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"loopline_dora_{name}", text, labels=["model", *extra])

    window = GaugeMetricFamily("loopline_dora_window_seconds", "The window the DORA gauges cover.")
    window.add_metric([], report.window_ms / 1000)
    deployments = gauge("deployments", "Promotions (loop.promote) in the window.")
    per_day = gauge("deployments_per_day", "Promotions per day over the window.")
    rollouts = gauge("rollouts", "Rollouts that reached traffic (a canary step or a promotion).")
    failures = gauge("change_failures", "Rollouts that reached traffic and were rolled back.")
    rate = gauge("change_failure_rate", "Change failures / rollouts that reached traffic.")
    lead = gauge("lead_time_seconds", "Change (data or code) to serving, by quantile.", "quantile")
    restore = gauge("time_to_restore_seconds", "Regression detected to restored, by quantile.", "quantile")
    rows = [(ALL_MODELS, report.overall), *sorted(report.models.items())]
    for name, f in rows:
        deployments.add_metric([name], f.deployments)
        per_day.add_metric([name], f.deployments_per_day)
        rollouts.add_metric([name], f.rollouts)
        failures.add_metric([name], f.failures)
        if f.change_failure_rate is not None:
            rate.add_metric([name], f.change_failure_rate)
        for family, d in ((lead, f.lead_time), (restore, f.time_to_restore)):
            for q, value in (("0.5", d.median_ms), ("0.9", d.p90_ms)):
                if value is not None:
                    family.add_metric([name, q], value / 1000)
    yield from (window, deployments, per_day, rollouts, failures, rate, lead, restore)


def register_dora_gauges(registry: CollectorRegistry, read: Callable[[], DoraReport]) -> DoraCollector:
    """Register a :class:`DoraCollector` of ``read`` on ``registry``; returns it (to unregister)."""
    collector = DoraCollector(read)
    registry.register(collector)
    return collector


__all__ = [
    "ALL_MODELS",
    "DoraCollector",
    "DoraFigures",
    "DoraReport",
    "Durations",
    "compute_dora",
    "dora_metric_families",
    "dora_query",
    "quantile",
    "read_dora",
    "register_dora_gauges",
]
