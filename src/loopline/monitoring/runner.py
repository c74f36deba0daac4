"""Running monitors where their data is: the evaluation behind ``run_monitor`` and the scheduler.

``MonitorRunner`` works on the SQL store and the context's artifact store, so it runs in the process
that holds the metadata database: the user's on an embedded store, ``loopline server`` otherwise
(the route ``monitors/run`` and its background loop). Clients never call it directly: they go through
``MonitoringStore.run_monitor``.

The reference is the monitor's ``reference`` (a ``datasets:/`` URI or a file) or, when none was
given, the training dataset of the model version the target serves, found through lineage
(``models:/m/3`` ← run ← ``datasets:/…``), resolved again at each run so that a promoted model
brings its own training data. Its profile is computed once and stored (``ReferenceProfile``).

Each run stores its figures as a time series (``monitor_metrics``), its drift report (a JSON blob
named by its digest, referenced from the run's summary before the run row is written), an event
``monitor.run`` and, when the data or the predictions drifted, ``monitor.drift_detected``
(performance below a threshold: ``monitor.performance_degraded``), and posts the same payload to the
monitor's webhooks.

Scheduled runs are claimed first (``RunRecords.claim_due``): several server processes or
replicas on one database run each due slot of a monitor once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from loopline.clock import now_ms
from loopline.errors import Conflict, InvalidInput, LooplineError
from loopline.monitoring import logwindow as lw
from loopline.monitoring.alerts import notify
from loopline.monitoring.drift import drift
from loopline.monitoring.performance import LOWER_IS_BETTER, breached, performance
from loopline.monitoring.reference import ReferenceProfile
from loopline.monitoring.report import DriftReport
from loopline.monitoring.schedule import next_run
from loopline.monitoring.types import MONITOR_FILES, Monitor, MonitorRun, RunResult
from loopline.serving.log_schema import FEEDBACK, predictions_dir

if TYPE_CHECKING:
    from loopline.context import Context
    from loopline.protocol.jobs import ProgressFn
    from loopline.serving.types import DeploymentSpec

log = logging.getLogger("loopline.monitoring")


class RunRecords(Protocol):
    """What the runner needs of the store it works on (``SqlMonitoringStore``, which runs it):
    the monitors, their runs and the claim on a scheduled slot, in the metadata database."""

    def get_monitor(self, name: str) -> Monitor: ...
    def due_monitors(self, at_ms: int) -> list[Monitor]: ...
    def claim_due(self, name: str, due_ms: int, next_run_ms: int | None) -> bool: ...
    def list_runs(self, name: str, limit: int = 100) -> list[MonitorRun]: ...
    def profile_path(self, source: str, *, prefix: bool = False) -> str | None: ...
    def save_profile_path(self, source: str, path: str) -> None: ...
    def record_run(
        self,
        name: str,
        *,
        started_ms: int,
        rows: int,
        new_rows: int,
        status: str,
        dataset_drift: bool,
        drift_share: float | None,
        summary: Mapping[str, Any],
        metrics: Mapping[str, float],
        state: Mapping[str, Any],
        next_run_ms: int | None,
        alerts: Sequence[Mapping[str, Any]] = (),
        after_run_ms: int | Literal["any"] | None = "any",
    ) -> MonitorRun: ...


class MonitorRunner:
    """Evaluates monitors of ``store`` on the inference log in ``context``'s artifact store."""

    def __init__(self, context: Context, store: RunRecords) -> None:
        self.context = context
        # The context's workspace and actor, for what opens stores from settings (a datasets:/
        # reference): a server's settings name its own workspace, not the monitor's.
        self.settings = replace(context.settings, workspace=context.workspace, user=context.actor)
        self.store = store
        self.artifacts = context.artifacts

    # ---- the reference -----------------------------------------------------------------------

    def served_model(self, target: str) -> str:
        """The model version (``models:/m/3``) a target serves now: a deployment's heaviest route."""
        model = target
        if target.startswith("deployments:/"):
            spec = self._deployment(target)
            model = max(spec.routes, key=lambda r: r.weight).model
        from loopline.uris import parse

        ref = parse(model) if model.startswith("models:/") else None
        if ref is not None and ref.alias is not None:
            from loopline.registry.store import open_registry_store

            reg = open_registry_store(self.context)
            return f"models:/{ref.name}/{reg.get_model_version_by_alias(ref.name, ref.alias).version}"
        return model

    def _deployment(self, target: str) -> DeploymentSpec:
        from loopline.serving.store import open_deployment_store

        return open_deployment_store(self.context).get_deployment(target.removeprefix("deployments:/")).spec

    def training_dataset(self, target: str) -> str:
        """The ``datasets:/`` URI upstream of the model version ``target`` serves (via lineage)."""
        from loopline.tracking.lineage import open_lineage_reader

        model = self.served_model(target)
        edges = open_lineage_reader(self.context).upstream(model)
        found = [e.from_uri for e in edges if e.from_uri.startswith("datasets:/")]
        if not found:
            raise InvalidInput(
                f"No training dataset found upstream of {model} (served by {target}).",
                hint="Log the training data with loopline.data.log_dataset in the training run, "
                "or give the monitor --reference datasets:/name/version.",
            )
        return found[-1]  # the nearest ancestor is the newest edge

    def profile(self, source: str, categorical: Sequence[str] = ()) -> ReferenceProfile:
        """The stored profile of ``source``, built and stored on first use (never per run)."""
        key = source
        if source.startswith("datasets:/"):
            try:
                from loopline.data import DataClient

                key = DataClient(self.settings).get_version(source).uri  # an alias resolves to its version
            except (ImportError, LooplineError):
                pass
        elif os.path.exists(source):  # a file: a new profile when it changes
            st = os.stat(source)
            key = f"file:{source}@{st.st_mtime_ns}:{st.st_size}"
        options = "?categorical=" + ",".join(sorted(categorical)) if categorical else ""
        path = self.store.profile_path(key + options)
        if path is None and not os.path.exists(source) and not source.startswith("datasets:/"):
            path = self.store.profile_path(f"file:{source}@", prefix=True)  # gone since: its last profile
        key += options
        if path is not None:
            with self.artifacts.open(path) as f:
                return ReferenceProfile.from_bytes(f.read())
        profile = ReferenceProfile.build(
            source, categorical=categorical, source=source, settings=self.settings
        )
        path = f"monitoring/profiles/{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}.npz"
        self.artifacts.put_bytes(profile.to_bytes(), path)
        self.store.save_profile_path(key, path)
        return profile

    # ---- running -----------------------------------------------------------------------------

    def run_due(self, at_ms: int | None = None) -> list[RunResult]:
        """Run every scheduled monitor due at ``at_ms`` (default: now) whose due slot this process
        claims; a monitor another process claimed, or whose run fails (recorded), is skipped."""
        at = now_ms() if at_ms is None else at_ms
        results = []
        for mon in self.store.due_monitors(at):
            assert mon.next_run_ms is not None  # due_monitors only returns scheduled monitors
            if not self.store.claim_due(mon.name, mon.next_run_ms, next_run(mon.schedule, at)):
                continue
            try:
                result = self.run(mon.name, at_ms=at)
            except Exception:  # one broken monitor (its failure is recorded) must not stop the others
                log.exception("monitor %s failed", mon.name)
                continue
            log.info("monitor %s: %s (%d rows)", mon.name, result.run.status, result.run.rows)
            results.append(result)
        return results

    def report(self, name: str, run_id: int | None = None) -> DriftReport | None:
        """The stored drift report of run ``run_id`` of ``name`` (default: the newest that has one)."""
        from loopline.errors import NotFound

        runs = self.store.list_runs(name, limit=1000)
        if run_id is not None:
            runs = [r for r in runs if r.id == run_id]
            if not runs:
                raise NotFound(f"Monitor {name!r} has no run {run_id}.")
        path = next((str(r.summary["report"]) for r in runs if r.summary.get("report")), None)
        if path is None:
            return None
        with self.artifacts.open(path) as f:
            return DriftReport.from_dict(json.loads(f.read()))

    def run(self, name: str, *, at_ms: int | None = None, progress: ProgressFn | None = None) -> RunResult:
        """Evaluate ``name`` on the rows logged since its last run (plus its window's older rows).

        A failure is recorded as a ``failed`` run (the cursor unchanged, so the next run reads the same
        rows again) and re-raised. ``progress`` hears the run's stages (``STAGES``), as they begin.
        """
        mon = self.store.get_monitor(name)
        started = now_ms()
        now = started if at_ms is None else at_ms
        try:
            return self._evaluate(mon, started, now, _stages(progress))
        except Conflict:
            raise  # another run of this monitor finished first and stored what this one read
        except Exception as e:
            with contextlib.suppress(Conflict):  # another run finished meanwhile: its cursor stands
                self.store.record_run(
                    name,
                    started_ms=started,
                    rows=0,
                    new_rows=0,
                    status="failed",
                    dataset_drift=False,
                    drift_share=None,
                    summary={"error": str(e)},
                    metrics={},
                    state=mon.state,
                    next_run_ms=next_run(mon.schedule, now),
                    after_run_ms=mon.last_run_ms,
                )
            raise

    def _evaluate(self, mon: Monitor, started: int, now: int, stage: Callable[[int], None]) -> RunResult:
        name = mon.name
        cfg = mon.config
        stage(0)
        source = mon.reference or self.training_dataset(mon.target)
        profile = self.profile(source, cfg.get("categorical") or ())
        stage(1)
        records, new_rows, state = self._window(mon, dict(mon.state), now)
        stage(2)
        target = cfg.get("target")
        features = [c for c in profile.columns if c != target and any(c in r for r in records[:100])]
        metrics: dict[str, float] = {"rows": float(len(records)), "new_rows": float(new_rows)}
        report = None
        if records and not features:
            raise InvalidInput(
                f"None of the reference's columns ({', '.join(list(profile.columns)[:10])}) are among the "
                f"logged inputs of {mon.target}.",
                hint="Point the monitor at the dataset the model was trained on (--reference).",
            )
        summary: dict[str, Any] = {"reference": source, "window": mon.window}
        if records:
            th = cfg.get("thresholds", {})
            labelled = target is not None and target in profile.columns
            cols = features + ([lw.PREDICTION] if labelled else []) + ([lw.LABEL] if labelled else [])
            table = lw.features_table(records, cols)
            if labelled:
                table = table.rename_columns([*features, "__prediction", target])
            report = drift(
                profile,
                table,
                columns=features,
                tests=cfg.get("tests") or None,
                thresholds=th.get("columns") or None,
                prediction="__prediction" if labelled else None,
                target=target if labelled else None,
                categorical=cfg.get("categorical") or (),
                **th.get("drift", {}),
            )
            metrics |= _drift_metrics(report)
            metrics |= {
                f"performance.{k}": v
                for k, v in performance(
                    [r[lw.LABEL] for r in records], [r[lw.PREDICTION] for r in records]
                ).items()
            }
            summary |= {
                "drifted_columns": report.drifted_columns,
                "drift_share": report.drift_share,
                "report": self._save_report(name, report),
            }
        stage(3)
        perf = {k.removeprefix("performance."): v for k, v in metrics.items() if k.startswith("performance.")}
        bad = breached(perf, cfg.get("thresholds", {}).get("performance", {}))
        alerts = self._alerts(mon, report, perf, bad, now)
        status = "no_data" if report is None else "drift" if alerts else "ok"
        run = self.store.record_run(
            name,
            started_ms=started,
            rows=len(records),
            new_rows=new_rows,
            status=status,
            dataset_drift=bool(report and report.dataset_drift),
            drift_share=report.drift_share if report else None,
            summary=summary,
            metrics=metrics,
            state=state,
            next_run_ms=next_run(mon.schedule, now),
            alerts=alerts,
            after_run_ms=mon.last_run_ms,
        )
        deliveries = []
        for a in alerts:
            deliveries += notify(
                cfg.get("webhooks") or [],
                {**a, "run_id": run.id},
                allow=self.settings.webhook_allow,
                secret=self.settings.webhook_secret or None,  # signed as the loop's are
            )
        stage(len(STAGES))
        return RunResult(run, report, metrics, source, alerts, deliveries)

    def _save_report(self, name: str, report: DriftReport) -> str:
        """Store the report under its digest before the run row names it: a run never points at a
        missing report, and an interrupted run leaves at most an unreferenced blob."""
        blob = json.dumps(report.to_dict(histograms=True), sort_keys=True, default=str).encode()
        digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
        path = f"{MONITOR_FILES}/{name}/reports/{digest}.json"
        self.artifacts.put_bytes(blob, path)
        return path

    def _window(
        self, mon: Monitor, state: dict[str, Any], now: int
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        """The window's rows after reading only the log parts this monitor has not seen."""
        import datetime as dt

        window = lw.Window.parse(mon.window)
        deployment = (
            mon.target.removeprefix("deployments:/") if mon.target.startswith("deployments:/") else None
        )
        models = self._logged_models(mon.target)
        seen = set(state.get("seen", []))
        since = state.get("since_date", "0000-00-00")
        parts = [p for m in models for p in lw.new_parts(self.artifacts, predictions_dir(m), seen, since)]
        fb_parts = lw.new_parts(self.artifacts, FEEDBACK, seen, since)
        buffer_path = f"{MONITOR_FILES}/{mon.name}/window.parquet"
        records = lw.load_buffer(self.artifacts, buffer_path)
        have = {
            r[lw.REQUEST] for r in records
        }  # a run that failed after saving the buffer read these already
        new = [
            r
            for t in lw.read_parts(self.artifacts, parts)
            for r in lw.decode_predictions(t, deployment)
            if r[lw.REQUEST] not in have
        ]
        records += new
        pending = dict(state.get("pending_feedback", {}))
        pending |= lw.feedback_labels(lw.read_parts(self.artifacts, fb_parts))
        used = lw.apply_labels(records, pending)
        pending = {k: v for k, v in pending.items() if k not in used}
        records = lw.trim(records, window, now)
        lw.save_buffer(self.artifacts, buffer_path, records)
        # Keep the cursor small: parts in folders older than the day before this run are never listed again.
        cutoff = dt.datetime.fromtimestamp(now / 1000 - 86_400, dt.UTC).strftime("%Y-%m-%d")
        seen |= set(parts) | set(fb_parts)
        state = {
            "seen": sorted(p for p in seen if p.rsplit("date=", 1)[-1][:10] >= cutoff),
            "since_date": cutoff,
            "pending_feedback": dict(list(pending.items())[-lw.MAX_PENDING_FEEDBACK :]),
        }
        return records, len(new), state

    def _logged_models(self, target: str) -> list[str]:
        uris = list(self._deployment(target).models) if target.startswith("deployments:/") else [target]
        return sorted({u.removeprefix("models:/").split("@")[0].split("/")[0] for u in uris})

    def _alerts(
        self,
        mon: Monitor,
        report: DriftReport | None,
        perf: dict[str, float],
        bad: dict[str, float],
        now: int,
    ) -> list[dict[str, Any]]:
        base = {
            "monitor": mon.name,
            "uri": mon.uri,
            "target": mon.target,
            "time_ms": now,
            "performance": perf,
        }
        out = []
        pred = bool(report and report.prediction_drift and report.prediction_drift.drifted)
        if report is not None and (report.dataset_drift or pred):
            out.append(
                {
                    **base,
                    "event": "monitor.drift_detected",
                    "dataset_drift": report.dataset_drift,
                    "drift_share": report.drift_share,
                    "drifted_columns": report.drifted_columns,
                    "prediction_drift": pred,
                }
            )
        if bad:
            lower = {k: "max" if k in LOWER_IS_BETTER else "min" for k in bad}
            out.append({**base, "event": "monitor.performance_degraded", "breached": bad, "limits": lower})
        return out


STAGES = ("reading the reference", "reading the inference log", "computing drift", "recording the run")


def _stages(progress: ProgressFn | None) -> Callable[[int], None]:
    """Stage ``i`` of a run as progress: ``i`` of ``len(STAGES)`` done, the next one named."""

    def stage(i: int) -> None:
        if progress is not None:
            from loopline.protocol.jobs import Progress

            progress(Progress(i, len(STAGES), STAGES[i] if i < len(STAGES) else "done"))

    return stage


def _drift_metrics(report: DriftReport) -> dict[str, float]:
    out: dict[str, float] = {
        "drift_share": report.drift_share,
        "dataset_drift": float(report.dataset_drift),
        "drifted_columns": float(len(report.drifted_columns)),
    }
    cols = list(report.columns.values())
    if report.prediction_drift is not None:
        cols.append(report.prediction_drift)
    for c in cols:
        name = "prediction" if c is report.prediction_drift else c.name
        out[f"drift.{name}"] = c.statistic
        out[f"drifted.{name}"] = float(c.drifted)
        if c.p_value is not None:
            out[f"p_value.{name}"] = c.p_value
        for q in ("missing_share", "new_category_share", "out_of_range_share"):
            if q in c.quality:
                out[f"{q}.{name}"] = float(c.quality[q])
    return out
