"""One place maps every error to an HTTP status and MLflow's JSON body.

The metadata database out or its connection dropped (PostgreSQL restarted, a failover, an admin's
``pg_terminate_backend``; SQLite locked past its busy timeout) is a 503 with ``Retry-After``, never a
500: ``DatabaseOutageMiddleware`` runs a read (GET, HEAD) once more on a fresh connection first (the
pool pings a connection before it lends it, and replaces a dropped one), and answers anything else
503 at once. A write is not run again here: whether its COMMIT reached the database is unknown; the
client retries it, with its ``Idempotency-Key`` (see ``idempotency.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from loopline.errors import BackendUnavailable, LooplineError, first_line
from loopline.metadata.engine import is_outage
from loopline.server.http import json_response

log = logging.getLogger("loopline.server")

RETRY_AFTER_S = 1  # what a 503 tells the client to wait: a dropped connection is replaced at once

_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "ENDPOINT_NOT_FOUND",
    405: "BAD_REQUEST",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
}


# MLflow APIs Loopline does not implement, by a word of their paths (first match wins).
_UNCLAIMED = (
    ("graphql", "MLflow's GraphQL API"),
    ("gateway", "MLflow's AI gateway"),
    ("gateway-proxy", "MLflow's AI gateway"),
    ("secrets", "MLflow's AI gateway secrets"),
    ("endpoints", "MLflow's AI gateway endpoints"),
    ("traces", "MLflow 3's traces"),
    ("get-trace-artifact", "MLflow 3's traces"),
    ("otel", "MLflow 3's traces"),
    ("datasets", "MLflow 3's evaluation datasets"),
    ("search-datasets", "MLflow 3's evaluation datasets"),
    ("issues", "MLflow 3's issues"),
    ("scorers", "MLflow 3's scorers"),
    ("scorer", "MLflow 3's scorers"),
    ("prompts", "MLflow's prompt registry"),
    ("create-promptlab-run", "MLflow's prompt lab"),
)
_COVERED = (
    "Loopline serves MLflow's tracking, model registry, logged-model and artifact APIs "
    "(docs/tracking.md lists what is covered)."
)


def no_endpoint_message(method: str, path: str) -> str:
    """What a request to a route that does not exist is told: which MLflow area it belongs to."""
    words = set(path.strip("/").split("/"))
    mlflow = "mlflow" in words or path.startswith(("/graphql", "/v1/traces", "/gateway", "/ajax-api/"))
    area = next((name for word, name in _UNCLAIMED if word in words), None) if mlflow else None
    if area is None and path.startswith("/ajax-api/"):
        area = "this route of MLflow's web UI"
    if area is not None:
        return f"Loopline does not implement {area} ({method} {path}). {_COVERED}"
    return f"No endpoint {method} {path}. {_COVERED}"


def error_body(exc: LooplineError) -> dict[str, str]:
    """MLflow's error body for an error Loopline raised on purpose (a failed job stores it too)."""
    message = f"{exc.message} {exc.hint}".strip() if exc.hint else exc.message
    return {"error_code": exc.error_code, "message": message}


def error_response(exc: LooplineError) -> Response:
    retry = {"Retry-After": str(RETRY_AFTER_S)} if exc.status_code == 503 else None
    return json_response(error_body(exc), exc.status_code, headers=retry)


def outage_error(exc: DBAPIError) -> BackendUnavailable:
    """What a client is told of an outage: the driver's one line, without the statement."""
    return BackendUnavailable(
        f"The metadata database is unavailable: {first_line(exc)}.",
        hint=f"Retry in {RETRY_AFTER_S} s; a write with the same Idempotency-Key runs at most once.",
    )


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_READS = frozenset({"GET", "HEAD"})


class DatabaseOutageMiddleware:
    """A database outage under a request: a read is run once more, else (or again) 503 + Retry-After.

    Pure ASGI, innermost of the middlewares: the idempotency middleware outside it sees the 503 and
    frees the request's key for the client's retry."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        again = scope["method"] in _READS
        while True:
            try:
                await self.app(scope, receive, watch)
                return
            except DBAPIError as e:
                if started or not is_outage(e):
                    raise
                if again and e.connection_invalidated:  # the pool has a fresh connection for the retry
                    log.info(
                        "%s %s: the database dropped its connection; once more",
                        scope["method"],
                        scope["path"],
                    )
                    again = False
                    receive = _no_body(receive)
                    continue
                found = outage_error(e)
                log.warning("%s %s: %s", scope["method"], scope["path"], found.message)
                await error_response(found)(scope, receive, send)
                return


def _no_body(receive: Receive) -> Receive:
    """A read's (empty) request body once more, then what the client sends (its disconnect)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": b"", "more_body": False}

    return again


def unexpected_response(exc: Exception) -> Response:
    """A bug's answer: its kind, not its text (which may hold SQL, paths or values): that is logged."""
    log.exception("Unhandled error")
    message = f"Internal error ({type(exc).__name__}); the server's log has the details."
    return json_response({"error_code": "INTERNAL_ERROR", "message": message}, 500)


def install(app: FastAPI) -> None:
    @app.exception_handler(LooplineError)
    async def _loopline(_: Request, exc: LooplineError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return json_response(
            {"error_code": "INVALID_PARAMETER_VALUE", "message": f"{where}: {first.get('msg', 'invalid')}"},
            400,
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "BAD_REQUEST")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":  # no such route
            message = no_endpoint_message(request.method, request.url.path)
        body: dict[str, str] = {"error_code": code, "message": message}
        if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            body["hint"] = f"This endpoint answers {exc.headers['Allow']}."
        # The exception's headers go out with the answer: a 405 must say which methods are allowed.
        return json_response(body, exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> Response:
        # An upload cut off mid-body: routes clean up what they staged, the client re-sends. Routine,
        # so no traceback; the answer goes nowhere but keeps the handler chain from re-raising.
        log.info("Client disconnected during %s %s", request.method, request.url.path)
        return json_response({"error_code": "BAD_REQUEST", "message": "The client disconnected."}, 400)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        # The database refused a value its column cannot hold (PostgreSQL: too long, out of range):
        # the input was wrong, so a 400 that says so, not a 500. Routes check the limits they know;
        # this is the net under the ones they don't.
        log.info("%s %s: the database refused a value: %s", request.method, request.url.path, exc.orig)
        return json_response(
            {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": "A value in the request is too long or out of range for where it is stored.",
                "hint": "Shorten the longest strings, or keep numbers within 64-bit integers.",
            },
            400,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        return unexpected_response(exc)
