"""The model registry on SQLAlchemy: registered models, versions, aliases, and logged models.

Version numbers are handed out inside the write transaction that inserts the version, under a
lock on the registered model (``BEGIN IMMEDIATE`` on SQLite, ``SELECT … FOR UPDATE`` on
PostgreSQL), so concurrent registrations get distinct, gapless numbers. Moving an alias is one
statement: readers see the old version or the new one, never neither.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from loopline import uris
from loopline.clock import now_ms
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata import schema as t
from loopline.metadata.base import decode_token, encode_token
from loopline.metadata.filter import Attributes
from loopline.metadata.pages import Page
from loopline.registry.sql_filters import apply_filter, order_clauses
from loopline.registry.sql_logged_models import SqlLoggedModels
from loopline.registry.types import (
    STAGES,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from loopline.registry.version_rows import model_version
from loopline.tracking.validation import validate_key

MODEL_ATTRIBUTES = Attributes(
    frozenset({"name"}), frozenset({"creation_timestamp", "last_updated_timestamp"})
)
VERSION_ATTRIBUTES = Attributes(
    frozenset({"name", "run_id", "source_path", "source", "model_id", "current_stage", "status"}),
    frozenset({"version_number", "creation_timestamp", "last_updated_timestamp"}),
)


def _validate_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("A registered model needs a non-empty name.")
    if len(name) > 256 or "/" in name or "@" in name or ":" in name:
        raise InvalidInput(
            f"Invalid model name {name!r}.", hint="Use at most 256 characters and no '/', '@' or ':'."
        )
    return name


def _validate_alias(alias: object) -> str:
    if not isinstance(alias, str) or not alias or len(alias) > 255:
        raise InvalidInput(f"Invalid alias {alias!r}.", hint="Use a short name such as 'champion'.")
    if alias.lower() == "latest" or (alias[0] in "vV" and alias[1:].isdigit()):
        raise InvalidInput(
            f"'{alias}' cannot be an alias: it reads as a version.", hint="Pick a name like 'champion'."
        )
    if not all(c.isalnum() or c in "_-" for c in alias):
        raise InvalidInput(f"Invalid alias {alias!r}.", hint="Use letters, digits, '_' and '-'.")
    return alias


def _version_number(version: object) -> int:
    try:
        n = int(str(version))
    except ValueError:
        raise InvalidInput(f"Invalid model version {version!r}: versions are positive integers.") from None
    if n < 1 or n > 2**31 - 1:
        raise InvalidInput(f"Invalid model version {version!r}: versions are between 1 and 2147483647.")
    return n


class SqlRegistryStore(SqlLoggedModels):
    """Registered models and their versions, and MLflow 3's logged models."""

    # ---- lookups ---------------------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        q = select(t.registered_models).where(
            t.registered_models.c.workspace == self.workspace, t.registered_models.c.name == name
        )
        if lock and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            existing = conn.execute(
                select(t.registered_models.c.name)
                .where(t.registered_models.c.workspace == self.workspace)
                .order_by(t.registered_models.c.name)
                .limit(20)
            ).scalars()
            names = ", ".join(existing) or "none yet"
            raise NotFound(
                f"Registered Model with name={name} not found.", hint=f"Registered models: {names}."
            )
        return row

    def _version_row(self, conn: Connection, model: Any, version: object) -> Any:
        n = _version_number(version)
        row = conn.execute(
            select(t.model_versions).where(
                t.model_versions.c.model == model.id, t.model_versions.c.version == n
            )
        ).first()
        if row is None:
            have = conn.execute(
                select(t.model_versions.c.version)
                .where(t.model_versions.c.model == model.id)
                .order_by(t.model_versions.c.version)
            ).scalars()
            versions = ", ".join(str(v) for v in have) or "none"
            raise NotFound(
                f"Model Version (name={model.name}, version={n}) not found.",
                hint=f"Versions of {model.name}: {versions}.",
            )
        return row

    def _versions(self, conn: Connection, model: Any, rows: Sequence[Any]) -> list[ModelVersion]:
        if not rows:
            return []
        numbers = [r.version for r in rows]
        tags: dict[int, dict[str, str]] = {n: {} for n in numbers}
        for v, k, val in conn.execute(
            select(
                t.model_version_tags.c.version, t.model_version_tags.c.key, t.model_version_tags.c.value
            ).where(t.model_version_tags.c.model == model.id, t.model_version_tags.c.version.in_(numbers))
        ):
            tags[v][k] = val
        aliases: dict[int, list[str]] = {n: [] for n in numbers}
        for alias, v in conn.execute(
            select(t.model_aliases.c.alias, t.model_aliases.c.version)
            .where(t.model_aliases.c.model == model.id, t.model_aliases.c.version.in_(numbers))
            .order_by(t.model_aliases.c.alias)
        ):
            aliases[v].append(alias)
        return [model_version(model.name, r._mapping, tags[r.version], aliases[r.version]) for r in rows]

    def _registered_model(self, conn: Connection, row: Any) -> RegisteredModel:
        tags = {
            k: v
            for k, v in conn.execute(
                select(t.registered_model_tags.c.key, t.registered_model_tags.c.value).where(
                    t.registered_model_tags.c.model == row.id
                )
            )
        }
        aliases = {
            a: v
            for a, v in conn.execute(
                select(t.model_aliases.c.alias, t.model_aliases.c.version)
                .where(t.model_aliases.c.model == row.id)
                .order_by(t.model_aliases.c.alias)
            )
        }
        mv = t.model_versions.c
        latest_per_stage = (
            select(mv.current_stage, func.max(mv.version).label("version"))
            .where(mv.model == row.id)
            .group_by(mv.current_stage)
            .subquery()
        )
        latest_rows = conn.execute(
            select(t.model_versions)
            .join(
                latest_per_stage,
                (latest_per_stage.c.version == mv.version)
                & (latest_per_stage.c.current_stage == mv.current_stage),
            )
            .where(mv.model == row.id)
            .order_by(mv.version)
        ).all()
        return RegisteredModel(
            name=row.name,
            creation_timestamp=row.creation_time,
            last_updated_timestamp=row.last_updated_time,
            description=row.description,
            tags=tags,
            aliases=aliases,
            latest_versions=tuple(self._versions(conn, row, latest_rows)),
        )

    def _touch(self, conn: Connection, model: Any) -> None:
        conn.execute(
            update(t.registered_models)
            .where(t.registered_models.c.id == model.id)
            .values(last_updated_time=now_ms())
        )

    # ---- registered models -----------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str = ""
    ) -> RegisteredModel:
        _validate_name(name)
        for k in tags or {}:
            validate_key("tag", k)
        ms = now_ms()
        try:
            with self._write() as conn:
                model_id = conn.execute(
                    insert(t.registered_models)
                    .values(
                        workspace=self.workspace,
                        name=name,
                        description=description or "",
                        creation_time=ms,
                        last_updated_time=ms,
                    )
                    .returning(t.registered_models.c.id)
                ).scalar_one()
                if tags:
                    conn.execute(
                        insert(t.registered_model_tags),
                        [{"model": model_id, "key": k, "value": v} for k, v in tags.items()],
                    )
                self._event(conn, "model.create", f"models:/{name}")
                return self._registered_model(conn, self._model_row(conn, name))
        except IntegrityError:
            raise AlreadyExists(
                f"Registered Model (name={name}) already exists.",
                hint="Register a new version of it instead.",
            ) from None

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.engine.connect() as conn:
            return self._registered_model(conn, self._model_row(conn, name))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        _validate_name(new_name)
        try:
            with self._write() as conn:
                row = self._model_row(conn, name)
                conn.execute(
                    update(t.registered_models)
                    .where(t.registered_models.c.id == row.id)
                    .values(name=new_name, last_updated_time=now_ms())
                )
                self._event(conn, "model.rename", f"models:/{new_name}", old_name=name)
                return self._registered_model(conn, self._model_row(conn, new_name))
        except IntegrityError:
            raise AlreadyExists(f"Registered Model (name={new_name}) already exists.") from None

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        with self._write() as conn:
            row = self._model_row(conn, name)
            conn.execute(
                update(t.registered_models)
                .where(t.registered_models.c.id == row.id)
                .values(description=description, last_updated_time=now_ms())
            )
            self._event(conn, "model.update", f"models:/{name}")
            return self._registered_model(conn, self._model_row(conn, name))

    def delete_registered_model(self, name: str) -> None:
        with self._write() as conn:
            row = self._model_row(conn, name)
            for table in (t.model_aliases, t.model_version_tags, t.model_versions, t.registered_model_tags):
                conn.execute(delete(table).where(table.c.model == row.id))
            conn.execute(delete(t.registered_models).where(t.registered_models.c.id == row.id))
            self._event(conn, "model.delete", f"models:/{name}")

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        validate_key("tag", key)
        with self._write() as conn:
            row = self._model_row(conn, name)
            ins = self._insert(conn, t.registered_model_tags).values(model=row.id, key=key, value=value)
            conn.execute(ins.on_conflict_do_update(index_elements=["model", "key"], set_={"value": value}))
            self._touch(conn, row)
            self._event(conn, "model.set_tag", f"models:/{name}", key=key)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with self._write() as conn:
            row = self._model_row(conn, name)
            conn.execute(
                delete(t.registered_model_tags).where(
                    t.registered_model_tags.c.model == row.id, t.registered_model_tags.c.key == key
                )
            )
            self._event(conn, "model.delete_tag", f"models:/{name}", key=key)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        rm = t.registered_models.c
        columns = {
            "name": rm.name,
            "creation_timestamp": rm.creation_time,
            "last_updated_timestamp": rm.last_updated_time,
        }
        q = select(t.registered_models).where(rm.workspace == self.workspace)
        tags = t.registered_model_tags
        q = apply_filter(q, filter_string, MODEL_ATTRIBUTES, columns, tags, tags.c.model == rm.id)
        q = q.order_by(*order_clauses(order_by, MODEL_ATTRIBUTES, columns), rm.name)
        offset = decode_token(page_token)
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(max_results + 1).offset(offset)).all()
            items = [self._registered_model(conn, r) for r in rows[:max_results]]
        return Page(items, encode_token(offset + max_results) if len(rows) > max_results else None)

    # ---- aliases ---------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: object) -> None:
        """Point ``alias`` at ``version`` in one atomic step (moving it if it pointed elsewhere)."""
        _validate_alias(alias)
        with self._write() as conn:
            row = self._model_row(conn, name)
            n = self._version_row(conn, row, version).version
            old = conn.execute(
                select(t.model_aliases.c.version).where(
                    t.model_aliases.c.model == row.id, t.model_aliases.c.alias == alias
                )
            ).scalar()
            ins = self._insert(conn, t.model_aliases).values(model=row.id, alias=alias, version=n)
            conn.execute(ins.on_conflict_do_update(index_elements=["model", "alias"], set_={"version": n}))
            self._touch(conn, row)
            self._event(conn, "model.set_alias", f"models:/{name}@{alias}", version=n, previous=old)
            self._edge(conn, f"models:/{name}/{n}", f"models:/{name}@{alias}", "aliased_as")

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        with self._write() as conn:
            row = self._model_row(conn, name)
            gone = conn.execute(
                delete(t.model_aliases).where(
                    t.model_aliases.c.model == row.id, t.model_aliases.c.alias == alias
                )
            ).rowcount
            if not gone:
                raise NotFound(f"Registered model alias {alias} not found on {name}.")
            self._event(conn, "model.delete_alias", f"models:/{name}@{alias}")

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.engine.connect() as conn:
            row = self._model_row(conn, name)
            n = conn.execute(
                select(t.model_aliases.c.version).where(
                    t.model_aliases.c.model == row.id, t.model_aliases.c.alias == alias
                )
            ).scalar()
            if n is None:
                have = conn.execute(
                    select(t.model_aliases.c.alias)
                    .where(t.model_aliases.c.model == row.id)
                    .order_by(t.model_aliases.c.alias)
                ).scalars()
                raise NotFound(
                    f"Registered model alias {alias} not found.",
                    hint=f"Aliases of {name}: {', '.join(have) or 'none'}.",
                )
            return self._versions(conn, row, [self._version_row(conn, row, n)])[0]

    # ---- versions --------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str = "",
        tags: Mapping[str, str] | None = None,
        run_link: str = "",
        description: str = "",
        model_id: str = "",
        digests: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register ``source`` as the next version of ``name`` (which must exist)."""
        if not isinstance(source, str) or not source:
            raise InvalidInput("A model version needs a source (where its files are).")
        if len(run_id or "") > 32:  # a run of another server is taken as given, but must fit the column
            raise InvalidInput(f"Invalid run_id {run_id[:40]!r}…: run IDs are at most 32 characters.")
        for k in tags or {}:
            validate_key("tag", k)
        ms = now_ms()
        with self._write() as conn:
            row = self._model_row(conn, name, lock=True)
            mv = t.model_versions.c
            n = (
                int(
                    conn.execute(
                        select(func.coalesce(func.max(mv.version), 0)).where(mv.model == row.id)
                    ).scalar_one()
                )
                + 1
            )
            conn.execute(
                insert(t.model_versions).values(
                    model=row.id,
                    version=n,
                    creation_time=ms,
                    last_updated_time=ms,
                    description=description or "",
                    user_id=self.actor,
                    current_stage="None",
                    source=source,
                    run_id=run_id or "",
                    model_id=model_id or "",
                    run_link=run_link or "",
                    status=ModelVersionStatus.READY.value,
                    status_message="",
                    digests=json.dumps(dict(digests or {}), sort_keys=True),
                )
            )
            if tags:
                conn.execute(
                    insert(t.model_version_tags),
                    [{"model": row.id, "version": n, "key": k, "value": v} for k, v in tags.items()],
                )
            self._touch(conn, row)
            uri = f"models:/{name}/{n}"
            self._event(conn, "model_version.create", uri, source=source, run_id=run_id, model_id=model_id)
            if run_id:
                # A run this store does not hold (another tracking server sharing this registry,
                # as MLflow allows) is recorded as given and marked external: lineage stays honest.
                known = conn.execute(
                    select(t.runs.c.run_uuid).where(
                        t.runs.c.run_uuid == run_id, t.runs.c.workspace == self.workspace
                    )
                ).first()
                self._edge(conn, uris.run_uri(run_id), uri, "produced", external=known is None)
                if known and (code := _code_version(conn, run_id)):
                    self._edge(conn, code, uri, "code_of")
            if model_id:
                self._edge(conn, f"models:/{model_id}", uri, "registered_as")
            return self._versions(conn, row, [self._version_row(conn, row, n)])[0]

    def get_model_version(self, name: str, version: object) -> ModelVersion:
        with self.engine.connect() as conn:
            row = self._model_row(conn, name)
            return self._versions(conn, row, [self._version_row(conn, row, version)])[0]

    def update_model_version(self, name: str, version: object, description: str) -> ModelVersion:
        with self._write() as conn:
            row = self._model_row(conn, name)
            v = self._version_row(conn, row, version)
            conn.execute(
                update(t.model_versions)
                .where(t.model_versions.c.model == row.id, t.model_versions.c.version == v.version)
                .values(description=description, last_updated_time=now_ms())
            )
            self._event(conn, "model_version.update", f"models:/{name}/{v.version}")
            return self._versions(conn, row, [self._version_row(conn, row, v.version)])[0]

    def transition_model_version_stage(
        self, name: str, version: object, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """MLflow's legacy stages, for old clients; aliases are the better tool."""
        canonical = {s.lower(): s for s in STAGES}.get(str(stage).lower())
        if canonical is None:
            raise InvalidInput(
                f"Invalid model version stage {stage!r}.", hint=f"Use one of {', '.join(STAGES)}."
            )
        with self._write() as conn:
            row = self._model_row(conn, name)
            v = self._version_row(conn, row, version)
            mv = t.model_versions.c
            ms = now_ms()
            if archive_existing_versions and canonical in ("Staging", "Production"):
                conn.execute(
                    update(t.model_versions)
                    .where(mv.model == row.id, mv.current_stage == canonical, mv.version != v.version)
                    .values(current_stage="Archived", last_updated_time=ms)
                )
            conn.execute(
                update(t.model_versions)
                .where(mv.model == row.id, mv.version == v.version)
                .values(current_stage=canonical, last_updated_time=ms)
            )
            self._event(conn, "model_version.transition", f"models:/{name}/{v.version}", stage=canonical)
            return self._versions(conn, row, [self._version_row(conn, row, v.version)])[0]

    def delete_model_version(self, name: str, version: object) -> None:
        with self._write() as conn:
            row = self._model_row(conn, name)
            v = self._version_row(conn, row, version)
            for table in (t.model_aliases, t.model_version_tags, t.model_versions):
                conn.execute(delete(table).where(table.c.model == row.id, table.c.version == v.version))
            self._event(conn, "model_version.delete", f"models:/{name}/{v.version}")

    def set_model_version_tag(self, name: str, version: object, key: str, value: str) -> None:
        validate_key("tag", key)
        with self._write() as conn:
            row = self._model_row(conn, name)
            v = self._version_row(conn, row, version)
            ins = self._insert(conn, t.model_version_tags).values(
                model=row.id, version=v.version, key=key, value=value
            )
            conn.execute(
                ins.on_conflict_do_update(index_elements=["model", "version", "key"], set_={"value": value})
            )
            self._event(conn, "model_version.set_tag", f"models:/{name}/{v.version}", key=key)

    def delete_model_version_tag(self, name: str, version: object, key: str) -> None:
        with self._write() as conn:
            row = self._model_row(conn, name)
            v = self._version_row(conn, row, version)
            mvt = t.model_version_tags.c
            conn.execute(
                delete(t.model_version_tags).where(
                    mvt.model == row.id, mvt.version == v.version, mvt.key == key
                )
            )
            self._event(conn, "model_version.delete_tag", f"models:/{name}/{v.version}", key=key)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        model = self.get_registered_model(name)
        wanted = {s.lower() for s in stages or []}
        return [v for v in model.latest_versions if not wanted or v.current_stage.lower() in wanted]

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        mv, rm = t.model_versions.c, t.registered_models.c
        columns = {
            "name": rm.name,
            "run_id": mv.run_id,
            "source_path": mv.source,
            "source": mv.source,
            "model_id": mv.model_id,
            "current_stage": mv.current_stage,
            "status": mv.status,
            "version_number": mv.version,
            "creation_timestamp": mv.creation_time,
            "last_updated_timestamp": mv.last_updated_time,
        }
        q = (
            select(t.model_versions, rm.name.label("model_name"))
            .join(t.registered_models, rm.id == mv.model)
            .where(rm.workspace == self.workspace)
        )
        tags = t.model_version_tags
        owner = (tags.c.model == mv.model) & (tags.c.version == mv.version)
        q = apply_filter(q, filter_string, VERSION_ATTRIBUTES, columns, tags, owner)
        # MLflow's default: most recently updated first, then by name and newest version.
        order = order_clauses(order_by or ["last_updated_timestamp DESC"], VERSION_ATTRIBUTES, columns)
        q = q.order_by(*order, rm.name, mv.version.desc())
        offset = decode_token(page_token)
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(max_results + 1).offset(offset)).all()
            items = []
            for r in rows[:max_results]:
                model = self._model_row(conn, r.model_name)
                items += self._versions(conn, model, [r])
        return Page(items, encode_token(offset + max_results) if len(rows) > max_results else None)


GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_DIRTY_TAG = "loopline.source.git.dirty"


def _code_version(conn: Connection, run_id: str) -> str | None:
    """``code:/<commit>`` for the git commit the run's tags name (``code:/<commit>+dirty`` when the
    checkout had uncommitted changes, so not exactly that commit), or None without one."""
    tg = t.tags.c
    found = dict(
        conn.execute(
            select(tg.key, tg.value).where(tg.run_uuid == run_id, tg.key.in_((GIT_COMMIT_TAG, GIT_DIRTY_TAG)))
        ).all()
    )
    commit = found.get(GIT_COMMIT_TAG, "").strip()
    if not commit:
        return None
    return f"code:/{commit}+dirty" if found.get(GIT_DIRTY_TAG, "").lower() == "true" else f"code:/{commit}"
