"""The tracking store on SQLAlchemy: one class for SQLite and PostgreSQL.

Every public method is one transaction. Every mutating one appends an event (who, what, when,
object URI) in that same transaction, so the audit trail can never disagree with the data.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from loopline.clock import now_ms
from loopline.errors import Conflict, InvalidInput, NotFound
from loopline.metadata import schema as t
from loopline.metadata.base import chunks, decode_token, encode_token
from loopline.metadata.engine import driver_execute, driver_rows, insert_sql, param_mark
from loopline.metadata.pages import Page
from loopline.metadata.search import RunQuery
from loopline.tracking.names import RUN_NAME_TAG, name_new_run
from loopline.tracking.sql_experiments import SqlExperiments
from loopline.tracking.sql_rows import (
    FINISH_RUN,
    METRIC_COLUMNS,
    SELECT_RUN_BY_ID,
    SELECT_RUN_INPUTS,
    SELECT_RUN_LINKS,
    history_token,
    insert_new_run,
    latest_points,
    metric_rows,
    run_id_taken,
    run_info,
    same_creation,
    select_run,
    update_run_stmt,
    upsert_latest_stmt,
    upsert_tags_stmt,
    views,
)
from loopline.tracking.types import (
    Dataset,
    DatasetInput,
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
from loopline.tracking.validation import check_run_id, validate_batch, validate_key, validate_tag

USER_TAG = "mlflow.user"
PARENT_TAG = "mlflow.parentRunId"


class SqlTrackingStore(SqlExperiments):
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
        self.artifact_root = artifact_root.rstrip("/") if artifact_root else None
        self._ensure_workspace()

    def scoped(self, *, workspace: str | None = None, actor: str | None = None) -> SqlTrackingStore:
        clone = super().scoped(workspace=workspace, actor=actor)
        if clone.workspace != self.workspace:
            clone._ensure_workspace()
        return clone

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        row = select_run(conn, run_id, self.workspace)
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
                insert_new_run(conn, final_values, tag_map, param_map, metrics)
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
        return Run(info, RunData(param_map, tag_map, latest_points(metrics)))

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
            found = conn.execute(SELECT_RUN_BY_ID, {"run_id": run_id}).first()
            if found is None or not same_creation(found, values):
                raise run_id_taken(run_id)
            self._upsert_tags(conn, run_id, [RunTag(k, v) for k, v in tags.items()])
            if params:
                self._log_params(conn, run_id, [Param(k, v) for k, v in params.items()])
            if metrics:
                self._log_metrics(conn, run_id, metrics)
            if final.is_terminal:
                conn.execute(FINISH_RUN, {"run_id": run_id, "status": final.value, "end_time": end_time})

    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as conn:
            row = self._run_row(conn, run_id)
            run = self._load_runs(conn, [row])[0]
            links = conn.execute(SELECT_RUN_LINKS, {"run_id": run_id}).all()
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
                conn.execute(
                    update_run_stmt(tuple(values)),
                    {"run_id": run_id, **{f"new_{k}": v for k, v in values.items()}},
                )
            self._event(conn, "run.update", f"runs:/{run_id}", **{k: str(v) for k, v in values.items()})
            row = self._run_row(conn, run_id)
        return run_info(row)

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
            conn.execute(FINISH_RUN, {"run_id": run_id, "status": final, "end_time": end_time})
            self._event(conn, "run.finish", f"runs:/{run_id}", status=final, metrics=len(metrics))
            row = self._run_row(conn, run_id)
        return run_info(row)

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
            upsert_tags_stmt(conn.dialect.name),
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
        mark = param_mark(conn)
        marks = ", ".join([mark] * len(new))
        sql = f"SELECT key, value FROM params WHERE run_uuid = {mark} AND key IN ({marks})"
        existing: dict[str, str] = dict(driver_rows(conn, sql, (run_id, *new)))
        for key, old in existing.items():
            if old != new[key]:
                raise InvalidInput(
                    f"Changing param values is not allowed. Param with key='{key}' was already logged "
                    f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{new[key]}'.",
                    hint="Params are immutable; log a metric or a tag for values that change.",
                )
        fresh = [(run_id, k, v) for k, v in new.items() if k not in existing]
        if fresh:
            driver_execute(conn, insert_sql("params", ("run_uuid", "key", "value"), mark), fresh, many=True)

    def _log_metrics(self, conn: Connection, run_id: str, metrics: Sequence[Metric]) -> None:
        rows, latest = metric_rows(run_id, metrics)
        # The ingest hot path: plain DB-API executemany (SQLAlchemy's per-row parameter handling cost
        # 2.4x the time here). A point logged twice is stored once (the unique index).
        sql = insert_sql("metrics", METRIC_COLUMNS, param_mark(conn)) + " ON CONFLICT DO NOTHING"
        driver_execute(conn, sql, rows, many=True)
        conn.execute(
            upsert_latest_stmt(conn.dialect.name),
            [dict(zip(METRIC_COLUMNS, r, strict=True)) for r in latest],
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
        q = RunQuery(self.workspace, experiment_ids, views(run_view_type), filter_string, order_by)
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
        q = RunQuery(self.workspace, experiment_ids, views(run_view_type), filter_string, None)
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
        mark = param_mark(conn)
        for chunk in chunks(ids):
            # The driver's tuples (driver_rows): a page of 1,000 runs has ~25,000 child rows, and
            # SQLAlchemy's row objects cost 3x the query.
            marks = ", ".join([mark] * len(chunk))
            if "params" in include:
                for rid, k, v in driver_rows(
                    conn, f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({marks})", tuple(chunk)
                ):
                    params[rid][k] = v
            if "tags" in include:
                for rid, k, v in driver_rows(
                    conn, f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({marks})", tuple(chunk)
                ):
                    tags[rid][k] = v
            if "metrics" in include:
                nan_value = float("nan")
                for rid, k, v, ts, step, nan in driver_rows(
                    conn,
                    "SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics "
                    f"WHERE run_uuid IN ({marks})",
                    tuple(chunk),
                ):
                    metrics[rid].append(Metric(k, nan_value if nan else v, ts, step))
            if "inputs" in include:
                for r in conn.execute(SELECT_RUN_INPUTS, {"run_ids": list(chunk)}):
                    ds = Dataset(r.name, r.digest, r.source_type, r.source, r.schema, r.profile)
                    inputs[r.run_uuid].append(DatasetInput(ds, json.loads(r.tags)))
        return [
            Run(
                run_info(r),
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
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
        *,
        within: tuple[str, float | None, float | None] | None = None,
    ) -> tuple[list[tuple[int, int, float, bool]], str | None]:
        """History as plain ``(timestamp, step, value, is_nan)`` tuples, for callers that stream it;
        ``within=("step" | "timestamp", lo, hi)`` keeps the points in that range (a zoomed chart reads
        its 1% of a long history, not the whole of it)."""
        # The driver's tuples on this hot path: building 100,000 SQLAlchemy rows cost 4x the query.
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        sql = f"SELECT timestamp, step, value, is_nan FROM metrics WHERE run_uuid = {mark} AND key = {mark}"
        args: list[object] = [run_id, key]
        if within is not None:
            column, lo, hi = within
            if column not in ("step", "timestamp"):
                raise InvalidInput(f"Cannot select a metric's points by {column!r}: use step or timestamp.")
            for bound, op in ((lo, ">="), (hi, "<=")):
                if bound is not None:
                    sql += f" AND {column} {op} {mark}"
                    args.append(bound)
        if page_token:  # keyset paging on the unique index: exact, and as fast on page 100 as on 1
            sql += f" AND (timestamp, step, value, is_nan) > ({mark}, {mark}, {mark}, {mark})"
            args += history_token(page_token)
        sql += " ORDER BY timestamp, step, value, is_nan"
        if max_results is not None:
            sql += f" LIMIT {int(max_results) + 1}"
        with self.engine.connect() as conn:
            self._run_row(conn, run_id)
            rows = driver_rows(conn, sql, tuple(args))
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
        return [run_info(r) for r in rows]

    def purge_runs(self, run_ids: Sequence[str]) -> int:
        """Remove deleted runs and everything logged to them, for good. Active runs are refused."""
        purged = 0
        with self._write() as conn:
            for given in chunks(list(run_ids)):
                # Only this workspace's runs: another's (run ids are global) is left alone.
                chunk = (
                    conn.execute(
                        select(t.runs.c.run_uuid).where(
                            t.runs.c.run_uuid.in_(given), t.runs.c.workspace == self.workspace
                        )
                    )
                    .scalars()
                    .all()
                )
                if not chunk:
                    continue
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
                conn.execute(
                    select(
                        exists().where(
                            t.runs.c.experiment_id == int(experiment_id), t.runs.c.workspace == self.workspace
                        )
                    )
                ).scalar()
            )

    def count_metric_points(self, run_id: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(t.metrics).where(t.metrics.c.run_uuid == run_id)
                ).scalar_one()
            )


__all__ = ["SqlTrackingStore"]
