"""One structured line per request of ``loopline server`` (a JSON document per line on the server's
stdout): time, request id, method, path, status, duration, workspace and the authenticated actor.

The request id is the caller's ``X-Request-Id`` when it sends a sane one, else a new one; it is sent
back in the answer and written into the payload of every event the request records
(``metadata.event_rows.REQUEST_ID``), so a line of this log leads to the audit trail and back.
No query string, header or body is logged: they may hold secrets.

Off by default; on with auth, or with ``LOOPLINE_ACCESS_LOG=1``. A line costs a few microseconds:
it is one ``os.write`` of an orjson document (a line under PIPE_BUF is never interleaved with
another worker's), not a trip through ``logging``'s records and handlers (~18 µs), and a request id
is a per-process prefix and a counter rather than a UUID.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import sys
import time
from typing import Any

import orjson

from loopline.metadata.event_rows import REQUEST_ID
from loopline.protocol.http import WORKSPACE_HEADER
from loopline.server.auth import identity_of

_SANE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_WORKSPACE = WORKSPACE_HEADER.lower().encode()


class AccessLogMiddleware:
    def __init__(self, app: Any, *, default_workspace: str, fd: int | None = None) -> None:
        self.app = app
        self.default_workspace = default_workspace
        self.fd = sys.stdout.fileno() if fd is None else fd
        self._prefix = secrets.token_hex(4)  # unique per process: ids stay unique across replicas
        self._count = itertools.count(1)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = workspace = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SANE.match(value):
                request_id = value.decode()
            elif name == _WORKSPACE:
                workspace = value.decode("latin-1")[:63]
        request_id = request_id or f"{self._prefix}-{next(self._count)}"
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # unless an answer starts

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            who = identity_of(scope)
            line = {
                "time": time.time(),
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "workspace": workspace or self.default_workspace,
                "actor": who.user if who else None,
                "via": who.via if who else None,
                "client": scope["client"][0] if scope.get("client") else None,
            }
            os.write(self.fd, orjson.dumps(line) + b"\n")
