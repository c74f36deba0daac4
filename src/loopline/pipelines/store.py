"""What a pipeline store does, whichever backend does it, and which one a context gets.

``SqlPipelineStore`` keeps runs, steps, schedules and sweeps in the metadata database (SQLite or
PostgreSQL); ``RestPipelineStore`` forwards the same calls to ``loopline server``. The runner, the
scheduler and the CLI only see this Protocol, from ``open_pipeline_store(context)``.

Writes are safe to retry: ``create_run`` and ``create_sweep`` take ids the client chose (a second
call with the same record is a no-op), ``add_schedule`` of the same schedule is a no-op, a claimant
re-claiming its own slot gets True again, and the rest set state rather than add to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from loopline.pipelines.types import Finished, RunRecord, ScheduleRecord, StepRecord

if TYPE_CHECKING:
    from loopline.context import Context


class PipelineStore(Protocol):
    """Pipeline runs and their steps, schedules and sweeps, for one workspace."""

    # runs
    def create_run(self, run: RunRecord, steps: Sequence[tuple[str, str]]) -> None:
        """Record a new run and its ``(node, step)`` rows (``pending``) at once."""
        ...

    def restart_run(self, run_id: str, *, host: str, pid: int, executor: str) -> None: ...
    def add_inputs(self, run_id: str, name: str, dataset_uris: Sequence[str]) -> None: ...
    def finish_run(self, run_id: str, status: str, outputs: Any, error: str = "") -> None: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def list_runs(
        self, name: str | None = None, status: str | None = None, sweep_id: str | None = None, limit: int = 50
    ) -> list[RunRecord]: ...

    # steps
    def progress(
        self,
        run_id: str,
        *,
        finished: Sequence[Finished] = (),
        started: Sequence[str] = (),
        start_time: int | None = None,
    ) -> None:
        """Register finished steps and mark others running, in one write."""
        ...

    def steps(self, run_id: str) -> list[StepRecord]: ...
    def known_keys(self, fingerprints: Sequence[str], limit: int = 100_000) -> set[str] | None:
        """Every cache key with an output for these code fingerprints (None: too many to hold)."""
        ...

    def find_cached(self, cache_key: str) -> StepRecord | None:
        """The newest step, in any run of the workspace, that produced an output under ``cache_key``."""
        ...

    def last_steps(self, pipeline: str, before_run: str) -> dict[str, StepRecord]: ...

    # schedules
    def add_schedule(self, s: ScheduleRecord) -> None: ...
    def list_schedules(self, enabled_only: bool = False) -> list[ScheduleRecord]: ...
    def set_schedule_enabled(self, name: str, enabled: bool) -> None: ...
    def remove_schedule(self, name: str) -> None: ...
    def claim_slot(self, schedule: str, slot_ms: int, claimed_by: str) -> bool: ...
    def set_slot_result(self, schedule: str, slot_ms: int, *, run_id: str = "", error: str = "") -> None: ...
    def slots(self, schedule: str) -> list[tuple[int, str, str, str]]:
        """(slot_ms, claimed_by, run_id, error) of every claimed slot, oldest first."""
        ...

    # sweeps
    def create_sweep(
        self, sweep_id: str, name: str, target: str, method: str, metric: str, direction: str, space: Any
    ) -> None: ...
    def finish_sweep(
        self, sweep_id: str, status: str, best_run_id: str, best_value: float | None
    ) -> None: ...
    def get_sweep(self, sweep_id: str) -> dict[str, Any]: ...


def open_pipeline_store(context: Context) -> PipelineStore:
    """The pipeline store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        from loopline.pipelines.rest_store import RestPipelineStore

        return RestPipelineStore(context.http)
    from loopline.pipelines.sql_store import SqlPipelineStore

    return SqlPipelineStore(context.engine, workspace=context.workspace, actor=context.actor)


__all__ = ["PipelineStore", "open_pipeline_store"]
