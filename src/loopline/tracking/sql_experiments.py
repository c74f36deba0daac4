"""Experiments in the SQL tracking store: the workspace's Default one, create, read, search, rename,
delete and restore (with their runs), tags. ``SqlTrackingStore`` builds on this class."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from loopline import uris
from loopline.clock import now_ms
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata import schema as t
from loopline.metadata.base import SqlStore, decode_token, encode_token
from loopline.metadata.pages import Page
from loopline.tracking.sql_rows import (
    SELECT_EXPERIMENT_BY_NAME,
    SELECT_EXPERIMENT_TAGS,
    select_experiment,
    views,
)
from loopline.tracking.types import Experiment, LifecycleStage, RunTag, ViewType
from loopline.tracking.validation import validate_tag, validate_text

DEFAULT_EXPERIMENT = "Default"


class SqlExperiments(SqlStore):
    """The experiments half of ``SqlTrackingStore``."""

    # None: experiments keep their artifacts in Loopline's store (mlflow-artifacts:/<id>). A URI:
    # new experiments get <root>/<id>, written by clients directly (`server --no-serve-artifacts`).
    artifact_root: str | None = None

    def _default_location(self, experiment_id: object) -> str:
        if self.artifact_root:
            return f"{self.artifact_root}/{experiment_id}"
        return uris.artifact_location(str(experiment_id))

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
        row = select_experiment(conn, exp_id, self.workspace)
        if row is None:
            raise NotFound(
                f"No experiment with ID {experiment_id!r}.",
                hint="List experiments with `loopline experiments list`.",
            )
        return row

    def _experiment(self, conn: Connection, row: Any) -> Experiment:
        tag_rows = conn.execute(SELECT_EXPERIMENT_TAGS, {"experiment_id": row.experiment_id})
        return Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=LifecycleStage(row.lifecycle_stage),
            tags={k: v for k, v in tag_rows},
            creation_time=row.creation_time,
            last_update_time=row.last_update_time,
        )

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
            row = conn.execute(SELECT_EXPERIMENT_BY_NAME, {"workspace": self.workspace, "name": name}).first()
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
        q = experiment_query(self.workspace, views(view_type), filter_string, order_by)
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
