"""The audit trail and the lineage graph: two append-only tables every capability writes to.

``append_event`` and ``add_edge`` take the caller's open connection so they commit (or roll
back) together with the change they describe. ``upstream``/``downstream`` answer "what made X"
and "what depends on X" with one recursive query each.

Edges belong to the workspace that wrote them, and a walk reads only the caller's. An edge can still
point into another workspace: objects with global ids (runs, logged models, experiments, pipeline
runs) can be named by anyone who knows the id, e.g. as a run's parent (``mlflow.parentRunId``), a
model version's source run, or an edge recorded through the lineage routes. Such a node is shown
opaque: its URI becomes ``<scheme>:/(other workspace #n)`` (its kind, never its id, name or
contents) and, as a source, the edge is marked ``external`` (unresolved). A node that names no
object anywhere (e.g. another tracking server's run) is kept as given: the caller wrote that name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, literal, select

from loopline.clock import now_ms
from loopline.metadata import schema as t
from loopline.metadata.engine import driver_execute, for_driver, insert_for
from loopline.metadata.event_rows import INSERT_EVENT, event_params
from loopline.metadata.schema_pipelines import pipeline_runs


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    time_ms: int
    actor: str
    action: str
    object_uri: str
    payload: Mapping[str, object]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Edge:
    from_uri: str
    to_uri: str
    relation: str
    time_ms: int
    external: bool = False  # from_uri is not an object of this store (e.g. another server's run)


def append_event(
    conn: Connection,
    workspace: str,
    actor: str,
    action: str,
    object_uri: str,
    payload: Mapping[str, object] | None = None,
    reason: str = "",
) -> None:
    # Every write of every store appends one: straight to the driver (see driver_execute).
    params = event_params(workspace, actor, action, object_uri, payload, reason)
    driver_execute(conn, for_driver(conn, INSERT_EVENT), params)


def add_edge(
    conn: Connection, workspace: str, from_uri: str, to_uri: str, relation: str, *, external: bool = False
) -> None:
    """Record ``from_uri --relation--> to_uri`` once (repeats are ignored); ``external`` marks a
    ``from_uri`` this store cannot resolve."""
    conn.execute(
        insert_for(conn.dialect.name, t.lineage_edges)
        .values(
            workspace=workspace,
            from_uri=from_uri,
            to_uri=to_uri,
            relation=relation,
            time_ms=now_ms(),
            external=external,
        )
        .on_conflict_do_nothing()
    )


def list_events(
    engine: Engine, workspace: str, object_uri: str | None = None, limit: int = 100
) -> list[Event]:
    e = t.events.c
    q = select(t.events).where(e.workspace == workspace)
    if object_uri:
        q = q.where(e.object_uri == object_uri)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(e.id.desc()).limit(limit)).all()
    return [
        Event(r.id, r.time_ms, r.actor, r.action, r.object_uri, json.loads(r.payload), r.reason) for r in rows
    ]


OTHER_WORKSPACE = "other workspace"


def _global_id(uri: str) -> tuple[Table, Column[Any], str] | None:
    """(table, id column, id) of an object URI whose id is global (not scoped by a workspace name)."""
    scheme, _, rest = uri.partition(":/")
    parts = rest.split("/")
    if scheme == "runs" and parts[0]:
        return t.runs, t.runs.c.run_uuid, parts[0]
    if scheme == "models" and parts[0].startswith("m-") and len(parts) == 1:
        return t.logged_models, t.logged_models.c.model_id, parts[0]
    if scheme == "experiments" and parts[0].isdigit():
        return t.experiments, t.experiments.c.experiment_id, parts[0]
    if scheme == "pipelines" and len(parts) >= 2 and parts[1]:
        return pipeline_runs, pipeline_runs.c.run_id, parts[1]
    return None


def _foreign(conn: Connection, workspace: str, uris: set[str]) -> set[str]:
    """The URIs among ``uris`` that name an object of another workspace, not of ``workspace``."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for uri in uris:
        found = _global_id(uri)
        if found is not None:
            table, _, key = found
            wanted.setdefault((table.name, key), []).append(uri)
    owners: dict[tuple[str, str], set[str]] = {}
    for table, column in (
        (t.runs, t.runs.c.run_uuid),
        (t.logged_models, t.logged_models.c.model_id),
        (t.experiments, t.experiments.c.experiment_id),
        (pipeline_runs, pipeline_runs.c.run_id),
    ):
        keys = [k for (name, k) in wanted if name == table.name]
        if table is t.experiments:
            keys = [k for k in keys if len(k) < 19]  # a BIGINT's digits at most
        if not keys:
            continue
        values: list[object] = [int(k) for k in keys] if table is t.experiments else list(keys)
        rows = conn.execute(select(column, table.c.workspace).where(column.in_(values))).all()
        for key, owner in rows:
            owners.setdefault((table.name, str(key)), set()).add(owner)
    return {
        uri
        for key, named in wanted.items()
        if (ws := owners.get(key)) and workspace not in ws
        for uri in named
    }


def _opaque(edges: list[Edge], foreign: set[str]) -> list[Edge]:
    """``edges`` with each node of ``foreign`` replaced by ``<scheme>:/(other workspace #n)``."""
    if not foreign:
        return edges
    names: dict[str, str] = {}

    def name(uri: str) -> str:
        if uri not in foreign:
            return uri
        if uri not in names:
            names[uri] = f"{uri.partition(':/')[0]}:/({OTHER_WORKSPACE} #{len(names) + 1})"
        return names[uri]

    return [
        Edge(name(e.from_uri), name(e.to_uri), e.relation, e.time_ms, e.external or e.from_uri in foreign)
        for e in edges
    ]


def _walk(engine: Engine, workspace: str, uri: str, downstream: bool) -> list[Edge]:
    le = t.lineage_edges
    near, far = (le.c.from_uri, le.c.to_uri) if downstream else (le.c.to_uri, le.c.from_uri)
    seed = select(literal(uri).label("uri")).cte("reach", recursive=True)
    step = select(far.label("uri")).join(seed, near == seed.c.uri).where(le.c.workspace == workspace)
    reach = seed.union(step)
    q = select(le).where(le.c.workspace == workspace, near.in_(select(reach.c.uri)))
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(le.c.id)).all()
        edges = [Edge(r.from_uri, r.to_uri, r.relation, r.time_ms, bool(r.external)) for r in rows]
        foreign = _foreign(conn, workspace, {u for e in edges for u in (e.from_uri, e.to_uri)})
    return _opaque(edges, foreign)


def downstream(engine: Engine, workspace: str, uri: str) -> list[Edge]:
    """Every edge reachable from ``uri`` following the arrows (what depends on it)."""
    return _walk(engine, workspace, uri, downstream=True)


def upstream(engine: Engine, workspace: str, uri: str) -> list[Edge]:
    """Every edge reachable from ``uri`` against the arrows (what it was made from)."""
    return _walk(engine, workspace, uri, downstream=False)


__all__ = [
    "OTHER_WORKSPACE",
    "Edge",
    "Event",
    "add_edge",
    "append_event",
    "downstream",
    "list_events",
    "upstream",
]
