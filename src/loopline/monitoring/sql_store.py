"""Monitors, their runs and metric time series, and stored reference profiles, on SQLAlchemy.

A run is recorded in one transaction: the run row, its metrics, the monitor's new cursor and next
due time, a ``monitor.run`` event and — when the dataset drifted — a ``monitor.drift_detected``
event, which the continuous-training controller listens for. So a crash never leaves a cursor
that skipped rows whose figures were not stored, nor figures without their event.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from loopline.clock import now_ms
from loopline.errors import AlreadyExists, Conflict, InvalidInput, LooplineError, NotFound
from loopline.metadata import schema_monitoring as m
from loopline.metadata.base import SqlStore
from loopline.monitoring.definition import check_definition
from loopline.monitoring.types import MONITOR_FILES, Monitor, MonitorRun, RunResult
from loopline.monitoring.webhook_targets import check_webhooks

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from loopline.context import Context
    from loopline.monitoring.report import DriftReport
    from loopline.protocol.jobs import ProgressFn


def _exists(name: str) -> AlreadyExists:
    return AlreadyExists(
        f"Monitor {name!r} exists already, defined otherwise.",
        hint="Pick another name, or pass --replace to redefine it.",
    )


def due_workspaces(engine: Engine, at_ms: int) -> list[str]:
    """The workspaces with a scheduled monitor due at ``at_ms``: one statement for all of them (what
    an idle round of the server's monitor scheduler costs, however many workspaces there are)."""
    c = m.monitors.c
    q = (
        select(c.workspace)
        .where(c.schedule != "", c.next_run_ms.is_not(None), c.next_run_ms <= at_ms)
        .group_by(c.workspace)
        .order_by(c.workspace)
    )
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


class SqlMonitoringStore(SqlStore):
    """Monitors and what their runs measured, scoped to one workspace.

    With a ``context`` (as ``open_monitoring_store`` gives it) it also runs monitors: the context's
    artifact store holds the inference log, the window buffers, profiles and reports.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        workspace: str = "default",
        actor: str = "unknown",
        context: Context | None = None,
    ) -> None:
        super().__init__(engine, workspace=workspace, actor=actor)
        self.context = context

    def _context(self) -> Context:
        if self.context is None:
            raise InvalidInput(
                "This monitoring store was opened without a context: it cannot run monitors.",
                hint="Open it with loopline.monitoring.store.open_monitoring_store(context).",
            )
        return self.context

    def _row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(
            select(m.monitors).where(m.monitors.c.workspace == self.workspace, m.monitors.c.name == name)
        ).first()
        if row is None:
            have = conn.execute(
                select(m.monitors.c.name)
                .where(m.monitors.c.workspace == self.workspace)
                .order_by("name")
                .limit(20)
            ).scalars()
            raise NotFound(
                f"No monitor named {name!r}.",
                hint=f"Monitors: {', '.join(have) or 'none yet; create one with `loopline monitor create`'}.",
            )
        return row

    @staticmethod
    def _monitor(r: Any) -> Monitor:
        return Monitor(
            r.name,
            r.target,
            r.reference,
            r.window,
            r.schedule,
            json.loads(r.config),
            json.loads(r.state),
            r.created_ms,
            r.updated_ms,
            r.last_run_ms,
            r.next_run_ms,
            r.id,
        )

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
        check_definition(name, target, reference, window, schedule, config or {})
        allow = self.context.settings.webhook_allow if self.context is not None else ""
        check_webhooks((config or {}).get("webhooks") or [], allow)  # the targets this server may call
        ms = now_ms()
        values = {
            "target": target,
            "reference": reference,
            "window": window,
            "schedule": schedule,
            "config": json.dumps(dict(config or {}), sort_keys=True),
            "updated_ms": ms,
            "next_run_ms": next_run_ms,
        }
        uri = f"monitors:/{name}"
        try:
            with self._write() as conn:
                exists = conn.execute(
                    select(m.monitors.c.id).where(
                        m.monitors.c.workspace == self.workspace, m.monitors.c.name == name
                    )
                ).scalar()
                if exists is not None and not replace:
                    same = self._monitor(self._row(conn, name))
                    if (same.target, same.reference, same.window, same.schedule, dict(same.config)) == (
                        target,
                        reference,
                        window,
                        schedule,
                        json.loads(str(values["config"])),
                    ):
                        return same  # the same declaration again (a retried request): no change
                    raise _exists(name)
                if exists is not None:
                    conn.execute(update(m.monitors).where(m.monitors.c.id == exists).values(**values))
                    self._event(
                        conn, "monitor.update", uri, target=target, reference=reference, window=window
                    )
                else:
                    conn.execute(
                        insert(m.monitors).values(
                            workspace=self.workspace, name=name, state="{}", created_ms=ms, **values
                        )
                    )
                    self._event(
                        conn, "monitor.create", uri, target=target, reference=reference, window=window
                    )
                self._edge(conn, target, uri, "monitored_by")
                if reference.startswith("datasets:/"):
                    self._edge(conn, reference, uri, "reference_of")
                return self._monitor(self._row(conn, name))
        except IntegrityError:
            raise _exists(name) from None

    def get_monitor(self, name: str) -> Monitor:
        with self.engine.connect() as conn:
            return self._monitor(self._row(conn, name))

    def list_monitors(self) -> list[Monitor]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(m.monitors).where(m.monitors.c.workspace == self.workspace).order_by(m.monitors.c.name)
            ).all()
        return [self._monitor(r) for r in rows]

    def delete_monitor(self, name: str) -> None:
        with self._write() as conn:
            row = self._row(conn, name)
            for table in (m.monitor_metrics, m.monitor_runs):
                conn.execute(delete(table).where(table.c.monitor_id == row.id))
            conn.execute(delete(m.monitors).where(m.monitors.c.id == row.id))
            self._event(conn, "monitor.delete", f"monitors:/{name}")
        if self.context is not None:
            # Its window buffer and reports go too: a new monitor of the same name starts empty
            # rather than with another target's rows. (A crash here leaves only unreferenced files.)
            self.context.artifacts.delete(f"{MONITOR_FILES}/{name}")

    def due_monitors(self, at_ms: int) -> list[Monitor]:
        """Scheduled monitors whose next run is due at ``at_ms``."""
        c = m.monitors.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(m.monitors).where(
                    c.workspace == self.workspace,
                    c.schedule != "",
                    c.next_run_ms.is_not(None),
                    c.next_run_ms <= at_ms,
                )
            ).all()
        return [self._monitor(r) for r in rows]

    def claim_due(self, name: str, due_ms: int, next_run_ms: int | None) -> bool:
        """Claim the run due at ``due_ms``: True for exactly one caller however many race.

        A conditional UPDATE moves the monitor's ``next_run_ms`` from ``due_ms`` to the following
        slot; only the transaction that still sees ``due_ms`` changes the row (PostgreSQL re-checks
        the condition after a concurrent update commits, SQLite serialises writers).
        """
        c = m.monitors.c
        with self._write() as conn:
            claimed = conn.execute(
                update(m.monitors)
                .where(c.workspace == self.workspace, c.name == name, c.next_run_ms == due_ms)
                .values(next_run_ms=next_run_ms)
            ).rowcount
            if claimed == 1:
                self._event(conn, "monitor.claim", f"monitors:/{name}", due_ms=due_ms)
        return claimed == 1

    def run_monitor(
        self, name: str, *, at_ms: int | None = None, progress: ProgressFn | None = None
    ) -> RunResult:
        from loopline.monitoring.runner import MonitorRunner

        return MonitorRunner(self._context(), self).run(name, at_ms=at_ms, progress=progress)

    def start_monitor(self, name: str) -> None:
        self.get_monitor(name)  # NotFound before anything runs
        # As on a server, the caller learns the outcome from the runs: a failure is recorded as a
        # failed run (a refusal means another run stored these rows).
        with contextlib.suppress(LooplineError):
            self.run_monitor(name)

    def get_report(self, name: str, run_id: int | None = None) -> DriftReport | None:
        from loopline.monitoring.runner import MonitorRunner

        return MonitorRunner(self._context(), self).report(name, run_id)

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
    ) -> MonitorRun:
        """Store one evaluation, its metrics, the new cursor and its events, in one transaction.

        Each of ``alerts`` becomes an event named by its ``event`` key (``monitor.drift_detected``, …).
        With ``after_run_ms`` (the monitor's ``last_run_ms`` when the evaluation started), a run that
        another one finished meanwhile is refused (``Conflict``): its cursor would skip or recount rows.
        """
        ms = now_ms()
        uri = f"monitors:/{name}"
        with self._write() as conn:
            row = self._row(conn, name)
            if next_run_ms is not None and row.next_run_ms is not None:
                # never move the due time back past a slot another process has claimed meanwhile
                next_run_ms = max(next_run_ms, row.next_run_ms)
            c = m.monitors.c
            cursor = update(m.monitors).where(c.id == row.id)
            if after_run_ms != "any":
                cursor = cursor.where(c.last_run_ms.is_not_distinct_from(after_run_ms))
            moved = conn.execute(
                cursor.values(state=json.dumps(state), last_run_ms=ms, next_run_ms=next_run_ms)
            ).rowcount
            if moved != 1:
                raise Conflict(
                    f"Monitor {name!r} ran concurrently: this run was not stored.",
                    hint="Its other run read the same rows; see `loopline monitor show`.",
                )
            run_id = conn.execute(
                insert(m.monitor_runs)
                .values(
                    workspace=self.workspace,
                    monitor_id=row.id,
                    started_ms=started_ms,
                    finished_ms=ms,
                    rows=rows,
                    new_rows=new_rows,
                    status=status,
                    dataset_drift=dataset_drift,
                    drift_share=drift_share,
                    summary=json.dumps(summary, default=str),
                )
                .returning(m.monitor_runs.c.id)
            ).scalar_one()
            points = [
                {
                    "workspace": self.workspace,
                    "monitor_id": row.id,
                    "run_id": run_id,
                    "time_ms": ms,
                    "key": k,
                    "value": v,
                }
                for k, v in metrics.items()
                if v is not None and v == v  # NaN is not a measurement
            ]
            if points:
                conn.execute(insert(m.monitor_metrics), points)
            self._event(
                conn, "monitor.run", uri, run_id=run_id, status=status, rows=rows, drift_share=drift_share
            )
            for alert in alerts:
                payload = {k: v for k, v in alert.items() if k not in ("event", "uri")}
                self._event(conn, str(alert.get("event", "monitor.alert")), uri, run_id=run_id, **payload)
        return MonitorRun(
            run_id, name, started_ms, ms, rows, new_rows, status, dataset_drift, drift_share, summary
        )

    def list_runs(self, name: str, limit: int = 100) -> list[MonitorRun]:
        r = m.monitor_runs.c
        with self.engine.connect() as conn:
            mon = self._row(conn, name)
            rows = conn.execute(
                select(m.monitor_runs)
                .where(r.workspace == self.workspace, r.monitor_id == mon.id)
                .order_by(r.started_ms.desc(), r.id.desc())
                .limit(limit)
            ).all()
        return [
            MonitorRun(
                x.id,
                name,
                x.started_ms,
                x.finished_ms,
                x.rows,
                x.new_rows,
                x.status,
                x.dataset_drift,
                x.drift_share,
                json.loads(x.summary),
            )
            for x in rows
        ]

    def history(
        self,
        name: str,
        keys: Sequence[str] | None = None,
        *,
        since_ms: int | None = None,
        limit: int = 10_000,
    ) -> list[tuple[int, str, float]]:
        """(time_ms, key, value) of ``name``'s metrics, oldest first (the newest ``limit`` points)."""
        c = m.monitor_metrics.c
        with self.engine.connect() as conn:
            mon = self._row(conn, name)
            q = select(c.time_ms, c.key, c.value).where(c.workspace == self.workspace, c.monitor_id == mon.id)
            if keys:
                q = q.where(c.key.in_(list(keys)))
            if since_ms is not None:
                q = q.where(c.time_ms >= since_ms)
            rows = conn.execute(q.order_by(c.time_ms.desc(), c.id.desc()).limit(limit)).all()
        return [(int(t), str(k), float(v)) for t, k, v in reversed(rows)]

    def latest_metrics(self) -> dict[str, dict[str, float]]:
        """Every monitor's figures from its newest run: what the Prometheus gauges show."""
        c, r, mon = m.monitor_metrics.c, m.monitor_runs.c, m.monitors.c
        newest = (
            select(func.max(r.id))
            .where(r.workspace == self.workspace)
            .group_by(r.monitor_id)
            .scalar_subquery()
        )
        q = (
            select(mon.name, c.key, c.value)
            .join(m.monitors, mon.id == c.monitor_id)
            .where(c.workspace == self.workspace, c.run_id.in_(newest))
        )
        out: dict[str, dict[str, float]] = {}
        with self.engine.connect() as conn:
            for name, key, value in conn.execute(q):
                out.setdefault(name, {})[key] = float(value)
        return out

    # ---- stored reference profiles -----------------------------------------------------------

    def profile_path(self, source: str, *, prefix: bool = False) -> str | None:
        """Where the profile of ``source`` is stored (with ``prefix``: the newest whose source starts so)."""
        p = m.reference_profiles.c
        match = p.source.startswith(source, autoescape=True) if prefix else p.source == source
        with self.engine.connect() as conn:
            path: str | None = conn.execute(
                select(p.path)
                .where(p.workspace == self.workspace, match)
                .order_by(p.created_ms.desc(), p.id.desc())
            ).scalar()
        return path

    def save_profile_path(self, source: str, path: str) -> None:
        with self._write() as conn:
            ins = self._insert(conn, m.reference_profiles).values(
                workspace=self.workspace, source=source, path=path, created_ms=now_ms()
            )
            conn.execute(
                ins.on_conflict_do_update(index_elements=["workspace", "source"], set_={"path": path})
            )
            self._event(conn, "monitor.profile_reference", source, path=path)
