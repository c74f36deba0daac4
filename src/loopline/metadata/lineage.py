"""The audit trail and the lineage graph: two append-only tables every capability writes to.

``append_event`` and ``add_edge`` take the caller's open connection so they commit (or roll
back) together with the change they describe. ``upstream``/``downstream`` answer "what made X"
and "what depends on X" with one recursive query each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, literal, select

from loopline.clock import now_ms
from loopline.metadata import schema as t
from loopline.metadata.engine import driver_execute, for_driver, insert_for
from loopline.metadata.event_rows import INSERT_EVENT, event_params


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


def _walk(engine: Engine, workspace: str, uri: str, downstream: bool) -> list[Edge]:
    le = t.lineage_edges
    near, far = (le.c.from_uri, le.c.to_uri) if downstream else (le.c.to_uri, le.c.from_uri)
    seed = select(literal(uri).label("uri")).cte("reach", recursive=True)
    step = select(far.label("uri")).join(seed, near == seed.c.uri).where(le.c.workspace == workspace)
    reach = seed.union(step)
    q = select(le).where(le.c.workspace == workspace, near.in_(select(reach.c.uri)))
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(le.c.id)).all()
    return [Edge(r.from_uri, r.to_uri, r.relation, r.time_ms, bool(r.external)) for r in rows]


def downstream(engine: Engine, workspace: str, uri: str) -> list[Edge]:
    """Every edge reachable from ``uri`` following the arrows (what depends on it)."""
    return _walk(engine, workspace, uri, downstream=True)


def upstream(engine: Engine, workspace: str, uri: str) -> list[Edge]:
    """Every edge reachable from ``uri`` against the arrows (what it was made from)."""
    return _walk(engine, workspace, uri, downstream=False)


__all__ = ["Edge", "Event", "add_edge", "append_event", "downstream", "list_events", "upstream"]
