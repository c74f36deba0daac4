"""MLflow 3's logged models in the SQL registry store: create, finalize, tags, params, metrics, search,
and the runs they come out of. ``SqlRegistryStore`` builds on this class."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, and_, delete, insert, or_, select, true, update

from loopline import uris
from loopline.clock import now_ms
from loopline.errors import InvalidInput, NotFound
from loopline.metadata import schema as t
from loopline.metadata.base import SqlStore, decode_token, encode_token
from loopline.metadata.filter import Attributes
from loopline.metadata.pages import Page
from loopline.registry.sql_filters import apply_filter
from loopline.registry.types import LoggedModel, LoggedModelStatus, ModelMetric
from loopline.tracking.types import Metric
from loopline.tracking.validation import validate_key


class SqlLoggedModels(SqlStore):
    """The logged-models half of ``SqlRegistryStore``."""

    # ---- logged models (MLflow 3) ----------------------------------------------------------

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        model_type: str = "",
        source_run_id: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        model_id = f"m-{uuid.uuid4().hex}"
        ms = now_ms()
        with self._write() as conn:
            found = conn.execute(
                select(t.experiments.c.experiment_id, t.experiments.c.artifact_location).where(
                    t.experiments.c.experiment_id == int(experiment_id),
                    t.experiments.c.workspace == self.workspace,
                )
            ).first()
            if found is None:
                raise NotFound(f"No experiment with ID {experiment_id!r}.")
            exp, exp_location = found
            conn.execute(
                insert(t.logged_models).values(
                    model_id=model_id,
                    workspace=self.workspace,
                    experiment_id=exp,
                    name=name or model_id,
                    # Under the experiment's location, as MLflow does (and as runs' artifacts are).
                    artifact_location=f"{exp_location.rstrip('/')}/models/{model_id}/artifacts",
                    creation_timestamp=ms,
                    last_updated_timestamp=ms,
                    status=LoggedModelStatus.PENDING.value,
                    status_message="",
                    model_type=model_type or "",
                    source_run_id=source_run_id or "",
                    lifecycle_stage="active",
                )
            )
            for table, items in ((t.logged_model_params, params), (t.logged_model_tags, tags)):
                if items:
                    conn.execute(
                        insert(table),
                        [{"model_id": model_id, "key": k, "value": v} for k, v in items.items()],
                    )
            self._event(conn, "logged_model.create", f"models:/{model_id}", experiment_id=str(exp))
            if source_run_id:
                self._edge(conn, uris.run_uri(source_run_id), f"models:/{model_id}", "logged")
            return self._logged_model(conn, model_id)

    def _logged_model(self, conn: Connection, model_id: str) -> LoggedModel:
        row = conn.execute(
            select(t.logged_models).where(
                t.logged_models.c.model_id == model_id, t.logged_models.c.workspace == self.workspace
            )
        ).first()
        if row is None or row.lifecycle_stage != "active":
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
        kv = {}
        for table in (t.logged_model_tags, t.logged_model_params):
            kv[table.name] = {
                k: v
                for k, v in conn.execute(
                    select(table.c.key, table.c.value).where(table.c.model_id == model_id)
                )
            }
        lm = t.logged_model_metrics.c
        metrics = tuple(
            ModelMetric(r.key, r.value, r.timestamp, r.step, r.run_id, r.dataset_name, r.dataset_digest)
            for r in conn.execute(
                select(t.logged_model_metrics).where(lm.model_id == model_id).order_by(lm.key, lm.step)
            )
        )
        return LoggedModel(
            model_id=row.model_id,
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            creation_timestamp=row.creation_timestamp,
            last_updated_timestamp=row.last_updated_timestamp,
            status=LoggedModelStatus(row.status),
            status_message=row.status_message,
            model_type=row.model_type,
            source_run_id=row.source_run_id,
            tags=kv["logged_model_tags"],
            params=kv["logged_model_params"],
            metrics=metrics,
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        with self.engine.connect() as conn:
            return self._logged_model(conn, model_id)

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        with self._write() as conn:
            self._logged_model(conn, model_id)
            conn.execute(
                update(t.logged_models)
                .where(t.logged_models.c.model_id == model_id)
                .values(status=LoggedModelStatus(status).value, last_updated_timestamp=now_ms())
            )
            self._event(conn, "logged_model.finalize", f"models:/{model_id}", status=str(status))
            return self._logged_model(conn, model_id)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        with self._write() as conn:
            self._logged_model(conn, model_id)
            for k, v in tags.items():
                validate_key("tag", k)
                ins = self._insert(conn, t.logged_model_tags).values(model_id=model_id, key=k, value=v)
                conn.execute(ins.on_conflict_do_update(index_elements=["model_id", "key"], set_={"value": v}))
            self._event(conn, "logged_model.set_tags", f"models:/{model_id}", keys=sorted(tags))

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self._write() as conn:
            self._logged_model(conn, model_id)
            lt = t.logged_model_tags.c
            if not conn.execute(
                delete(t.logged_model_tags).where(lt.model_id == model_id, lt.key == key)
            ).rowcount:
                raise NotFound(f"No tag with key {key!r} found for model with ID {model_id!r}.")
            self._event(conn, "logged_model.delete_tag", f"models:/{model_id}", key=key)

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        with self._write() as conn:
            self._logged_model(conn, model_id)
            for k, v in params.items():
                ins = self._insert(conn, t.logged_model_params).values(model_id=model_id, key=k, value=v)
                conn.execute(ins.on_conflict_do_nothing())
            self._event(conn, "logged_model.log_params", f"models:/{model_id}", keys=sorted(params))

    def log_logged_model_metrics(
        self, model_id: str, metrics: Sequence[Metric], run_id: str = "", dataset: tuple[str, str] = ("", "")
    ) -> None:
        """Points of a logged model's metrics, logged by ``run_id`` on ``dataset`` (name, digest)."""
        name, digest = dataset
        if len(name) > 500 or len(digest) > 64:  # the columns' sizes
            raise InvalidInput(
                f"Invalid dataset {name[:40]!r}/{digest[:40]!r}: names are at most 500 characters, "
                "digests at most 64."
            )
        with self._write() as conn:
            self._logged_model(conn, model_id)
            for m in metrics:
                point = {"value": m.value, "timestamp": m.timestamp, "run_id": run_id, "dataset_name": name}
                point["dataset_digest"] = digest
                ins = self._insert(conn, t.logged_model_metrics).values(
                    model_id=model_id, key=m.key, step=m.step, **point
                )
                conn.execute(
                    ins.on_conflict_do_update(index_elements=["model_id", "key", "step"], set_=point)
                )

    def delete_logged_model(self, model_id: str) -> None:
        with self._write() as conn:
            self._logged_model(conn, model_id)
            conn.execute(
                update(t.logged_models)
                .where(t.logged_models.c.model_id == model_id)
                .values(lifecycle_stage="deleted", last_updated_timestamp=now_ms())
            )
            self._event(conn, "logged_model.delete", f"models:/{model_id}")

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        datasets: Sequence[tuple[str, str]] = (),
    ) -> Page[LoggedModel]:
        """Logged models, newest first; ``datasets`` ((name, digest or "")) keeps those with a metric
        measured on one of them, as MLflow's ``datasets`` argument does."""
        lm = t.logged_models.c
        columns = {
            "name": lm.name,
            "model_type": lm.model_type,
            "source_run_id": lm.source_run_id,
            "status": lm.status,
            "creation_timestamp": lm.creation_timestamp,
            "last_updated_timestamp": lm.last_updated_timestamp,
        }
        attrs = Attributes(
            frozenset({"name", "model_type", "source_run_id", "status"}),
            frozenset({"creation_timestamp", "last_updated_timestamp"}),
        )
        q = select(lm.model_id).where(lm.workspace == self.workspace, lm.lifecycle_stage == "active")
        if experiment_ids:
            q = q.where(lm.experiment_id.in_([int(e) for e in experiment_ids]))
        tags = t.logged_model_tags
        q = apply_filter(q, filter_string, attrs, columns, tags, tags.c.model_id == lm.model_id)
        if datasets:
            mm = t.logged_model_metrics.c
            on_any = or_(
                *(and_(mm.dataset_name == n, mm.dataset_digest == d if d else true()) for n, d in datasets)
            )
            q = q.where(select(mm.model_id).where(mm.model_id == lm.model_id, on_any).exists())
        q = q.order_by(lm.creation_timestamp.desc(), lm.model_id)
        offset = decode_token(page_token)
        with self.engine.connect() as conn:
            ids = conn.execute(q.limit(max_results + 1).offset(offset)).scalars().all()
            items = [self._logged_model(conn, i) for i in ids[:max_results]]
        return Page(items, encode_token(offset + max_results) if len(ids) > max_results else None)

    def log_outputs(self, run_id: str, model_ids: Sequence[str], steps: Sequence[int] = ()) -> None:
        """Record that run ``run_id`` produced these logged models (at ``steps``, default 0)."""
        with self._write() as conn:
            run = t.runs.c
            if not conn.execute(
                select(run.run_uuid).where(run.run_uuid == run_id, run.workspace == self.workspace)
            ).first():
                raise NotFound(f"Run with id={run_id} not found.")
            for i, model_id in enumerate(model_ids):
                self._logged_model(conn, model_id)
                step = steps[i] if i < len(steps) else 0
                ins = self._insert(conn, t.run_logged_models).values(
                    run_uuid=run_id, model_id=model_id, direction="output", step=step
                )
                keys = ["run_uuid", "model_id", "direction"]
                conn.execute(ins.on_conflict_do_update(index_elements=keys, set_={"step": step}))
                self._edge(conn, uris.run_uri(run_id), f"models:/{model_id}", "logged")
            self._event(conn, "run.log_outputs", uris.run_uri(run_id), models=list(model_ids))
