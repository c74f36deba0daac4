"""The tracking store on SQLAlchemy: one class for SQLite and PostgreSQL.

Every public method is one transaction. Every mutating one appends an event (who, what, when,
object URI) in that same transaction, so the audit trail can never disagree with the data.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, exists, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from loopline import uris
from loopline.clock import now_ms
from loopline.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopline.metadata import schema as t
from loopline.metadata.base import SqlStore, chunks, decode_token, encode_token
from loopline.metadata.engine import insert_for
from loopline.metadata.pages import Page
from loopline.metadata.search import RunQuery
from loopline.tracking.store import RUN_NAME_TAG, ViewType, check_run_id, name_new_run
from loopline.tracking.types import (
    Dataset,
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
)
from loopline.tracking.validation import db_value, validate_batch, validate_key, validate_tag, validate_text

USER_TAG = "mlflow.user"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT = "Default"


def _views(view_type: ViewType) -> tuple[str, ...]:
    return {
        "ACTIVE_ONLY": (LifecycleStage.ACTIVE.value,),
        "DELETED_ONLY": (LifecycleStage.DELETED.value,),
        "ALL": (LifecycleStage.ACTIVE.value, LifecycleStage.DELETED.value),
    }[view_type]


class SqlTrackingStore(SqlStore):
    """Tracking data in SQLite or PostgreSQL, scoped to one workspace and acting as one actor."""

    def __init__(
        self,
        engine: Engine,
        *,
        workspace: str = "default",
        actor: str = "unknown",
        artifact_root: str | None = None,
    ) -> None:
        super().__init__(engine, workspace=workspace, actor=actor)
        # None: experiments keep their artifacts in Loopline's store (mlflow-artifacts:/<id>). A URI:
        # new experiments get <root>/<id>, written by clients directly (`server --no-serve-artifacts`).
        self.artifact_root = artifact_root.rstrip("/") if artifact_root else None
        self._ensure_workspace()

    def _default_location(self, experiment_id: object) -> str:
        if self.artifact_root:
            return f"{self.artifact_root}/{experiment_id}"
        return uris.artifact_location(str(experiment_id))

    def scoped(self, *, workspace: str | None = None, actor: str | None = None) -> SqlTrackingStore:
        clone = super().scoped(workspace=workspace, actor=actor)
        if clone.workspace != self.workspace:
            clone._ensure_workspace()
        return clone

    def _ensure_workspace(self) -> None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(t.workspaces.c.name).where(t.workspaces.c.name == self.workspace)
            ).first()
        if found:
            return
        with self._write() as conn:
            ins = self._insert(conn, t.workspaces).values(name=self.workspace, created_at=now_ms())
            if conn.execute(ins.on_conflict_do_nothing()).rowcount == 0:
                return
            values: dict[str, object] = {
                "workspace": self.workspace,
                "name": DEFAULT_EXPERIMENT,
                "artifact_location": "",
                "lifecycle_stage": LifecycleStage.ACTIVE.value,
                "creation_time": now_ms(),
                "last_update_time": now_ms(),
            }
            if self.workspace == "default":
                values["experiment_id"] = 0  # MLflow's Default experiment
            exp_id = conn.execute(
                insert(t.experiments).values(**values).returning(t.experiments.c.experiment_id)
            ).scalar_one()
            conn.execute(
                update(t.experiments)
                .where(t.experiments.c.experiment_id == exp_id)
                .values(artifact_location=self._default_location(exp_id))
            )
            self._event(conn, "workspace.create", f"workspaces:/{self.workspace}")

    def _experiment_row(self, conn: Connection, experiment_id: str) -> Any:
        try:
            exp_id = int(experiment_id)
        except (TypeError, ValueError):
            raise InvalidInput(
                f"Invalid experiment ID {experiment_id!r}: experiment IDs are integers."
            ) from None
        row = conn.execute(_SELECT_EXPERIMENT, {"experiment_id": exp_id, "workspace": self.workspace}).first()
        if row is None:
            raise NotFound(
                f"No experiment with ID {experiment_id!r}.",
                hint="List experiments with `loopline experiments list`.",
            )
        return row

    def _experiment(self, conn: Connection, row: Any) -> Experiment:
        tag_rows = conn.execute(
            select(t.experiment_tags.c.key, t.experiment_tags.c.value).where(
                t.experiment_tags.c.experiment_id == row.experiment_id
            )
        )
        return Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=LifecycleStage(row.lifecycle_stage),
            tags={k: v for k, v in tag_rows},
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
        )

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(_SELECT_RUN, {"run_id": run_id, "workspace": self.workspace}).first()
        if row is None:
            raise NotFound(
                f"Run with id={run_id} not found.", hint="Check the run ID; `loopline runs list` shows them."
            )
        return row

    def _active_run_row(self, conn: Connection, run_id: str) -> Any:
        row = self._run_row(conn, run_id)
        if row.lifecycle_stage != LifecycleStage.ACTIVE.value:
            raise InvalidInput(
                f"The run {run_id} must be in the 'active' state. Current state is {row.lifecycle_stage}.",
                hint="Restore the run first (`loopline runs restore`).",
            )
        return row

    # ---- experiments -----------------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("An experiment needs a non-empty name.")
        if len(name) > 256:
            raise InvalidInput("Experiment names are at most 256 characters.")
        validate_text("The experiment name", name)
        for k, v in (tags or {}).items():
            validate_tag(RunTag(k, v))
        if artifact_location and "://" not in artifact_location and ":/" not in artifact_location:
            # A plain path: absolute, as MLflow makes it (relative to this process's folder).
            artifact_location = os.path.abspath(artifact_location)
        ms = now_ms()
        try:
            with self._write() as conn:
                exp_id = conn.execute(
                    insert(t.experiments)
                    .values(
                        workspace=self.workspace,
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=LifecycleStage.ACTIVE.value,
                        creation_time=ms,
                        last_update_time=ms,
                    )
                    .returning(t.experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        update(t.experiments)
                        .where(t.experiments.c.experiment_id == exp_id)
                        .values(artifact_location=self._default_location(exp_id))
                    )
                if tags:
                    conn.execute(
                        insert(t.experiment_tags),
                        [{"experiment_id": exp_id, "key": k, "value": v} for k, v in tags.items()],
                    )
                self._event(conn, "experiment.create", f"experiments:/{exp_id}", name=name)
        except IntegrityError:
            raise AlreadyExists(
                f"Experiment '{name}' already exists.",
                hint="Use it (set_experiment) or pick another name; a deleted one can be restored.",
            ) from None
        return str(exp_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.engine.connect() as conn:
            return self._experiment(conn, self._experiment_row(conn, experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.experiments).where(
                    t.experiments.c.workspace == self.workspace, t.experiments.c.name == name
                )
            ).first()
            return self._experiment(conn, row) if row else None

    def search_experiments(
        self,
        view_type: ViewType = "ACTIVE_ONLY",
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        from loopline.metadata.search import experiment_query

        offset = decode_token(page_token)
        q = experiment_query(self.workspace, _views(view_type), filter_string, order_by)
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(max_results + 1).offset(offset)).all()
            items = [self._experiment(conn, r) for r in rows[:max_results]]
        token = encode_token(offset + max_results) if len(rows) > max_results else None
        return Page(items, token)

    def _set_experiment_stage(self, experiment_id: str, stage: LifecycleStage) -> None:
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if stage == LifecycleStage.DELETED and row.experiment_id == 0:
                raise InvalidInput("The Default experiment cannot be deleted.")
            ms = now_ms()
            conn.execute(
                update(t.experiments)
                .where(t.experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=stage.value, last_update_time=ms)
            )
            conn.execute(
                update(t.runs)
                .where(t.runs.c.experiment_id == row.experiment_id)
                .values(
                    lifecycle_stage=stage.value,
                    deleted_time=ms if stage == LifecycleStage.DELETED else None,
                )
            )
            action = "delete" if stage == LifecycleStage.DELETED else "restore"
            self._event(conn, f"experiment.{action}", f"experiments:/{row.experiment_id}")

    def delete_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        if not new_name or not new_name.strip():
            raise InvalidInput("An experiment needs a non-empty name.")
        try:
            with self._write() as conn:
                row = self._experiment_row(conn, experiment_id)
                conn.execute(
                    update(t.experiments)
                    .where(t.experiments.c.experiment_id == row.experiment_id)
                    .values(name=new_name, last_update_time=now_ms())
                )
                self._event(conn, "experiment.rename", f"experiments:/{row.experiment_id}", name=new_name)
        except IntegrityError:
            raise AlreadyExists(f"Experiment '{new_name}' already exists.") from None

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        validate_tag(RunTag(key, value))
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            ins = self._insert(conn, t.experiment_tags).values(
                experiment_id=row.experiment_id, key=key, value=value
            )
            conn.execute(
                ins.on_conflict_do_update(index_elements=["experiment_id", "key"], set_={"value": value})
            )
            self._event(conn, "experiment.set_tag", f"experiments:/{row.experiment_id}", key=key)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._write() as conn:
            row = self._experiment_row(conn, experiment_id)
            if row.lifecycle_stage != LifecycleStage.ACTIVE.value:
                raise InvalidInput(
                    f"The experiment {experiment_id} must be in the 'active' state. "
                    f"Current state is {row.lifecycle_stage}.",
                    hint="Restore the experiment first.",
                )
            et = t.experiment_tags.c
            deleted = conn.execute(
                delete(t.experiment_tags).where(et.experiment_id == row.experiment_id, et.key == key)
            ).rowcount
            if deleted == 0:
                raise NotFound(f"No tag with name: {key} in experiment with id {experiment_id}")
            self._event(conn, "experiment.delete_tag", f"experiments:/{row.experiment_id}", key=key)

    # ---- runs ------------------------------------------------------------------------------

    def accepts_run_ids(self) -> bool:
        return True

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
        """Create a run, optionally under a client-chosen ID with its first batch, in one transaction.

        A client-chosen ID that is taken raises ``Conflict``, except when the run holding it was made
        by this very call (same experiment, name, user and start time): a request retried after its
        answer was lost then applies its batch again, which changes nothing.
        """
        tag_map = {tg.key: tg.value for tg in tags}
        for k, v in tag_map.items():
            validate_tag(RunTag(k, v))
        if params or metrics:
            validate_batch(metrics, params, ())
        name, tag_map = name_new_run(run_name, tag_map)
        user = user_id or tag_map.get(USER_TAG) or self.actor
        final = RunStatus(status)
        if final.is_terminal and end_time is None:
            raise InvalidInput(f"A run created with status {final.value} needs an end_time.")
        chosen = run_id is not None
        run_id = check_run_id(run_id) if chosen else uuid.uuid4().hex
        uri = f"runs:/{run_id}"
        param_map = {p.key: p.value for p in params}
        start = start_time if start_time is not None else now_ms()
        try:
            with self._write() as conn:
                exp = self._experiment_row(conn, experiment_id)
                if exp.lifecycle_stage != LifecycleStage.ACTIVE.value:
                    raise InvalidInput(
                        f"Experiment {experiment_id} is deleted; runs cannot be created in it.",
                        hint="Restore it or use another experiment.",
                    )
                values = {
                    "run_uuid": run_id,
                    "workspace": self.workspace,
                    "experiment_id": exp.experiment_id,
                    "name": name,
                    "user_id": user,
                    "status": RunStatus.RUNNING.value,
                    "start_time": start,
                    "end_time": None,
                    "lifecycle_stage": LifecycleStage.ACTIVE.value,
                    "artifact_uri": f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts",
                }
                final_values = {
                    **values,
                    "status": final.value,
                    "end_time": end_time if final.is_terminal else None,
                }
                _insert_new_run(conn, final_values, tag_map, param_map, metrics)
                self._event(
                    conn,
                    "run.create",
                    uri,
                    experiment_id=str(exp.experiment_id),
                    name=name,
                    status=final.value,
                    params=len(param_map),
                    metrics=len(metrics),
                )
                if PARENT_TAG in tag_map:
                    self._edge(conn, f"runs:/{tag_map[PARENT_TAG]}", uri, "parent_of")
        except IntegrityError:  # the ID is taken (the only key a new run can collide on)
            if not chosen:
                raise
            self._create_again(values, tag_map, param_map, metrics, final, end_time)
        info = RunInfo(
            run_id=run_id,
            experiment_id=str(exp.experiment_id),
            run_name=name,
            user_id=user,
            status=final,
            start_time=start,
            end_time=end_time if final.is_terminal else None,
            artifact_uri=str(values["artifact_uri"]),
        )
        return Run(info, RunData(param_map, tag_map, _latest(metrics)))

    def _create_again(
        self,
        values: Mapping[str, Any],
        tags: Mapping[str, str],
        params: Mapping[str, str],
        metrics: Sequence[Metric],
        final: RunStatus,
        end_time: int | None,
    ) -> None:
        """``create_run`` with an ID that is taken: a retry of the call that took it writes its batch
        again (which changes nothing); any other run wanting that ID is refused."""
        run_id = str(values["run_uuid"])
        with self._write() as conn:
            found = conn.execute(_SELECT_RUN_BY_ID, {"run_id": run_id}).first()
            if found is None or not _same_creation(found, values):
                raise _run_id_taken(run_id)
            self._upsert_tags(conn, run_id, [RunTag(k, v) for k, v in tags.items()])
            if params:
                self._log_params(conn, run_id, [Param(k, v) for k, v in params.items()])
            if metrics:
                self._log_metrics(conn, run_id, metrics)
            if final.is_terminal:
                conn.execute(_FINISH_RUN, {"run_id": run_id, "status": final.value, "end_time": end_time})

    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            row = self._run_row(conn, run_id)
            run = self._load_runs(conn, [row])[0]
            rlm = t.run_logged_models.c
            links = conn.execute(
                select(rlm.model_id, rlm.direction, rlm.step)
                .where(rlm.run_uuid == run_id)
                .order_by(rlm.model_id)
            ).all()
        # Only here, not in searches: listing runs stays one query per kind of child row.
        return dataclasses.replace(
            run,
            model_inputs=tuple(m for m, d, _ in links if d == "input"),
            model_outputs=tuple((m, s) for m, d, s in links if d == "output"),
        )

    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        with self._write() as conn:
            row = self._active_run_row(conn, run_id)
            values: dict[str, object] = {}
            if status is not None:
                values["status"] = RunStatus(status).value
            if end_time is not None:
                values["end_time"] = end_time
            if run_name:
                values["name"] = run_name
                self._upsert_tags(conn, run_id, [RunTag(RUN_NAME_TAG, run_name)])
            if values:
                conn.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(**values))
            self._event(conn, "run.update", f"runs:/{run_id}", **{k: str(v) for k, v in values.items()})
            row = self._run_row(conn, run_id)
        return _run_info(row)

    def finish_run(
        self, run_id: str, status: RunStatus, end_time: int, metrics: Sequence[Metric] = ()
    ) -> RunInfo:
        """Log a run's last metrics and set its final status in one transaction (one request remotely)."""
        validate_batch(metrics, (), ())
        with self._write() as conn:
            self._active_run_row(conn, run_id)
            if metrics:
                self._log_metrics(conn, run_id, metrics)
            final = RunStatus(status).value
            conn.execute(_FINISH_RUN, {"run_id": run_id, "status": final, "end_time": end_time})
            self._event(conn, "run.finish", f"runs:/{run_id}", status=final, metrics=len(metrics))
            row = self._run_row(conn, run_id)
        return _run_info(row)

    def _set_run_stage(self, run_id: str, stage: LifecycleStage) -> None:
        with self._write() as conn:
            self._run_row(conn, run_id)
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_uuid == run_id)
                .values(
                    lifecycle_stage=stage.value,
                    deleted_time=now_ms() if stage == LifecycleStage.DELETED else None,
                )
            )
            action = "delete" if stage == LifecycleStage.DELETED else "restore"
            self._event(conn, f"run.{action}", f"runs:/{run_id}")

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    def _upsert_tags(self, conn: Connection, run_id: str, tags: Sequence[RunTag]) -> None:
        latest = {tg.key: tg.value for tg in tags}  # last one wins within a batch
        conn.execute(
            _upsert_tags(conn.dialect.name),
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in latest.items()],
        )
        if RUN_NAME_TAG in latest:
            conn.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(name=latest[RUN_NAME_TAG]))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        validate_batch(metrics, params, tags)
        with self._write() as conn:
            self._active_run_row(conn, run_id)
            if params:
                self._log_params(conn, run_id, params)
            if tags:
                self._upsert_tags(conn, run_id, tags)
            if metrics:
                self._log_metrics(conn, run_id, metrics)
            self._event(
                conn,
                "run.log_batch",
                f"runs:/{run_id}",
                metrics=len(metrics),
                params=len(params),
                tags=len(tags),
            )

    def _log_params(self, conn: Connection, run_id: str, params: Sequence[Param]) -> None:
        new = {p.key: p.value for p in params}
        rows = conn.execute(_SELECT_PARAMS, {"run_id": run_id, "keys": list(new)})
        existing: dict[str, str] = {k: v for k, v in rows}
        for key, old in existing.items():
            if old != new[key]:
                raise InvalidInput(
                    f"Changing param values is not allowed. Param with key='{key}' was already logged "
                    f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new[key]}'.",
                    hint="Params are immutable; log a metric or a tag for values that change.",
                )
        fresh = [{"run_uuid": run_id, "key": k, "value": v} for k, v in new.items() if k not in existing]
        if fresh:
            conn.execute(insert(t.params), fresh)

    def _log_metrics(self, conn: Connection, run_id: str, metrics: Sequence[Metric]) -> None:
        rows, latest = _metric_rows(run_id, metrics)
        # The ingest hot path: plain DB-API executemany (SQLAlchemy's per-row parameter handling cost
        # 2.4x the time here). A point logged twice is stored once (the unique index).
        conn.exec_driver_sql(
            _insert_sql("metrics", _METRIC_COLUMNS, _mark(conn)) + " ON CONFLICT DO NOTHING", rows
        )
        conn.execute(
            _upsert_latest(conn.dialect.name),
            [dict(zip(_METRIC_COLUMNS, r, strict=True)) for r in latest],
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        validate_key("tag", key)
        with self._write() as conn:
            self._active_run_row(conn, run_id)
            result = conn.execute(delete(t.tags).where(t.tags.c.run_uuid == run_id, t.tags.c.key == key))
            if result.rowcount == 0:
                raise NotFound(f"No tag with name: {key} in run with id {run_id}")
            self._event(conn, "run.delete_tag", f"runs:/{run_id}", key=key)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput], models: Sequence[str] = ()) -> None:
        """Record the datasets and the logged models (by ID) that run ``run_id`` used."""
        with self._write() as conn:
            run = self._active_run_row(conn, run_id)
            for model_id in models:
                lm = t.logged_models.c
                if not conn.execute(
                    select(lm.model_id).where(lm.model_id == model_id, lm.workspace == self.workspace)
                ).first():
                    raise NotFound(f"Logged model with ID '{model_id}' not found.")
                ins = self._insert(conn, t.run_logged_models).values(
                    run_uuid=run_id, model_id=model_id, direction="input", step=0
                )
                conn.execute(ins.on_conflict_do_nothing())
                self._edge(conn, f"models:/{model_id}", f"runs:/{run_id}", "input_of")
            for di in datasets:
                d = di.dataset
                if not d.name or not d.digest:
                    raise InvalidInput("A dataset input needs a name and a digest.")
                found = conn.execute(
                    select(t.datasets.c.dataset_uuid).where(
                        t.datasets.c.experiment_id == run.experiment_id,
                        t.datasets.c.name == d.name,
                        t.datasets.c.digest == d.digest,
                    )
                ).scalar()
                if found is None:
                    found = uuid.uuid4().hex
                    conn.execute(
                        insert(t.datasets).values(
                            dataset_uuid=found,
                            workspace=self.workspace,
                            experiment_id=run.experiment_id,
                            name=d.name,
                            digest=d.digest,
                            source_type=d.source_type,
                            source=d.source,
                            schema=d.schema,
                            profile=d.profile,
                        )
                    )
                ins = self._insert(conn, t.run_inputs).values(
                    run_uuid=run_id,
                    dataset_uuid=found,
                    context=di.tags.get("mlflow.data.context", ""),
                    tags=json.dumps(dict(di.tags)),
                )
                conn.execute(ins.on_conflict_do_nothing())
                self._edge(conn, f"datasets:/{d.name}/{d.digest}", f"runs:/{run_id}", "input_of")
            self._event(conn, "run.log_inputs", f"runs:/{run_id}", datasets=len(datasets), models=len(models))

    # ---- reads -----------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        include: Sequence[str] = ("params", "tags", "metrics", "inputs"),
    ) -> Page[Run]:
        """Search runs with MLflow's grammar; ``include`` picks which run data to load."""
        if max_results < 1 or max_results > 50_000:
            raise InvalidInput(f"max_results must be between 1 and 50000, got {max_results}.")
        offset = decode_token(page_token)
        q = RunQuery(self.workspace, experiment_ids, _views(run_view_type), filter_string, order_by)
        with self.engine.connect() as conn:
            rows = conn.execute(q.select().limit(max_results + 1).offset(offset)).all()
            runs = self._load_runs(conn, rows[:max_results], include)
        token = encode_token(offset + max_results) if len(rows) > max_results else None
        return Page(runs, token)

    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = "ACTIVE_ONLY",
    ) -> int:
        """How many runs match, without loading any of them (MLflow #8277)."""
        q = RunQuery(self.workspace, experiment_ids, _views(run_view_type), filter_string, None)
        with self.engine.connect() as conn:
            return int(conn.execute(q.count()).scalar_one())

    def _load_runs(
        self,
        conn: Connection,
        rows: Sequence[Any],
        include: Sequence[str] = ("params", "tags", "metrics", "inputs"),
    ) -> list[Run]:
        ids = [r.run_uuid for r in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, list[Metric]] = {i: [] for i in ids}
        inputs: dict[str, list[DatasetInput]] = {i: [] for i in ids}
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        for chunk in chunks(ids):
            # Plain DB-API tuples: a page of 1,000 runs has ~25,000 child rows, and SQLAlchemy's
            # row objects cost 3x the query.
            marks = ", ".join([mark] * len(chunk))
            if "params" in include:
                for rid, k, v in conn.exec_driver_sql(
                    f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({marks})", tuple(chunk)
                ).fetchall():
                    params[rid][k] = v
            if "tags" in include:
                for rid, k, v in conn.exec_driver_sql(
                    f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({marks})", tuple(chunk)
                ).fetchall():
                    tags[rid][k] = v
            if "metrics" in include:
                nan_value = float("nan")
                for rid, k, v, ts, step, nan in conn.exec_driver_sql(
                    "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics "
                    f"WHERE run_uuid IN ({marks})",
                    tuple(chunk),
                ).fetchall():
                    metrics[rid].append(Metric(k, nan_value if nan else v, ts, step))
            if "inputs" in include:
                d, ri = t.datasets.c, t.run_inputs.c
                for r in conn.execute(
                    select(
                        ri.run_uuid, ri.tags, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
                    )
                    .join(t.datasets, d.dataset_uuid == ri.dataset_uuid)
                    .where(ri.run_uuid.in_(chunk))
                ):
                    ds = Dataset(r.name, r.digest, r.source_type, r.source, r.schema, r.profile)
                    inputs[r.run_uuid].append(DatasetInput(ds, json.loads(r.tags)))
        return [
            Run(
                _run_info(r),
                RunData(params[r.run_uuid], tags[r.run_uuid], tuple(metrics[r.run_uuid])),
                tuple(inputs[r.run_uuid]),
            )
            for r in rows
        ]

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]:
        """The points of one metric in MLflow's order: (timestamp, step, value)."""
        rows, token = self.metric_history_rows(run_id, key, max_results, page_token)
        nan = float("nan")
        return Page(
            [Metric(key, nan if is_nan else value, ts, step) for ts, step, value, is_nan in rows], token
        )

    def metric_history_rows(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> tuple[list[tuple[int, int, float, bool]], str | None]:
        """History as plain ``(timestamp, step, value, is_nan)`` tuples, for callers that stream it."""
        # Plain DB-API on this hot path: building 100,000 SQLAlchemy rows cost 4x the query.
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        sql = f"SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = {mark} AND key = {mark}"
        args: list[object] = [run_id, key]
        if page_token:  # keyset paging on the unique index: exact, and as fast on page 100 as on 1
            sql += f" AND (timestamp, step, value, is_nan) > ({mark}, {mark}, {mark}, {mark})"
            args += _history_token(page_token)
        sql += " ORDER BY timestamp, step, value, is_nan"
        if max_results is not None:
            sql += f" LIMIT {int(max_results) + 1}"
        with self.engine.connect() as conn:
            self._run_row(conn, run_id)
            rows = [tuple(r) for r in conn.exec_driver_sql(sql, tuple(args)).fetchall()]
        token = None
        if max_results is not None and len(rows) > max_results:
            rows = rows[:max_results]
            ts, step, value, is_nan = rows[-1]
            token = base64.urlsafe_b64encode(json.dumps([ts, step, value, bool(is_nan)]).encode()).decode()
        return rows, token

    # ---- garbage collection ----------------------------------------------------------------

    def deleted_runs(self, older_than_ms: int = 0) -> list[RunInfo]:
        """Runs marked deleted at least ``older_than_ms`` ago (candidates for ``purge_runs``)."""
        cutoff = now_ms() - older_than_ms
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.runs).where(
                    t.runs.c.workspace == self.workspace,
                    t.runs.c.lifecycle_stage == LifecycleStage.DELETED.value,
                    t.runs.c.deleted_time <= cutoff,
                )
            ).all()
        return [_run_info(r) for r in rows]

    def purge_runs(self, run_ids: Sequence[str]) -> int:
        """Remove deleted runs and everything logged to them, for good. Active runs are refused."""
        purged = 0
        with self._write() as conn:
            for chunk in chunks(list(run_ids)):
                active = (
                    conn.execute(
                        select(t.runs.c.run_uuid).where(
                            t.runs.c.run_uuid.in_(chunk),
                            t.runs.c.lifecycle_stage != LifecycleStage.DELETED.value,
                        )
                    )
                    .scalars()
                    .all()
                )
                if active:
                    raise Conflict(
                        f"Run {active[0]} is not deleted; only deleted runs can be purged.",
                        hint="Delete it first (`loopline runs delete`).",
                    )
                for table in (
                    t.metrics,
                    t.latest_metrics,
                    t.params,
                    t.tags,
                    t.run_inputs,
                    t.run_logged_models,
                ):
                    conn.execute(delete(table).where(table.c.run_uuid.in_(chunk)))
                purged += conn.execute(
                    delete(t.runs).where(t.runs.c.run_uuid.in_(chunk), t.runs.c.workspace == self.workspace)
                ).rowcount
                for rid in chunk:
                    self._event(conn, "run.purge", f"runs:/{rid}")
        return purged

    def has_runs(self, experiment_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(
                conn.execute(select(exists().where(t.runs.c.experiment_id == int(experiment_id)))).scalar()
            )

    def count_metric_points(self, run_id: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(t.metrics).where(t.metrics.c.run_uuid == run_id)
                ).scalar_one()
            )


# Statements on the logging hot path, built once (building them cost as much as running them).
_SELECT_RUN = select(t.runs).where(
    t.runs.c.run_uuid == bindparam("run_id"), t.runs.c.workspace == bindparam("workspace")
)
_SELECT_RUN_BY_ID = select(t.runs).where(t.runs.c.run_uuid == bindparam("run_id"))
_SELECT_EXPERIMENT = select(t.experiments).where(
    t.experiments.c.experiment_id == bindparam("experiment_id"),
    t.experiments.c.workspace == bindparam("workspace"),
)
_FINISH_RUN = (
    update(t.runs)
    .where(t.runs.c.run_uuid == bindparam("run_id"))
    .values(status=bindparam("status"), end_time=bindparam("end_time"))
)
_SELECT_PARAMS = select(t.params.c.key, t.params.c.value).where(
    t.params.c.run_uuid == bindparam("run_id"), t.params.c.key.in_(bindparam("keys", expanding=True))
)
_METRIC_COLUMNS = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")


@functools.cache
def _upsert_tags(dialect_name: str) -> Any:
    """Set run tags (a repeated key overwrites). Built once per dialect: building it cost half a write."""
    ins = insert_for(dialect_name, t.tags)
    return ins.on_conflict_do_update(index_elements=["run_uuid", "key"], set_={"value": ins.excluded.value})


@functools.cache
def _upsert_latest(dialect_name: str) -> Any:
    """Keep the point with the highest (step, timestamp, value) per run and key, as MLflow does."""
    ins = insert_for(dialect_name, t.latest_metrics)
    lm = t.latest_metrics.c
    newer = tuple_(lm.step, lm.timestamp, lm.value) <= tuple_(
        ins.excluded.step, ins.excluded.timestamp, ins.excluded.value
    )
    return ins.on_conflict_do_update(
        index_elements=["run_uuid", "key"],
        set_={c: ins.excluded[c] for c in ("value", "timestamp", "step", "is_nan")},
        where=newer,
    )


MetricRow = tuple[str, str, float, int, int, bool]


def _metric_rows(run_id: str, metrics: Sequence[Metric]) -> tuple[list[MetricRow], list[MetricRow]]:
    """Rows for ``metrics`` and, per key, the latest point (highest step, timestamp, value)."""
    rows: list[MetricRow] = []
    latest: dict[str, MetricRow] = {}
    for m in metrics:
        value, is_nan = db_value(m.value)
        row = (run_id, m.key, value, m.timestamp, m.step, is_nan)
        rows.append(row)
        cur = latest.get(m.key)
        if cur is None or (m.step, m.timestamp, value) >= (cur[4], cur[3], cur[2]):
            latest[m.key] = row
    return rows, list(latest.values())


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], mark: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def _insert_new_run(
    conn: Connection,
    values: Mapping[str, object],
    tags: Mapping[str, str],
    params: Mapping[str, str],
    metrics: Sequence[Metric],
) -> None:
    """Write a new run in its final form (status, end time, latest metrics) with plain DB-API
    statements: SQLAlchemy's per-statement work cost as much as SQLite's own on this path, and a
    new run has no rows to compare with or upsert over."""
    mark, run_id = _mark(conn), str(values["run_uuid"])
    conn.exec_driver_sql(_insert_sql("runs", tuple(values), mark), tuple(values.values()))
    kv = ("run_uuid", "key", "value")
    conn.exec_driver_sql(_insert_sql("tags", kv, mark), [(run_id, k, v) for k, v in tags.items()])
    if params:
        conn.exec_driver_sql(_insert_sql("params", kv, mark), [(run_id, k, v) for k, v in params.items()])
    if metrics:
        rows, latest = _metric_rows(run_id, metrics)
        conn.exec_driver_sql(_insert_sql("metrics", _METRIC_COLUMNS, mark) + " ON CONFLICT DO NOTHING", rows)
        conn.exec_driver_sql(_insert_sql("latest_metrics", _METRIC_COLUMNS, mark), latest)


def _same_creation(row: Any, values: Mapping[str, object]) -> bool:
    """Whether run ``row`` is the one ``values`` describe (a retried create), not another run."""
    return all(
        getattr(row, k) == values[k] for k in ("workspace", "experiment_id", "name", "user_id", "start_time")
    )


def _run_id_taken(run_id: str) -> Conflict:
    return Conflict(
        f"Run ID {run_id} is already in use by another run.",
        hint="Let the store choose the ID, or use a fresh uuid.uuid4().hex.",
    )


def _latest(metrics: Sequence[Metric]) -> tuple[Metric, ...]:
    """Each key's latest point, as ``latest_metrics`` keeps it: highest (step, timestamp, value)."""
    latest: dict[str, Metric] = {}
    for m in metrics:
        cur = latest.get(m.key)
        if cur is None or (m.step, m.timestamp, m.value) >= (cur.step, cur.timestamp, cur.value):
            latest[m.key] = m
    return tuple(latest.values())


def _run_info(row: Any) -> RunInfo:
    return RunInfo(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        user_id=row.user_id,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=LifecycleStage(row.lifecycle_stage),
    )


__all__ = ["SqlTrackingStore"]


def _history_token(token: str) -> tuple[int, int, float, bool]:
    try:
        ts, step, value, is_nan = json.loads(base64.urlsafe_b64decode(token.encode()))
    except Exception:
        raise InvalidInput(
            f"Invalid page token {token!r}.", hint="Pass back next_page_token as given."
        ) from None
    ints_ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (ts, step))
    if (
        not ints_ok
        or not isinstance(value, int | float)
        or isinstance(value, bool)
        or not isinstance(is_nan, bool)
    ):
        raise InvalidInput(f"Invalid page token {token!r}.", hint="Pass back next_page_token as given.")
    return ts, step, float(value), is_nan
