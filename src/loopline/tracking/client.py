"""``Client``: the one object behind every tracking verb, in-process or over HTTP.

client = Client()                                   # ./.loopline (SQLite + local artifacts)
client = Client(tracking_uri="http://127.0.0.1:5000")  # a loopline (or mlflow) server
exp_id = client.set_experiment("churn").experiment_id
run = client.create_run(exp_id, run_name="baseline")
client.log_metric(run.info.run_id, "auc", 0.91, step=3)
client.set_terminated(run.info.run_id)

``create_run(..., defer=True)`` (what ``loopline.start_run`` uses) names the run at once and
writes it later, with its first params, tags and metrics, in one call: at the next flush (within
``settings.flush_interval``), when anything reads or changes it through this client, or when it
ends — a short run is then written in one request. Against MLflow's server, or with more tags
than one batch holds, runs are created at once as usual.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loopline.artifacts import ArtifactStore, FileInfo
from loopline.artifacts.paths import join, safe_path
from loopline.clock import now_ms
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import InvalidInput, NotFound
from loopline.tracking.buffer import DeferredRuns, MetricBuffer, PendingRun
from loopline.tracking.names import name_new_run
from loopline.tracking.store import TrackingStore, open_tracking_store
from loopline.tracking.types import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from loopline.tracking.validation import (
    INT64_MAX,
    INT64_MIN,
    MAX_ENTITIES_PER_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    validate_key,
    validate_metric,
    validate_tag,
)
from loopline.uris import artifact_path


def _param_value(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


class Client:
    """Experiments, runs, metrics, params, tags and artifacts, for one tracking URI."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracking_uri: str | None = None,
        artifacts_uri: str | None = None,
        context: Context | None = None,
    ) -> None:
        if context is None:
            settings = settings or Settings.from_env(tracking_uri=tracking_uri, artifacts_uri=artifacts_uri)
            context = Context(settings)
        self.context = context
        self.settings = context.settings
        self.store: TrackingStore = open_tracking_store(context)
        self.artifacts: ArtifactStore = context.artifacts
        self.deferred = DeferredRuns(self.store)
        self.buffer = MetricBuffer(
            self._write_metrics, self.settings.flush_interval, on_flush=self.deferred.create_all
        )
        self._artifact_roots: dict[str, str] = {}
        self._valid_keys: set[str] = set()
        self._experiments: dict[str, Experiment] = {}  # seen active here: runs in them can be deferred
        self._run_ids_ok: bool | None = None

    # ---- experiments -----------------------------------------------------------------------

    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        return self.store.create_experiment(name, None, tags)

    def _remember(self, exp: Experiment) -> Experiment:
        if exp.lifecycle_stage == LifecycleStage.ACTIVE:
            self._experiments[exp.experiment_id] = exp
        else:
            self._experiments.pop(exp.experiment_id, None)
        return exp

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._remember(self.store.get_experiment(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        exp = self.store.get_experiment_by_name(name)
        return self._remember(exp) if exp is not None else None

    def set_experiment(self, name: str) -> Experiment:
        """The active experiment called ``name``, created if it does not exist."""
        from loopline.errors import AlreadyExists

        exp = self.get_experiment_by_name(name)
        if exp is None:
            try:
                return self.get_experiment(self.store.create_experiment(name))
            except AlreadyExists:  # another process created it first
                exp = self.get_experiment_by_name(name)
                assert exp is not None
        if exp.lifecycle_stage.value != "active":
            raise InvalidInput(f"Experiment {name!r} is deleted.", hint="Restore it or choose another name.")
        return exp

    def search_experiments(
        self,
        filter_string: str | None = None,
        view_type: ViewType = "ACTIVE_ONLY",
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        out: list[Experiment] = []
        token = None
        while True:
            page = self.store.search_experiments(view_type, 1000, filter_string, order_by, token)
            out += page.items
            if not (token := page.next_page_token):
                return out

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment and its runs deleted (``restore_experiment`` undoes it)."""
        self.flush()  # its deferred runs first, as if they had been created at once
        self._experiments.pop(experiment_id, None)
        self.store.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(experiment_id)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(experiment_id, new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.store.set_experiment_tag(experiment_id, key, value)

    # ---- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        start_time: int | None = None,
        *,
        defer: bool = False,
    ) -> Run:
        """Create a run. With ``defer=True`` its ID is final at once but the store gets the run later,
        with its first params, tags and metrics, in one call (see the module docstring)."""
        run_tags = [RunTag(k, _param_value(v)) for k, v in (tags or {}).items()]
        start = start_time or now_ms()
        if defer and len(run_tags) <= MAX_TAGS_PER_BATCH and self._accepts_run_ids():
            return self._defer_run(self._active_experiment(experiment_id), run_name, run_tags, start)
        return self.store.create_run(experiment_id, self.settings.user, start, run_tags, run_name)

    def get_run(self, run_id: str) -> Run:
        self.buffer.flush()  # read-your-writes: what was logged (and deferred runs) is visible
        return self.store.get_run(run_id)

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> None:
        status, end_time = RunStatus(status), end_time or now_ms()
        pending = self.buffer.take(run_id)
        deferred = self.deferred.take(run_id)
        try:
            self.buffer.flush()  # other runs' points, and errors from earlier background writes
            if deferred is not None:  # never written: the whole run is one call when it fits
                room = self.deferred.room(deferred)
                if len(pending) <= room:
                    self.deferred.write(run_id, deferred, pending, status, end_time)
                    return
                self.deferred.write(run_id, deferred, pending[:room])
                deferred, pending = None, pending[room:]
            cut = (
                len(pending) - len(pending) % MAX_METRICS_PER_BATCH
                if len(pending) > MAX_METRICS_PER_BATCH
                else 0
            )
            if cut:
                self.log_batch(run_id, pending[:cut])
            # The run's last points and its final status go in one transaction (one request remotely).
            self.store.finish_run(run_id, status, end_time, pending[cut:])
        except BaseException:
            if deferred is not None:
                self.deferred.restore(run_id, deferred)
            # Back in the queue: nothing is lost (a point written twice is stored once).
            for metric in pending:
                self.buffer.add(run_id, metric)
            raise

    # ---- deferred runs ---------------------------------------------------------------------

    def _accepts_run_ids(self) -> bool:
        if self._run_ids_ok is None:
            self._run_ids_ok = self.store.accepts_run_ids()
        return self._run_ids_ok

    def _active_experiment(self, experiment_id: str) -> Experiment:
        """The experiment, checked as the store would check it (looked up once per client)."""
        exp = self._experiments.get(str(experiment_id)) or self.get_experiment(str(experiment_id))
        if exp.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidInput(
                f"Experiment {experiment_id} is deleted; runs cannot be created in it.",
                hint="Restore it or use another experiment.",
            )
        return exp

    def _defer_run(self, exp: Experiment, run_name: str | None, tags: Sequence[RunTag], start: int) -> Run:
        for tag in tags:
            validate_tag(tag)
        name, tag_map = name_new_run(run_name, {t.key: t.value for t in tags})
        run_id, user = uuid.uuid4().hex, self.settings.user
        self.deferred.add(run_id, PendingRun(exp.experiment_id, name, user, start, tag_map))
        self.buffer.start()  # written within flush_interval even if nothing else happens
        artifact_uri = f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts"
        info = RunInfo(run_id, exp.experiment_id, name, user, RunStatus.RUNNING, start, None, artifact_uri)
        return Run(info, RunData(tags=dict(tag_map)))

    def ensure_created(self, run_id: str) -> None:
        """Write the deferred run ``run_id`` now (nothing to do for a run already in the store)."""
        if run_id in self.deferred:
            self.deferred.create(run_id)

    def delete_run(self, run_id: str) -> None:
        self.ensure_created(run_id)
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.ensure_created(run_id)
        self.store.restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        run_view_type: ViewType = "ACTIVE_ONLY",
    ) -> list[Run]:
        """Runs matching MLflow's ``filter_string`` grammar, across every experiment if none given."""
        self.buffer.flush()
        out: list[Run] = []
        token = None
        while len(out) < max_results:
            page = self.store.search_runs(
                list(experiment_ids or []),
                filter_string,
                run_view_type,
                min(max_results - len(out), 50_000),
                order_by,
                token,
            )
            out += page.items
            if not (token := page.next_page_token):
                break
        return out

    # ---- logging ---------------------------------------------------------------------------

    def _check_key(self, kind: str, key: str) -> None:
        if key not in self._valid_keys:
            validate_key(kind, key)
            self._valid_keys.add(key)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        """Queue one metric point (written within ``settings.flush_interval``, or now if synchronous)."""
        self._check_key("metric", key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise InvalidInput(f"Metric {key!r} got a non-numeric value {value!r}.") from None
        metric = Metric(key, float(value), timestamp if timestamp is not None else now_ms(), step or 0)
        if (
            type(metric.step) is not int
            or type(metric.timestamp) is not int
            or not INT64_MIN <= metric.step <= INT64_MAX
            or not INT64_MIN <= metric.timestamp <= INT64_MAX
        ):
            validate_metric(metric)  # refused here rather than by the buffer's thread later
        if synchronous:
            self.ensure_created(run_id)
            self.store.log_batch(run_id, [metric])
        else:
            self.buffer.add(run_id, metric)

    def _write_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if run_id in self.deferred:  # a deferred run is written with its first points
            metrics = self.deferred.create(run_id, metrics)
        if metrics:
            self.store.log_batch(run_id, metrics)

    def flush(self) -> None:
        """Write every queued metric, and every deferred run, now."""
        self.buffer.flush()

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        if not self.deferred.extend(run_id, {key: _param_value(value)}, {}):
            self.store.log_batch(run_id, (), [Param(key, _param_value(value))])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        if not self.deferred.extend(run_id, {}, {key: _param_value(value)}):
            self.store.log_batch(run_id, (), (), [RunTag(key, _param_value(value))])

    def delete_tag(self, run_id: str, key: str) -> None:
        self.ensure_created(run_id)
        self.store.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] | Mapping[str, Any] = (),
        tags: Sequence[RunTag] | Mapping[str, Any] = (),
    ) -> None:
        """Write now, split into as many requests as MLflow's batch limits need."""
        if isinstance(params, Mapping):
            params = [Param(k, _param_value(v)) for k, v in params.items()]
        if isinstance(tags, Mapping):
            tags = [RunTag(k, _param_value(v)) for k, v in tags.items()]
        if (
            not metrics
            and len(params) == len({p.key for p in params})  # a key twice: let the store say what is wrong
            and len(tags) == len({t.key for t in tags})
            and self.deferred.extend(run_id, {p.key: p.value for p in params}, {t.key: t.value for t in tags})
        ):
            return
        self.ensure_created(run_id)
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            self.store.log_batch(run_id, (), params[i : i + MAX_PARAMS_PER_BATCH])
        for i in range(0, len(tags), MAX_TAGS_PER_BATCH):
            self.store.log_batch(run_id, (), (), tags[i : i + MAX_TAGS_PER_BATCH])
        step = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH)
        for i in range(0, len(metrics), step):
            self.store.log_batch(run_id, metrics[i : i + step])

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        self.ensure_created(run_id)
        self.store.log_inputs(run_id, datasets)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.buffer.flush()
        out: list[Metric] = []
        token = None
        while True:
            page = self.store.get_metric_history(run_id, key, None, token)  # the server's page size
            out += page.items
            if not (token := page.next_page_token):
                return out

    # ---- artifacts -------------------------------------------------------------------------

    def _artifact_root(self, run_id: str) -> str:
        root = self._artifact_roots.get(run_id)
        if root is None:
            self.ensure_created(run_id)  # artifacts belong to a run the store knows
            root = safe_path(artifact_path(self.store.get_run(run_id).info.artifact_uri))
            self._artifact_roots[run_id] = root
        return root

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> FileInfo:
        """Upload one file into the run's artifacts, under ``artifact_path`` if given."""
        local = Path(local_path)
        if not local.is_file():
            raise NotFound(f"No file at {str(local)!r} to log.", hint="Use log_artifacts for folders.")
        dest = join(
            self._artifact_root(run_id),
            safe_path(artifact_path, allow_root=True) if artifact_path else "",
            local.name,
        )
        return self.artifacts.put_file(local, dest)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[FileInfo]:
        """Upload every file below ``local_dir``, keeping the folder structure."""
        base = Path(local_dir)
        if not base.is_dir():
            raise NotFound(f"No folder at {str(base)!r} to log.")
        root = join(
            self._artifact_root(run_id), safe_path(artifact_path, allow_root=True) if artifact_path else ""
        )
        return [
            self.artifacts.put_file(f, join(root, f.relative_to(base).as_posix()))
            for f in sorted(base.rglob("*"))
            if f.is_file()
        ]

    def log_text(self, run_id: str, text: str, artifact_file: str) -> FileInfo:
        return self.artifacts.put_bytes(
            text.encode(), join(self._artifact_root(run_id), safe_path(artifact_file))
        )

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path`` in the run's artifacts; paths are relative to the run."""
        root = self._artifact_root(run_id)
        entries = self.artifacts.list(join(root, safe_path(path, allow_root=True) if path else ""))
        return [FileInfo(e.path[len(root) + 1 :], e.is_dir, e.file_size, e.digest) for e in entries]

    def download_artifacts(self, run_id: str, path: str, dst: str | os.PathLike[str]) -> Path:
        """Download a file or a folder of the run's artifacts into folder ``dst``."""
        root = self._artifact_root(run_id)
        rel = safe_path(path, allow_root=True)
        full = join(root, rel)
        dst = Path(dst)
        files: Iterable[FileInfo] = list(self.artifacts.walk(full))
        if not files:
            raise NotFound(f"Run {run_id} has no artifact at {path!r}.")
        base = full.rsplit("/", 1)[0] if "/" in full else ""
        for f in files:
            self.artifacts.get_file(f.path, dst / f.path[len(base) :].lstrip("/"))
        return dst / full[len(base) :].lstrip("/")

    def close(self) -> None:
        self.buffer.close()
