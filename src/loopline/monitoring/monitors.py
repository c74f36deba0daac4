"""Monitors: drift, data quality and performance of a deployment or model alias, run on a schedule.

    from loopline.monitoring.monitors import Monitors

    mon = Monitors()                                   # the stores LOOPLINE_* names
    mon.create("churn", deployment="churn-prod", window="1h", schedule="*/10 * * * *",
               webhooks=["https://hooks.example/ml"], target="churned")
    result = mon.run("churn")                          # reads only new inference-log rows
    result.report.drifted_columns, result.metrics["performance.accuracy"]
    mon.history("churn", ["drift_share"])

``Monitors`` is the client: it checks a declaration and hands every call to the context's
``MonitoringStore``. With an embedded store (``sqlite:///…``, ``postgresql://…``) monitors run in this
process; with ``LOOPLINE_TRACKING_URI=http://…`` the server runs them where the inference log and
references are, and ``run`` returns the server's result (see ``loopline.monitoring.runner`` for what a
run does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopline.clock import now_ms
from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.monitoring.schedule import next_run
from loopline.monitoring.store import MonitoringStore, open_monitoring_store
from loopline.monitoring.types import Monitor, MonitorRun, RunResult

if TYPE_CHECKING:
    from loopline.artifacts.protocol import ArtifactStore
    from loopline.context import Context
    from loopline.monitoring.report import DriftReport
    from loopline.protocol.jobs import ProgressFn

DRIFT_OPTIONS = ("alpha", "min_effect", "drift_share")
PERFORMANCE_KEYS = ("accuracy", "f1", "auc", "rmse", "mae")


def split_thresholds(thresholds: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """``--threshold`` keys sorted out: drift options, performance limits, per-column thresholds."""
    out: dict[str, dict[str, float]] = {"drift": {}, "performance": {}, "columns": {}}
    for k, v in thresholds.items():
        group = "drift" if k in DRIFT_OPTIONS else "performance" if k in PERFORMANCE_KEYS else "columns"
        out[group][k] = float(v)
    return out


def check_thresholds(thresholds: Mapping[str, float], columns: set[str] | None = None) -> None:
    """Refuse a ``--threshold`` key that is a typo of a known one, or (when the reference's columns
    are known) a column key the reference does not have: it would never be checked."""
    import difflib

    known = (*DRIFT_OPTIONS, *PERFORMANCE_KEYS)
    for key in thresholds:
        if key in known or (columns is not None and key in columns):
            continue
        near = difflib.get_close_matches(key, [*known, *(columns or ())], n=1, cutoff=0.75)
        if near or columns is not None:
            guess = f"Did you mean {near[0]!r}? " if near else ""
            raise InvalidInput(
                f"Unknown threshold {key!r}.",
                hint=f"{guess}Known keys: {', '.join(known)}; or a column of the reference"
                + (f" ({', '.join(sorted(columns)[:20])})." if columns else "."),
            )


def check_tests(tests: Mapping[str, str], columns: set[str] | None = None) -> None:
    """Refuse a ``--test`` that names an unknown test, or a column the reference does not have."""
    from loopline.monitoring.drift import ALIASES, CATEGORICAL_TESTS, NUMERICAL_TESTS

    names = sorted({*NUMERICAL_TESTS, *CATEGORICAL_TESTS})
    for column, test in tests.items():
        if test.strip().lower() not in {*names, *ALIASES, "auto"} and test.strip().lower().replace(
            "-", "_"
        ) not in {*names, *ALIASES}:
            raise InvalidInput(
                f"Unknown drift test {test!r} for column {column!r}.", hint=f"Use one of {', '.join(names)}."
            )
        if columns is not None and column not in columns:
            raise InvalidInput(
                f"--test names column {column!r}, which the reference does not have.",
                hint=f"Its columns: {', '.join(sorted(columns)[:20])}.",
            )


class Monitors:
    """Create, list, run and read monitors through the context's monitoring store."""

    def __init__(self, settings: Settings | None = None, *, context: Context | None = None) -> None:
        from loopline.context import Context

        self.context = context or Context(settings)
        self.settings = self.context.settings
        self.store: MonitoringStore = open_monitoring_store(self.context)

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store the monitors read (the server's, through its proxy, when remote)."""
        return self.context.artifacts

    # ---- declaring ---------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        deployment: str | None = None,
        model: str | None = None,
        reference: str | None = None,
        window: str = "1h",
        schedule: str | None = None,
        webhooks: Sequence[str] = (),
        thresholds: Mapping[str, float] | None = None,
        tests: Mapping[str, str] | None = None,
        target: str | None = None,
        categorical: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
        replace: bool = False,
    ) -> Monitor:
        """Declare monitor ``name`` over a deployment or a model URI (``models:/m@champion``).

        ``labels`` are kept in its config (``managed-by: apply`` marks the monitors ``loopline apply``
        owns); a monitor without labels has none there, as before labels existed."""
        if (deployment is None) == (model is None):
            raise InvalidInput(
                "A monitor watches one deployment or one model.", hint="Pass --deployment or --model."
            )
        if model is not None and not model.startswith("models:/"):
            raise InvalidInput(
                f"{model!r} is not a model URI.", hint="Use models:/name@alias or models:/name/3."
            )
        check_thresholds(thresholds or {})  # typos first: they need no store
        check_tests(tests or {})
        ref_columns = self._reference_columns(reference)
        if ref_columns is not None:
            check_thresholds(thresholds or {}, ref_columns)
            check_tests(tests or {}, ref_columns)
        self._require_target(deployment, model)
        target_uri = f"deployments:/{deployment}" if deployment is not None else str(model)
        ref = reference or ""
        if ref and not ref.startswith("datasets:/"):
            ref = os.path.abspath(ref)  # the store checks it exists where the monitor runs
        config = {
            "webhooks": list(webhooks),
            "thresholds": split_thresholds(thresholds or {}),
            "tests": dict(tests or {}),
            "target": target,
            "categorical": list(categorical),
        }
        if labels:
            config["labels"] = dict(labels)
        sched = schedule or ""
        return self.store.create_monitor(
            name,
            target_uri,
            reference=ref,
            window=window,
            schedule=sched,
            config=config,
            next_run_ms=next_run(sched, now_ms()),
            replace=replace,
        )

    def _require_target(self, deployment: str | None, model: str | None) -> None:
        """The deployment or model version a new monitor watches must exist now, not at its first run."""
        from loopline.tracking import Client

        client = Client(context=self.context)
        if deployment is not None:
            from loopline.serving.deployments import get_deployment

            get_deployment(deployment, client=client)
            return
        from loopline.registry import RegistryClient
        from loopline.uris import parse

        ref = parse(str(model))
        registry = RegistryClient(client)
        if ref.alias is not None:
            registry.get_model_version_by_alias(ref.name, ref.alias)
        elif ref.version is not None and ref.version.isdigit():
            registry.get_model_version(ref.name, ref.version)
        else:
            registry.get_registered_model(ref.name)

    def _reference_columns(self, reference: str | None) -> set[str] | None:
        """The columns of a named reference (a dataset version's schema), None when not known yet."""
        if not reference or not reference.startswith("datasets:/"):
            return None
        from loopline.data import DataClient

        version = DataClient(context=self.context).get_version(reference)
        return set(version.schema) or None

    def get(self, name: str) -> Monitor:
        return self.store.get_monitor(name)

    def list_monitors(self) -> list[Monitor]:
        return self.store.list_monitors()

    def delete(self, name: str) -> None:
        self.store.delete_monitor(name)

    def history(
        self, name: str, keys: Sequence[str] | None = None, **kwargs: Any
    ) -> list[tuple[int, str, float]]:
        return self.store.history(name, keys, **kwargs)

    def runs(self, name: str, limit: int = 100) -> list[MonitorRun]:
        """``name``'s runs, newest first."""
        return self.store.list_runs(name, limit)

    def report(self, name: str, run_id: int | None = None) -> DriftReport | None:
        """The drift report of a run (default: the newest with one), from where the monitor runs."""
        return self.store.get_report(name, run_id)

    # ---- running -----------------------------------------------------------------------------

    def due(self, at_ms: int | None = None) -> list[Monitor]:
        return self.store.due_monitors(now_ms() if at_ms is None else at_ms)

    def run(self, name: str, *, at_ms: int | None = None, progress: ProgressFn | None = None) -> RunResult:
        """Evaluate ``name`` now on the rows logged since its last run (plus its window's older rows),
        where its data is: in this process on an embedded store, on the server otherwise.

        A failure is recorded as a ``failed`` run (the cursor unchanged, so the next run reads the same
        rows again) and re-raised.
        """
        return self.store.run_monitor(name, at_ms=at_ms, progress=progress)

    def start(self, name: str) -> None:
        """Start a run of ``name`` without waiting for it (on a server: it runs in the background);
        read its outcome with ``runs``/``report``."""
        self.store.start_monitor(name)


__all__ = ["Monitor", "MonitorRun", "Monitors", "RunResult", "next_run", "split_thresholds"]
