"""The few HTTP pieces the inference server needs, on bare ASGI.

The server is a plain ASGI callable rather than a Starlette or FastAPI app: on the single-row
``/invocations`` path a framework's request and response objects cost more than the rest of the
request (measured with wrk on 2 cores: 21.7k req/s for a bare ASGI echo of a JSON body against
14.7k for the same route in Starlette). Bodies are read whole (bounded), parsed with orjson.

    LooplineError (loopline.errors)
     ├── BadRequest               400  BAD_REQUEST
     ├── EndpointNotFound         404  ENDPOINT_NOT_FOUND
     ├── MethodNotAllowed         405  BAD_REQUEST
     ├── PayloadTooLarge          413  BAD_REQUEST
     ├── UnsupportedMediaType     415  BAD_REQUEST
     ├── Overloaded               429  RESOURCE_EXHAUSTED  (+ Retry-After)
     └── NotReady                 503  TEMPORARILY_UNAVAILABLE
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from loopline.errors import BackendUnavailable, BadRequest, LooplineError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = "application/json"
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class EndpointNotFound(LooplineError):
    status_code = 404
    error_code = "ENDPOINT_NOT_FOUND"


class MethodNotAllowed(LooplineError):
    status_code = 405
    error_code = "BAD_REQUEST"


class PayloadTooLarge(LooplineError):
    status_code = 413
    error_code = "BAD_REQUEST"


class UnsupportedMediaType(LooplineError):
    status_code = 415
    error_code = "BAD_REQUEST"


class Overloaded(LooplineError):
    """The bounded queue is full: the client should come back after ``retry_after`` seconds."""

    status_code = 429
    error_code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: int = 1, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.retry_after = max(1, retry_after)


class NotReady(BackendUnavailable):
    """The model is still loading (or failed to load): readiness and inference answer 503."""


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    query: str = ""
    root_path: str = ""  # a proxy's prefix (ASGI root_path), for links the server writes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name.encode("latin-1"), value.encode("latin-1")))


def _default(obj: Any) -> Any:
    """orjson's fallback: numpy scalars and object arrays, pandas timestamps, anything else as str."""
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    item = getattr(obj, "item", None)
    if item is not None:
        return item()
    isoformat = getattr(obj, "isoformat", None)
    if isoformat is not None:
        return isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_default, option=_DUMPS_OPTIONS)


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, dumps(payload))


def error_response(exc: LooplineError, *, oip: bool = False) -> Response:
    """MLflow's error body ``{"error_code", "message"}``; OIP clients read ``error`` (tritonclient does)."""
    message = f"{exc.message} {exc.hint}".strip() if exc.hint else exc.message
    body: dict[str, Any] = {"error_code": exc.error_code, "message": message}
    if oip:
        body = {"error": message, **body}
    response = Response(exc.status_code, dumps(body))
    if isinstance(exc, Overloaded):
        response.add_header("retry-after", str(exc.retry_after))
    return response


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"The request body is larger than {limit} bytes.",
                    hint="Send fewer rows per request, or raise --max-body-mb.",
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode_body(body: bytes, encoding: str, limit: int) -> bytes:
    """A ``Content-Encoding: gzip`` or ``deflate`` body, decompressed to at most ``limit`` bytes."""
    import zlib

    kind = encoding.strip().lower()
    if kind not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported.", hint="Send the body as is, gzip or deflate."
        )
    # gzip: a gzip header; deflate: zlib's header, or (as some clients send it) raw deflate.
    d = zlib.decompressobj(wbits=31 if kind != "deflate" else 15 if body[:1] == b"\x78" else -15)
    try:
        out = d.decompress(body, limit + 1)
        if not d.eof and len(out) <= limit:
            raise zlib.error("the compressed data is truncated")
    except zlib.error as e:
        raise BadRequest(
            f"The body is not valid {kind} data ({e}).",
            hint="Compress the whole body, or send it without Content-Encoding.",
        ) from None
    if len(out) > limit:
        raise PayloadTooLarge(
            f"The body is larger than {limit} bytes once decompressed.",
            hint="Send fewer rows per request, or raise --max-body-mb.",
        )
    return out


class ClientGone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


async def send_response(send: Send, response: Response) -> None:
    headers = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode("latin-1")),
        *response.headers,
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def parse_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    # ASGI servers already lower-case header names.
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in raw}
