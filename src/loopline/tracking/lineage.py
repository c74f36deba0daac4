"""Reading the audit trail and the lineage graph, from the database or through a server.

Every store writes events and edges in its own transactions (``loopline.metadata.lineage``); this is
the read side clients use: ``open_lineage_reader(context)`` gives ``SqlLineageReader`` on a database
and ``RestLineageReader`` on a ``loopline server`` (routes ``/api/2.0/loopline/events`` and
``/api/2.0/loopline/lineage/{upstream,downstream}``), with the same methods and answers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import or_, select

from loopline.errors import InvalidInput
from loopline.metadata import lineage as graph, schema as t
from loopline.metadata.lineage import Edge, Event

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from loopline.context import Context
    from loopline.protocol.http import RestClient

MAX_EVENTS = 10_000
_API = "/api/2.0/loopline"


class LineageReader(Protocol):
    def upstream(self, uri: str) -> list[Edge]:
        """Every edge reachable from ``uri`` against the arrows (what it was made from)."""
        ...

    def downstream(self, uri: str) -> list[Edge]:
        """Every edge reachable from ``uri`` following the arrows (what depends on it)."""
        ...

    def events(
        self,
        object_uri: str | None = None,
        action: str | None = None,
        limit: int = 100,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[Event]:
        """The newest ``limit`` events, newest first; ``action`` matches an action (``monitor.run``) or
        its kind (``monitor`` or ``monitor.`` match every ``monitor.*``); ``since_ms``/``until_ms``
        keep those at or after / before those times."""
        ...


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_EVENTS:
        raise InvalidInput(f"Invalid limit {limit}: it must be between 1 and {MAX_EVENTS}.")
    return limit


class SqlLineageReader:
    def __init__(self, engine: Engine, workspace: str) -> None:
        self.engine = engine
        self.workspace = workspace

    def upstream(self, uri: str) -> list[Edge]:
        return graph.upstream(self.engine, self.workspace, uri)

    def downstream(self, uri: str) -> list[Edge]:
        return graph.downstream(self.engine, self.workspace, uri)

    def events(
        self,
        object_uri: str | None = None,
        action: str | None = None,
        limit: int = 100,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[Event]:
        e = t.events.c
        q = select(t.events).where(e.workspace == self.workspace)
        if object_uri:
            q = q.where(e.object_uri == object_uri)
        if action:
            action = action.removesuffix(".")  # "loop." is the kind "loop"
            q = q.where(or_(e.action == action, e.action.startswith(action + ".", autoescape=True)))
        if since_ms is not None:
            q = q.where(e.time_ms >= since_ms)
        if until_ms is not None:
            q = q.where(e.time_ms < until_ms)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(e.id.desc()).limit(check_limit(limit))).all()
        return [
            Event(r.id, r.time_ms, r.actor, r.action, r.object_uri, json.loads(r.payload), r.reason)
            for r in rows
        ]


def edge_to_json(e: Edge) -> dict[str, Any]:
    return {
        "from_uri": e.from_uri,
        "to_uri": e.to_uri,
        "relation": e.relation,
        "time_ms": e.time_ms,
        "external": e.external,  # the source is not in this store (e.g. another tracking server's run)
    }


def event_to_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "time_ms": e.time_ms,
        "actor": e.actor,
        "action": e.action,
        "object_uri": e.object_uri,
        "payload": dict(e.payload),
        "reason": e.reason,
    }


class RestLineageReader:
    def __init__(self, client: RestClient) -> None:
        self.client = client

    def _walk(self, direction: str, uri: str) -> list[Edge]:
        body = self.client.call("GET", f"{_API}/lineage/{direction}", {"uri": uri})
        return [
            Edge(x["from_uri"], x["to_uri"], x["relation"], int(x["time_ms"]), bool(x.get("external", False)))
            for x in body["edges"]
        ]

    def upstream(self, uri: str) -> list[Edge]:
        return self._walk("upstream", uri)

    def downstream(self, uri: str) -> list[Edge]:
        return self._walk("downstream", uri)

    def events(
        self,
        object_uri: str | None = None,
        action: str | None = None,
        limit: int = 100,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[Event]:
        query = {
            "object_uri": object_uri,
            "action": action,
            "max_results": check_limit(limit),
            "since_ms": since_ms,
            "until_ms": until_ms,
        }
        body = self.client.call("GET", f"{_API}/events", query)
        return [
            Event(
                int(x["id"]),
                int(x["time_ms"]),
                x["actor"],
                x["action"],
                x["object_uri"],
                x.get("payload") or {},
                x.get("reason") or "",
            )
            for x in body["events"]
        ]


def open_lineage_reader(context: Context) -> LineageReader:
    """The reader the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        return RestLineageReader(context.http)
    return SqlLineageReader(context.engine, context.workspace)
