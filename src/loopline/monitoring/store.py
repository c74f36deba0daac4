"""What a monitoring store does, whichever backend does it, and which one a context gets.

``SqlMonitoringStore`` keeps monitors in the metadata database and runs them in this process (it
holds the inference log and references through the context's artifact store); ``RestMonitoringStore``
asks a ``loopline server`` to do the same, so a monitor always runs where its data is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from loopline.monitoring.types import Monitor, MonitorRun, RunResult

if TYPE_CHECKING:
    from loopline.context import Context
    from loopline.monitoring.report import DriftReport
    from loopline.protocol.jobs import ProgressFn


class MonitoringStore(Protocol):
    """Monitors, their runs, metric time series and reports, scoped to one workspace."""

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
        """Declare ``name``; repeating the same definition returns the monitor (a retry is no error),
        a different one is ``AlreadyExists`` unless ``replace``."""
        ...

    def get_monitor(self, name: str) -> Monitor: ...
    def list_monitors(self) -> list[Monitor]: ...
    def delete_monitor(self, name: str) -> None: ...
    def due_monitors(self, at_ms: int) -> list[Monitor]: ...
    def list_runs(self, name: str, limit: int = 100) -> list[MonitorRun]: ...
    def history(
        self,
        name: str,
        keys: Sequence[str] | None = None,
        *,
        since_ms: int | None = None,
        limit: int = 10_000,
    ) -> list[tuple[int, str, float]]: ...
    def latest_metrics(self) -> dict[str, dict[str, float]]: ...

    def run_monitor(
        self, name: str, *, at_ms: int | None = None, progress: ProgressFn | None = None
    ) -> RunResult:
        """Evaluate ``name`` now where its data is; a failure is recorded as a ``failed`` run and raised.
        ``progress`` hears its stages (through a server: as the server's job reports them)."""
        ...

    def start_monitor(self, name: str) -> None:
        """Start a run of ``name`` and return without waiting for it: its result lands in
        ``list_runs``/``get_report``. (An embedded store has no process to hand it to: it runs it.)"""
        ...

    def get_report(self, name: str, run_id: int | None = None) -> DriftReport | None:
        """The drift report of run ``run_id`` (default: the newest run that had one)."""
        ...


def open_monitoring_store(context: Context) -> MonitoringStore:
    """The monitoring store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        from loopline.monitoring.rest_store import RestMonitoringStore

        return RestMonitoringStore(context.http)
    from loopline.monitoring.sql_store import SqlMonitoringStore

    return SqlMonitoringStore(
        context.engine, workspace=context.workspace, actor=context.actor, context=context
    )
