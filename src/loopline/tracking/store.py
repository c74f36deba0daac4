"""What a tracking store does, whichever backend does it.

``SqlTrackingStore`` keeps the data (SQLite or PostgreSQL); ``RestTrackingStore`` forwards the
same calls to a ``loopline server`` (or any MLflow-compatible server) over its REST API.

Loopline's own stores also take a run ID chosen by the client and a run's first batch in
``create_run`` (``accepts_run_ids()``): the client can then name a run at once and write it,
with its params, tags, metrics and even its final status, in one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from loopline.metadata.pages import Page
from loopline.tracking.types import (
    DatasetInput,
    Experiment,
    Metric,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)

if TYPE_CHECKING:
    from loopline.context import Context


class TrackingStore(Protocol):
    """Experiments, runs, params, metrics, tags and dataset inputs."""

    # experiments
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str: ...
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...
    def search_experiments(
        self,
        view_type: ViewType = "ACTIVE_ONLY",
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]: ...
    def delete_experiment(self, experiment_id: str) -> None: ...
    def restore_experiment(self, experiment_id: str) -> None: ...
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # runs
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        *,
        run_id: str | None = None,
        params: Sequence[Param] = (),
        metrics: Sequence[Metric] = (),
        status: RunStatus = RunStatus.RUNNING,
        end_time: int | None = None,
    ) -> Run:
        """Create a run; with ``run_id`` (only if ``accepts_run_ids()``) under that ID, and with a first
        batch of params and metrics, already ended when ``status`` is terminal (with ``end_time``)."""
        ...

    def accepts_run_ids(self) -> bool:
        """Whether ``create_run`` takes a client-chosen ``run_id`` and a first batch in one call."""
        ...

    def get_run(self, run_id: str) -> Run: ...
    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...
    def finish_run(
        self, run_id: str, status: RunStatus, end_time: int, metrics: Sequence[Metric] = ()
    ) -> RunInfo: ...
    def delete_run(self, run_id: str) -> None: ...
    def restore_run(self, run_id: str) -> None: ...
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None: ...
    def delete_tag(self, run_id: str, key: str) -> None: ...
    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]: ...
    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]: ...


def open_tracking_store(context: Context) -> TrackingStore:
    """The tracking store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        from loopline.tracking.rest_store import RestTrackingStore

        return RestTrackingStore(context.settings.tracking_uri, client=context.http)
    from loopline.tracking.sql_store import SqlTrackingStore

    return SqlTrackingStore(context.engine, workspace=context.workspace, actor=context.actor)
