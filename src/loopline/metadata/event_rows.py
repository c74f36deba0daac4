"""The audit trail's INSERT as one SQL text, with its parameters, importing nothing but the stdlib.

``metadata.lineage.append_event`` runs it through SQLAlchemy for every store, and a lean writer
that runs on ``sqlite3`` to skip SQLAlchemy's import (``data.version_writes`` for ``loopline data
add``) runs the very same text: one way to write an event, whichever driver carries it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextvars import ContextVar

from loopline.clock import now_ms

# The server request an event is written for (set by ``server/access_log.py``): the event's payload
# names it, so an access-log line leads to the audit trail and back.
REQUEST_ID: ContextVar[str] = ContextVar("loopline_request_id", default="")

INSERT_EVENT = (
    "INSERT INTO events (workspace, time_ms, actor, action, object_uri, payload, reason)"
    " VALUES (:workspace, :time_ms, :actor, :action, :object_uri, :payload, :reason)"
)


def event_params(
    workspace: str,
    actor: str,
    action: str,
    object_uri: str,
    payload: Mapping[str, object] | None = None,
    reason: str = "",
) -> dict[str, object]:
    """The bound parameters of :data:`INSERT_EVENT` for one event, stamped now."""
    request_id = REQUEST_ID.get()
    if request_id:
        payload = {**(payload or {}), "request_id": request_id}
    return {
        "workspace": workspace,
        "time_ms": now_ms(),
        "actor": actor,
        "action": action,
        "object_uri": object_uri,
        "payload": json.dumps(payload or {}, default=str),
        "reason": reason,
    }


__all__ = ["INSERT_EVENT", "REQUEST_ID", "event_params"]
