"""The module-level verbs: ``loopline.start_run``, ``log_metric``, … over one ``Client``.

State lives in one context variable (the client, the experiment and the stack of active runs),
so each thread and each asyncio task has its own active run, as in MLflow.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from loopline.artifacts import FileInfo
from loopline.clock import now_ms
from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.tracking.client import Client
from loopline.tracking.types import Metric, Run, RunStatus


@dataclass(frozen=True)
class _State:
    settings: Settings | None = None
    client: Client | None = None
    experiment_id: str | None = None
    runs: tuple[ActiveRun, ...] = field(default=())


# _State is frozen: the shared default is never mutated, only replaced with .set().
_state: contextvars.ContextVar[_State] = contextvars.ContextVar(
    "loopline_fluent",
    default=_State(),  # noqa: B039
)


def default_client() -> Client:
    """The client the module-level verbs use (configured by ``set_tracking_uri`` or the environment)."""
    return _client()


def default_settings() -> Settings:
    """The settings the module-level verbs use, without opening their client (and its store)."""
    st = _state.get()
    if st.client is not None:
        return st.client.settings
    return st.settings or Settings.from_env()


def _client() -> Client:
    st = _state.get()
    if st.client is None:
        st = replace(st, client=Client(st.settings))
        _state.set(st)
    assert st.client is not None
    return st.client


def set_tracking_uri(uri: str, artifacts_uri: str | None = None) -> None:
    """Point the module-level verbs at ``uri`` (a database URI, a folder or ``http://`` server)."""
    _state.set(_State(settings=Settings.from_env(tracking_uri=uri, artifacts_uri=artifacts_uri)))


def get_tracking_uri() -> str:
    return _client().settings.tracking_uri


def set_experiment(name: str) -> str:
    """Make ``name`` the experiment new runs go to (created if needed); returns its ID."""
    exp = _client().set_experiment(name)
    _state.set(replace(_state.get(), experiment_id=exp.experiment_id))
    return exp.experiment_id


class ActiveRun:
    """A run being logged to. Use it as a context manager; it ends the run on exit.

    A new run reaches the store with its first batch (see ``Client.create_run(defer=True)``); asking
    for its ``run``, ``info`` or ``run_id`` writes it first, so an ID handed to another process or
    client always names a run that exists.
    """

    def __init__(self, client: Client, run: Run) -> None:
        self.client = client
        self._run = run
        self._id = str(run.info.run_id)

    @property
    def run(self) -> Run:
        self.client.ensure_created(self._id)
        return self._run

    @property
    def info(self) -> Any:
        return self.run.info

    @property
    def run_id(self) -> str:
        self.client.ensure_created(self._id)
        return self._id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        status = (
            RunStatus.FINISHED
            if exc_type is None
            else (RunStatus.KILLED if exc_type is KeyboardInterrupt else RunStatus.FAILED)
        )
        _end(self, status)


@functools.lru_cache(maxsize=64)
def _git_commit(path: Path) -> tuple[str, bool] | None:
    """(commit, dirty) of the checkout holding ``path``; looked up once per folder and process, as
    MLflow does (two git subprocesses per run cost more than the run's own requests)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return out, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return None


def _source_tags() -> dict[str, str]:
    return dict(_source_tags_of(sys.argv[0] if sys.argv else "", os.getcwd()))


@functools.lru_cache(maxsize=16)
def _source_tags_of(argv0: str, cwd: str) -> tuple[tuple[str, str], ...]:
    """The source tags of a script, once per script and folder (resolving paths cost more than the
    rest of a short run's client-side work)."""
    script = Path(cwd, argv0).resolve() if argv0 else Path(cwd)
    tags = {"mlflow.source.name": str(script), "mlflow.source.type": "LOCAL"}
    commit = _git_commit(script.parent if script.is_file() else script)
    if commit:
        tags["mlflow.source.git.commit"] = commit[0]
        tags["loopline.source.git.dirty"] = str(commit[1]).lower()
    return tuple(tags.items())


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    *,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it the active one.

    >>> with loopline.start_run(experiment="iris") as run:
    ...     loopline.log_param("C", 1.0)
    ...     loopline.log_metric("acc", 0.93, step=1)
    """
    client = _client()
    st = _state.get()
    if st.runs and not nested and run_id is None:
        raise InvalidInput(
            f"Run {st.runs[-1]._id} is already active.",
            hint="End it with loopline.end_run(), or pass nested=True to start a child run.",
        )
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.status.is_terminal:
            client.store.update_run_info(run_id, RunStatus.RUNNING)
            run = client.get_run(run_id)
    else:
        if experiment is not None:
            exp_id = client.set_experiment(experiment).experiment_id
        elif st.runs:  # a child run goes where its parent is
            exp_id = str(st.runs[-1]._run.info.experiment_id)
        else:
            exp_id = st.experiment_id or os.environ.get("LOOPLINE_EXPERIMENT_ID") or "0"
        all_tags: dict[str, Any] = {"mlflow.user": client.settings.user, **_source_tags(), **(tags or {})}
        if st.runs:
            all_tags["mlflow.parentRunId"] = st.runs[-1]._id
        if description:
            all_tags["mlflow.note.content"] = description
        run = client.create_run(exp_id, run_name, all_tags, defer=True)
    active = ActiveRun(client, run)
    _state.set(replace(_state.get(), runs=(*_state.get().runs, active)))
    return active


def _end(active: ActiveRun, status: RunStatus) -> None:
    st = _state.get()
    try:
        active.client.set_terminated(active._id, status, now_ms())
    finally:
        _state.set(replace(st, runs=tuple(r for r in st.runs if r is not active)))


def active_run() -> ActiveRun | None:
    runs = _state.get().runs
    return runs[-1] if runs else None


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (flushing its buffered metrics first)."""
    run = active_run()
    if run is not None:
        _end(run, RunStatus(status))


def _run() -> ActiveRun:
    return active_run() or start_run()


@atexit.register
def _end_runs_at_exit() -> None:
    """Runs still active when the program ends (e.g. started implicitly by log_metric) finish."""
    while (run := active_run()) is not None:
        try:
            _end(run, RunStatus.FINISHED)
        except Exception as e:  # at exit there is nobody to raise to
            print(f"loopline: could not end run {run._id}: {e}", file=sys.stderr)
            break


def log_param(key: str, value: Any) -> None:
    run = _run()
    run.client.log_param(run._id, key, value)


def log_params(params: Mapping[str, Any]) -> None:
    run = _run()
    run.client.log_batch(run._id, params=params)


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    """Log one point; buffered and written in the background (see ``loopline.flush``)."""
    run = _run()
    run.client.log_metric(run._id, key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    run = _run()
    ts = now_ms()
    for key, value in metrics.items():
        run.client.log_metric(run._id, key, value, step, ts)


def set_tag(key: str, value: Any) -> None:
    run = _run()
    run.client.set_tag(run._id, key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    run = _run()
    run.client.log_batch(run._id, tags=tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> FileInfo:
    run = _run()
    return run.client.log_artifact(run._id, local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> list[FileInfo]:
    run = _run()
    return run.client.log_artifacts(run._id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> FileInfo:
    run = _run()
    return run.client.log_text(run._id, text, artifact_file)


def flush() -> None:
    """Write every buffered metric now."""
    _client().flush()


def search_runs(
    experiment_names: Sequence[str] | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    *,
    experiment_ids: Sequence[str] | None = None,
) -> list[Run]:
    """Runs matching ``filter_string`` (MLflow grammar); all experiments when none named."""
    client = _client()
    ids = list(experiment_ids or [])
    for name in experiment_names or []:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise InvalidInput(f"No experiment named {name!r}.")
        ids.append(exp.experiment_id)
    return client.search_runs(ids, filter_string, order_by, max_results)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return _client().get_metric_history(run_id, key)
