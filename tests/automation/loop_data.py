"""The loop's events at chosen times, as the controller appends them, for the DORA and ``why`` tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from unittest import mock

from sqlalchemy import Engine

from loopline.automation import events as ev
from loopline.metadata import event_rows, lineage
from loopline.metadata.engine import write_transaction

H = 3_600_000
D = 24 * H
M = 60_000

Row = tuple[int, str, str, Mapping[str, Any]]  # time_ms, action, object URI, payload


def write_events(engine: Engine, rows: Iterable[Row], workspace: str = "default") -> None:
    """``append_event`` in one write transaction, each event stamped with its chosen time."""
    with write_transaction(engine) as conn:
        for time_ms, action, uri, payload in rows:
            with mock.patch.object(event_rows, "now_ms", return_value=time_ms):  # the stored clock only
                lineage.append_event(conn, workspace, "controller", action, uri, payload, reason="test")


def dora_events(t: int) -> list[Row]:
    """A month of the loop ending at ``t``, whose DORA figures ``EXPECTED`` spells out.

    churn: rollout 1 promoted (lead 3h); rollout 2 rolled back at canary (restored 20m after it was
    seen); rollout 3 rolled back in shadow (no failure, its restore not counted); a promotion 40 days
    ago (outside). fraud: rollout 4 promoted after a canary (lead 1d), rollout 5 promoted straight
    (lead 30m). churn2: one promotion without change_ms (a name churn is a prefix of). Tomorrow's
    event is past the window's end.
    """

    def p(model: str, **kw: Any) -> dict[str, Any]:
        return {"policy": model, "deployment": f"{model}-prod", "model": model, **kw}

    return [
        (t - 40 * D, ev.PROMOTE, "rollouts:/0", p("churn", change_ms=t - 41 * D)),
        (t - 20 * D - H, ev.ROLLOUT_STEP, "rollouts:/1", p("churn", step=0, stage="shadow", weight=100)),
        (t - 20 * D, ev.ROLLOUT_STEP, "rollouts:/1", p("churn", step=1, stage="canary", weight=5)),
        (t - 20 * D + H, ev.PROMOTE, "rollouts:/1", p("churn", change_ms=t - 20 * D - 2 * H)),
        (t - 10 * D, ev.ROLLOUT_STEP, "rollouts:/2", p("churn", step=1, stage="canary", weight=5)),
        (t - 10 * D + 30 * M, ev.ROLLBACK, "rollouts:/2", p("churn", detected_ms=t - 10 * D + 20 * M)),
        (t - 10 * D + 40 * M, ev.RESTORED, "rollouts:/2", p("churn", detected_ms=t - 10 * D + 20 * M)),
        (t - 5 * D, ev.ROLLOUT_STEP, "rollouts:/3", p("churn", step=0, stage="shadow", weight=100)),
        (t - 5 * D + 10 * M, ev.ROLLBACK, "rollouts:/3", p("churn", detected_ms=t - 5 * D)),
        (t - 5 * D + 11 * M, ev.RESTORED, "rollouts:/3", p("churn", detected_ms=t - 5 * D)),
        (t - 3 * D, ev.ROLLOUT_STEP, "rollouts:/4", p("fraud", step=0, stage="canary", weight=10)),
        (t - 2 * D, ev.PROMOTE, "rollouts:/4", p("fraud", change_ms=t - 3 * D)),
        (t - D, ev.PROMOTE, "rollouts:/5", p("fraud", change_ms=t - D - 30 * M)),
        (t - H, ev.PROMOTE, "rollouts:/6", p("churn2")),
        (t - H, ev.GATE, "rollouts:/6", p("churn2", passed=True, candidate="models:/churn2/1")),
        (t - 2 * H, "run.create", "runs:/" + "a" * 32, {"model": "churn"}),
        (t + D, ev.PROMOTE, "rollouts:/7", p("churn", change_ms=t)),
    ]


# Lead times: churn 3h; fraud 30m and 1d; overall 30m, 3h, 1d (median 3h, p90 3h + 0.8 * 21h).
EXPECTED: dict[str, dict[str, Any]] = {
    "churn": {
        "deployments": 1,
        "deployments_per_day": 1 / 30,
        "lead_time": {"count": 1, "median_ms": 3 * H, "p90_ms": 3 * H},
        "rollouts": 2,
        "failures": 1,
        "change_failure_rate": 0.5,
        "time_to_restore": {"count": 1, "median_ms": 20 * M, "p90_ms": 20 * M},
    },
    "churn2": {
        "deployments": 1,
        "deployments_per_day": 1 / 30,
        "lead_time": {"count": 0, "median_ms": None, "p90_ms": None},
        "rollouts": 1,
        "failures": 0,
        "change_failure_rate": 0.0,
        "time_to_restore": {"count": 0, "median_ms": None, "p90_ms": None},
    },
    "fraud": {
        "deployments": 2,
        "deployments_per_day": 2 / 30,
        "lead_time": {"count": 2, "median_ms": (30 * M + D) / 2, "p90_ms": 30 * M + 0.9 * (D - 30 * M)},
        "rollouts": 2,
        "failures": 0,
        "change_failure_rate": 0.0,
        "time_to_restore": {"count": 0, "median_ms": None, "p90_ms": None},
    },
    "overall": {
        "deployments": 4,
        "deployments_per_day": 4 / 30,
        "lead_time": {"count": 3, "median_ms": 3 * H, "p90_ms": 3 * H + 0.8 * (D - 3 * H)},
        "rollouts": 5,
        "failures": 1,
        "change_failure_rate": 0.2,
        "time_to_restore": {"count": 1, "median_ms": 20 * M, "p90_ms": 20 * M},
    },
}
