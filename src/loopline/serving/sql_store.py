"""Deployments and their revisions on SQLAlchemy (SQLite or PostgreSQL).

A change is one transaction: the deployment's row is read locked (``FOR UPDATE`` on PostgreSQL;
SQLite serialises writers), compared with the caller's ``expected_revision`` (another one is a
``Conflict``), moved from revision n to n + 1 by an UPDATE that also checks ``revision = n``, the
revision is appended to the history (unique per deployment and number), an event is appended
(``deployment.create|update|rollback|delete``, the comment as its reason), and each model version
the spec routes to gets a lineage edge ``models:/name/N --deployed_in|shadowed_in-->
deployments:/name``, so a model's (and its training data's) downstream reaches the deployments
that served it.

Deployments kept by earlier versions as ``deployments/<name>.json`` in the artifact store are
imported once per workspace, on the first listing or the first lookup of a name the table does not
hold (``import_legacy``): no step to remember, nothing to do for a store that never had any, and a
``deployment.import_legacy`` event marks it done, so files written there later are ignored.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from loopline.clock import now_ms
from loopline.errors import Conflict, InvalidInput, LooplineError, NotFound
from loopline.metadata import schema as t, schema_deployments as s
from loopline.metadata.base import SqlStore, decode_token, encode_token
from loopline.metadata.lineage import append_event
from loopline.metadata.pages import Page
from loopline.names import check_name
from loopline.serving.resolve import resolve_model
from loopline.serving.types import (
    Deployment,
    DeploymentRevision,
    DeploymentSpec,
    check_comment,
)

if TYPE_CHECKING:
    from loopline.context import Context

log = logging.getLogger("loopline.serving")
MAX_RESULTS = 1000
IMPORTED = "deployment.import_legacy"  # the event that marks a workspace's JSON files as imported
_ALL = "deployments:/"  # its object URI: no one deployment's
_ATTEMPTS = 3  # two writers creating one name at once: the loser retries, as an update


class _Raced(Exception):
    """Another writer moved the revision between our read and our update."""


def _explicit(uri: str) -> bool:
    """``models:/name/3``: a version by number (no alias or ``latest`` to resolve)."""
    if not uri.startswith("models:/"):
        return False
    from loopline.uris import parse

    ref = parse(uri)
    return ref.alias is None and ref.version is not None and ref.version.isdigit()


def _page_size(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_RESULTS:
        raise InvalidInput(f"Invalid value {n!r} for 'max_results': it must be between 1 and {MAX_RESULTS}.")
    return n


def _stale(name: str, expected: int, current: int) -> Conflict:
    if expected == 0:
        return Conflict(
            f"Deployment {name!r} exists already (revision {current}).",
            hint=f"Pick another name, or pass expected revision {current} to change it.",
        )
    now = f"is at revision {current}" if current else "does not exist"
    return Conflict(
        f"Deployment {name!r} {now}, not {expected}: it changed since you read it.",
        hint=f"Read it again (loopline deploy show {name}) and retry with expected revision {current}.",
    )


class SqlDeploymentStore(SqlStore):
    """Deployments of one workspace, written as one actor; model URIs resolve through the context's
    registry, and the context's artifact store is where ``deployments/*.json`` may wait for import."""

    def __init__(self, context: Context) -> None:
        super().__init__(context.engine, workspace=context.workspace, actor=context.actor)
        self.context = context

    def scoped(self, *, workspace: str | None = None, actor: str | None = None) -> Self:
        clone = super().scoped(workspace=workspace, actor=actor)
        clone.context = self.context.scoped(workspace=clone.workspace, actor=clone.actor)
        return clone

    # ---- reading ---------------------------------------------------------------------------

    def _find(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        """The row of ``name`` or None; ``lock``: held until the transaction ends (PostgreSQL's
        FOR UPDATE, so a concurrent writer waits and then reads our revision; SQLite's writers are
        serialised already)."""
        d = s.deployments.c
        q = select(s.deployments).where(
            d.workspace == self.workspace, d.name == check_name("deployment", name)
        )
        return conn.execute(q.with_for_update() if lock else q).first()

    def _missing(self, name: str) -> NotFound:
        d = s.deployments.c
        with self.engine.connect() as conn:
            have = conn.execute(
                select(d.name).where(d.workspace == self.workspace).order_by(d.name).limit(20)
            ).scalars()
            names = ", ".join(have)
        return NotFound(
            f"No deployment named {name!r}.",
            hint=f"Deployments: {names}."
            if names
            else "Create it with `loopline deploy set NAME -r MODEL_URI`.",
        )

    def _row(self, name: str) -> Any:
        """The row of ``name`` (importing old JSON files first if the table has none such)."""
        with self.engine.connect() as conn:
            row = self._find(conn, name)
        if row is None and self.import_legacy():
            with self.engine.connect() as conn:
                row = self._find(conn, name)
        if row is None:
            raise self._missing(name)
        return row

    def _resolved(self, conn: Connection, deployment_id: int, revision: int) -> dict[str, str]:
        r = s.deployment_revisions.c
        raw = conn.execute(
            select(r.resolved).where(r.deployment_id == deployment_id, r.revision == revision)
        ).scalar()
        return dict(json.loads(raw or "{}"))

    @staticmethod
    def _deployment(row: Any, resolved: dict[str, str]) -> Deployment:
        return Deployment(
            DeploymentSpec.from_dict(json.loads(row.spec)),
            row.revision,
            row.created_ms,
            row.created_by,
            row.updated_ms,
            row.updated_by,
            resolved,
        )

    def get_deployment(self, name: str) -> Deployment:
        row = self._row(name)
        with self.engine.connect() as conn:
            return self._deployment(row, self._resolved(conn, row.id, row.revision))

    def get_revision(self, name: str) -> int:
        d = s.deployments.c
        with self.engine.connect() as conn:
            rev = conn.execute(
                select(d.revision).where(
                    d.workspace == self.workspace, d.name == check_name("deployment", name)
                )
            ).scalar()
        return int(rev) if rev is not None else int(self._row(name).revision)

    def list_deployments(self, max_results: int = 100, page_token: str | None = None) -> Page[Deployment]:
        limit, offset = _page_size(max_results), decode_token(page_token)
        self.import_legacy()
        d, r = s.deployments.c, s.deployment_revisions.c
        q = (
            select(s.deployments, r.resolved)
            .outerjoin(s.deployment_revisions, (r.deployment_id == d.id) & (r.revision == d.revision))
            .where(d.workspace == self.workspace)
            .order_by(d.name)
            .offset(offset)
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        items = [self._deployment(x, dict(json.loads(x.resolved or "{}"))) for x in rows[:limit]]
        return Page(items, encode_token(offset + limit) if len(rows) > limit else None)

    def list_revisions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> Page[DeploymentRevision]:
        limit, offset = _page_size(max_results), decode_token(page_token)
        row = self._row(name)
        r = s.deployment_revisions.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.deployment_revisions)
                .where(r.deployment_id == row.id)
                .order_by(r.revision.desc())
                .offset(offset)
                .limit(limit + 1)
            ).all()
        items = [
            DeploymentRevision(
                row.name,
                x.revision,
                DeploymentSpec.from_dict(json.loads(x.spec)),
                x.actor,
                x.time_ms,
                x.comment,
                dict(json.loads(x.resolved)),
            )
            for x in rows[:limit]
        ]
        return Page(items, encode_token(offset + limit) if len(rows) > limit else None)

    # ---- writing ---------------------------------------------------------------------------

    def _resolve(self, spec: DeploymentSpec, *, strict: bool = True) -> dict[str, str]:
        """The version each ``models:/`` URI of ``spec`` names now.

        An alias (or ``latest``) that names nothing is ``NotFound`` when ``strict``: there is no
        version to record. An explicit version the registry lacks is left out: it is accepted as
        given (as the registry accepts another server's runs) and its edge marked external.
        """
        uris = [m for m in spec.models if m.startswith("models:/")]
        if not uris:
            return {}
        from loopline.registry.store import open_registry_store

        registry = open_registry_store(self.context)
        out: dict[str, str] = {}
        for uri in uris:
            try:
                out[uri] = resolve_model(uri, registry)
            except NotFound as e:
                if strict and not _explicit(uri):
                    raise NotFound(
                        f"Deployment {spec.name!r} names {uri}, which names no model version: {e.message}",
                        hint=e.hint or "Set the alias first (loopline models alias set …).",
                    ) from None
        return out

    def set_deployment(
        self, spec: DeploymentSpec, *, expected_revision: int | None = None, comment: str = ""
    ) -> Deployment:
        return self._write_spec(spec, expected_revision, check_comment(comment), None, {})

    def rollback(
        self, name: str, to_revision: int, *, expected_revision: int | None = None, comment: str = ""
    ) -> Deployment:
        if isinstance(to_revision, bool) or not isinstance(to_revision, int) or to_revision < 1:
            raise InvalidInput(f"Invalid revision {to_revision!r}: revisions are numbered from 1.")
        row = self._row(name)
        r = s.deployment_revisions.c
        with self.engine.connect() as conn:
            old = conn.execute(
                select(r.spec).where(r.deployment_id == row.id, r.revision == to_revision)
            ).scalar()
        if old is None:
            raise NotFound(
                f"Deployment {name!r} has no revision {to_revision} (it is at {row.revision}).",
                hint=f"See its revisions with `loopline deploy history {name}`.",
            )
        spec = DeploymentSpec.from_dict(json.loads(old))
        note = check_comment(comment) or f"rollback to revision {to_revision}"
        return self._write_spec(
            spec, expected_revision, note, "deployment.rollback", {"to_revision": to_revision}
        )

    def _write_spec(
        self,
        spec: DeploymentSpec,
        expected: int | None,
        comment: str,
        action: str | None,
        payload: dict[str, Any],
    ) -> Deployment:
        if expected is not None and (
            isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
        ):
            raise InvalidInput(f"Invalid expected revision {expected!r}: a revision is a number >= 0.")
        resolved = self._resolve(spec)  # before the transaction: the registry reads on its own
        for attempt in range(_ATTEMPTS):
            try:
                with self._write() as conn:
                    return self._apply(conn, spec, resolved, expected, comment, action, payload)
            except (IntegrityError, _Raced):
                # Another writer created or changed it between our read and our write (PostgreSQL;
                # SQLite serialises writers). With an expectation, that is the caller's conflict.
                if expected is not None or attempt == _ATTEMPTS - 1:
                    with self.engine.connect() as conn:
                        row = self._find(conn, spec.name)
                    raise _stale(spec.name, expected or 0, row.revision if row else 0) from None
        raise AssertionError("unreachable")

    def _apply(
        self,
        conn: Connection,
        spec: DeploymentSpec,
        resolved: dict[str, str],
        expected: int | None,
        comment: str,
        action: str | None,
        payload: dict[str, Any],
    ) -> Deployment:
        row = self._find(conn, spec.name, lock=True)
        current = row.revision if row is not None else 0
        if row is not None and (
            DeploymentSpec.from_dict(json.loads(row.spec)) == spec
            and self._resolved(conn, row.id, current) == resolved
        ):
            return self._deployment(row, resolved)  # nothing to change (a retried request)
        if expected is not None and expected != current:
            raise _stale(spec.name, expected, current)
        ms, stored, rev = now_ms(), json.dumps(spec.to_dict(), sort_keys=True), current + 1
        d = s.deployments.c
        if row is None:
            dep_id = conn.execute(
                insert(s.deployments)
                .values(
                    workspace=self.workspace,
                    name=spec.name,
                    spec=stored,
                    revision=rev,
                    created_ms=ms,
                    created_by=self.actor,
                    updated_ms=ms,
                    updated_by=self.actor,
                )
                .returning(d.id)
            ).scalar_one()
            created = (ms, self.actor)
        else:
            moved = conn.execute(
                update(s.deployments)
                .where(d.id == row.id, d.revision == current)
                .values(spec=stored, revision=rev, updated_ms=ms, updated_by=self.actor)
            ).rowcount
            if moved != 1:
                raise _Raced
            dep_id, created = row.id, (row.created_ms, row.created_by)
        conn.execute(
            insert(s.deployment_revisions).values(
                workspace=self.workspace,
                deployment_id=dep_id,
                revision=rev,
                spec=stored,
                resolved=json.dumps(resolved, sort_keys=True),
                actor=self.actor,
                time_ms=ms,
                comment=comment,
            )
        )
        uri = f"deployments:/{spec.name}"
        what = action or ("deployment.create" if row is None else "deployment.update")
        body = {"revision": rev, **spec.to_dict(), "models": sorted(set(resolved.values())), **payload}
        append_event(conn, self.workspace, self.actor, what, uri, body, reason=comment)
        for model, relation in [(r.model, "deployed_in") for r in spec.routes] + (
            [(spec.shadow.model, "shadowed_in")] if spec.shadow is not None else []
        ):
            if model in resolved:
                self._edge(conn, resolved[model], uri, relation)
            elif _explicit(model):  # a version this registry does not hold
                self._edge(conn, model, uri, relation, external=True)
        return Deployment(spec, rev, *created, ms, self.actor, resolved)

    def delete_deployment(self, name: str, *, expected_revision: int | None = None) -> None:
        self._row(name)  # NotFound (after an import of old files) before the write lock
        with self._write() as conn:
            row = self._find(conn, name, lock=True)
            if row is None:
                raise self._missing(name) if expected_revision is None else _stale(name, expected_revision, 0)
            if expected_revision is not None and expected_revision != row.revision:
                raise _stale(name, expected_revision, row.revision)
            r = s.deployment_revisions.c
            conn.execute(delete(s.deployment_revisions).where(r.deployment_id == row.id))
            conn.execute(delete(s.deployments).where(s.deployments.c.id == row.id))
            self._event(conn, "deployment.delete", f"deployments:/{name}", revision=row.revision)

    # ---- deployments kept as JSON files by earlier versions ----------------------------------

    def _imported(self, conn: Connection) -> bool:
        e = t.events.c
        return (
            conn.execute(
                select(e.id).where(e.workspace == self.workspace, e.object_uri == _ALL, e.action == IMPORTED)
            ).first()
            is not None
        )

    def import_legacy(self) -> bool:
        """Import ``deployments/*.json`` from the artifact store, once per workspace; True if this
        call imported any. A deployment the table holds already is kept; a file that does not parse
        is skipped (named in the marker event); an alias that no longer resolves gets no edge."""
        with self.engine.connect() as conn:
            if self._imported(conn):
                return False
        from loopline.serving.legacy import read_legacy

        try:
            found, skipped = read_legacy(self.context.artifacts)
        except (LooplineError, OSError) as e:  # the artifact store is down: try again next time
            log.warning("could not look for deployments/*.json to import: %s", e)
            return False
        resolved = {path: self._resolve(spec, strict=False) for path, spec in found}
        imported: list[str] = []
        try:
            with self._write() as conn:
                if self._imported(conn):
                    return False  # another process imported them meanwhile
                for path, spec in found:
                    if self._find(conn, spec.name) is None:
                        note = f"imported from {path} in the artifact store"
                        self._apply(
                            conn, spec, resolved[path], None, note, "deployment.import", {"source": path}
                        )
                        imported.append(spec.name)
                self._event(conn, IMPORTED, _ALL, imported=imported, skipped=skipped)
        except IntegrityError:  # a concurrent importer (PostgreSQL) created one of them first
            return False
        if imported or skipped:
            log.info("imported deployments %s from the artifact store (skipped: %s)", imported, skipped)
        return bool(imported)
