"""The feature registry on SQLAlchemy: definitions, materialisation progress, lineage of training sets.

The store knows specs as JSON documents, not the definition classes (those live above, in
``loopline.features``): ``apply`` takes the plan's changes and the lineage edges they imply, and
writes them with one event per object in one transaction, so the registry, the audit trail and
the lineage graph never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update

from loopline.clock import now_ms
from loopline.errors import NotFound
from loopline.features.types import (
    VIEW_URI_KINDS,
    DefinitionChange,
    LineageEdge,
    Materialization,
    StoredDefinition,
    object_uri,
)
from loopline.metadata import lineage, schema_features as t
from loopline.metadata.base import SqlStore


def _definition(r: Any) -> StoredDefinition:
    return StoredDefinition(
        r.kind, r.name, json.loads(r.spec), r.digest, r.creation_time, r.last_updated_time
    )


def _materialization(r: Any) -> Materialization:
    return Materialization(
        r.id,
        r.view,
        r.start_ms,
        r.end_ms,
        r.status,
        r.rows,
        json.loads(r.cursor) if r.cursor else None,
        r.error,
        r.start_time,
        r.last_updated_time,
        r.end_time,
    )


class SqlFeatureRegistry(SqlStore):
    """Registered feature definitions and materialisation jobs of one workspace."""

    # ---- definitions -------------------------------------------------------------------------

    def list_definitions(self, kind: str | None = None) -> list[StoredDefinition]:
        c = t.feature_objects.c
        q = select(t.feature_objects).where(c.workspace == self.workspace)
        if kind is not None:
            q = q.where(c.kind == kind)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.kind, c.name)).all()
        return [_definition(r) for r in rows]

    def get_definition(self, name: str, kinds: Sequence[str] = VIEW_URI_KINDS) -> StoredDefinition:
        c = t.feature_objects.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.feature_objects).where(
                    c.workspace == self.workspace, c.name == name, c.kind.in_(kinds)
                )
            ).first()
            if row is None:
                names = conn.execute(
                    select(c.name)
                    .where(c.workspace == self.workspace, c.kind.in_(kinds))
                    .order_by(c.name)
                    .limit(30)
                ).scalars()
                listed = ", ".join(names) or "none yet"
                raise NotFound(
                    f"No {' or '.join(k.replace('_', ' ') for k in kinds)} named {name!r}.",
                    hint=f"Registered: {listed}. Register more with `loopline features apply defs.py`.",
                )
        return _definition(row)

    def apply(self, changes: Sequence[DefinitionChange], edges: Sequence[tuple[str, str, str]] = ()) -> None:
        """Write a plan's changes and the lineage edges of the new definitions, atomically.

        Idempotent by (kind, name) and digest, so a retried request changes nothing twice: an object
        already holding the digest is left alone, a missing one is added whatever the plan said, a
        removal of an absent object does nothing. Each real change is one event.
        """
        c = t.feature_objects.c
        ms = now_ms()
        with self._write() as conn:
            for ch in changes:
                where = (c.workspace == self.workspace, c.kind == ch.kind, c.name == ch.name)
                uri = object_uri(ch.kind, ch.name)
                held = conn.execute(select(c.digest).where(*where)).first()
                if ch.op == "remove":
                    if held is not None:
                        conn.execute(delete(t.feature_objects).where(*where))
                        self._event(conn, f"{ch.kind}.delete", uri)
                    continue
                if held is not None and held.digest == ch.digest:
                    continue
                spec = json.dumps(ch.spec, sort_keys=True, default=str)
                if held is None:
                    conn.execute(
                        insert(t.feature_objects).values(
                            workspace=self.workspace,
                            kind=ch.kind,
                            name=ch.name,
                            spec=spec,
                            digest=ch.digest,
                            creation_time=ms,
                            last_updated_time=ms,
                        )
                    )
                    self._event(conn, f"{ch.kind}.create", uri, digest=ch.digest)
                else:
                    conn.execute(
                        update(t.feature_objects)
                        .where(*where)
                        .values(spec=spec, digest=ch.digest, last_updated_time=ms)
                    )
                    self._event(conn, f"{ch.kind}.update", uri, digest=ch.digest)
            for from_uri, to_uri, relation in edges:
                self._edge(conn, from_uri, to_uri, relation)

    def lineage(self, uri: str) -> list[LineageEdge]:
        """The edges upstream of ``uri`` (what it is made from), then downstream (what uses it)."""
        edges = lineage.upstream(self.engine, self.workspace, uri)
        edges += lineage.downstream(self.engine, self.workspace, uri)
        return [LineageEdge(e.from_uri, e.to_uri, e.relation) for e in edges]

    def record_lineage(
        self, action: str, uri: str, edges: Sequence[tuple[str, str, str]], **payload: object
    ) -> None:
        """Edges around an object made elsewhere (a training set), with its event."""
        with self._write() as conn:
            for from_uri, to_uri, relation in edges:
                self._edge(conn, from_uri, to_uri, relation)
            self._event(conn, action, uri, **payload)

    # ---- materialisation jobs ---------------------------------------------------------------

    def begin_materialization(self, view: str, start_ms: int, end_ms: int) -> Materialization:
        """A new job for the window, or the unfinished one of the same window (to resume it)."""
        c = t.feature_materializations.c
        ms = now_ms()
        with self._write() as conn:
            row = conn.execute(
                select(t.feature_materializations)
                .where(
                    c.workspace == self.workspace,
                    c.view == view,
                    c.start_ms == start_ms,
                    c.end_ms == end_ms,
                    c.status.in_(("running", "failed")),
                )
                .order_by(c.id.desc())
                .limit(1)
            ).first()
            if row is not None:
                conn.execute(
                    update(t.feature_materializations)
                    .where(c.id == row.id)
                    .values(status="running", error="", last_updated_time=ms)
                )
                self._event(conn, "feature_view.materialize_resume", f"features:/{view}", job=row.id)
                job_id = row.id
            else:
                job_id = conn.execute(
                    insert(t.feature_materializations)
                    .values(
                        workspace=self.workspace,
                        view=view,
                        start_ms=start_ms,
                        end_ms=end_ms,
                        status="running",
                        rows=0,
                        cursor=None,
                        error="",
                        start_time=ms,
                        last_updated_time=ms,
                    )
                    .returning(c.id)
                ).scalar_one()
                self._event(
                    conn,
                    "feature_view.materialize_start",
                    f"features:/{view}",
                    start_ms=start_ms,
                    end_ms=end_ms,
                )
            return _materialization(
                conn.execute(select(t.feature_materializations).where(c.id == job_id)).one()
            )

    def materialization_progress(self, job_id: int, rows: int, cursor: Sequence[Any]) -> None:
        c = t.feature_materializations.c
        with self._write() as conn:
            conn.execute(
                update(t.feature_materializations)
                .where(c.id == job_id, c.workspace == self.workspace)
                .values(rows=rows, cursor=json.dumps(list(cursor), default=str), last_updated_time=now_ms())
            )

    def end_materialization(self, job_id: int, *, rows: int, error: str = "") -> None:
        c = t.feature_materializations.c
        ms = now_ms()
        with self._write() as conn:
            view = conn.execute(
                select(c.view).where(c.id == job_id, c.workspace == self.workspace)
            ).scalar_one()
            conn.execute(
                update(t.feature_materializations)
                .where(c.id == job_id)
                .values(
                    status="failed" if error else "done",
                    rows=rows,
                    error=error,
                    last_updated_time=ms,
                    end_time=None if error else ms,
                )
            )
            action = "feature_view.materialize_fail" if error else "feature_view.materialize_done"
            self._event(conn, action, f"features:/{view}", job=job_id, rows=rows, error=error)

    def last_materialized_end(self, view: str) -> int | None:
        c = t.feature_materializations.c
        with self.engine.connect() as conn:
            value: int | None = conn.execute(
                select(c.end_ms)
                .where(c.workspace == self.workspace, c.view == view, c.status == "done")
                .order_by(c.end_ms.desc())
                .limit(1)
            ).scalar()
        return value

    def list_materializations(self, view: str | None = None, limit: int = 50) -> list[Materialization]:
        c = t.feature_materializations.c
        q = select(t.feature_materializations).where(c.workspace == self.workspace)
        if view is not None:
            q = q.where(c.view == view)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(c.id.desc()).limit(limit)).all()
        return [_materialization(r) for r in rows]


__all__ = [
    "DefinitionChange",
    "Materialization",
    "SqlFeatureRegistry",
    "StoredDefinition",
    "object_uri",
]  # types re-exported
