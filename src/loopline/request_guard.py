"""Request hardening for both servers (``loopline server`` and ``loopline serve``): one pure-ASGI
middleware that refuses, before any route runs,

- a ``Host`` the server does not answer (DNS rebinding): ``LOOPLINE_ALLOWED_HOSTS``, ``,``-separated
  names, ``.example.com`` for a domain and its subdomains, ``*`` for any. Unset: a server bound to a
  loopback address answers only loopback names (``localhost``, ``127.0.0.1``, ``[::1]``, any port);
  one bound elsewhere answers any name. → 400
- a state-changing request (POST, PUT, PATCH, DELETE) from another origin (CSRF): its ``Origin``
  (or, without one, ``Sec-Fetch-Site: cross-site``) is neither the request's own ``scheme://Host``
  nor listed in ``LOOPLINE_ALLOWED_ORIGINS``. Programs send no ``Origin`` and pass. → 403
- a body on a JSON route that is not ``application/json``: ``text/plain`` and form bodies are what a
  page on another site can send without a CORS preflight. Routes that take raw bodies (uploads,
  Arrow streams, the inference routes) are named by the server and keep their own checks. → 415
- a body over its route's limit (``LOOPLINE_MAX_JSON_BYTES`` for JSON routes): a ``Content-Length``
  over it is refused unread, and a chunked body is counted as it streams and cut off at the limit,
  so the server never holds more than the limit. → 413

Every refusal is the servers' JSON error body (``{"error_code", "message", "hint"}``; OIP routes add
``error``), never a 5xx, and names no header value but the refused ``Host`` or ``Origin``.

The server's bind address decides the default ``Host`` rule. ``loopline server`` and ``loopline
serve`` hand it to their workers in ``LOOPLINE_BIND_HOST``; without it (an app run in-process by
tests, or under another ASGI server) the address the connection arrived on is used instead.

A request costs one scan of its headers (GET: of the ``Host`` only) and, for a JSON body with a
``Content-Length``, nothing more: the hot logging routes are measured per request.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from loopline.config import Settings

log = logging.getLogger("loopline.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RawBody = Callable[[str, str], bool]  # (method, path) → the route takes a body that is not JSON

BIND_HOST_ENV = "LOOPLINE_BIND_HOST"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Probes answer any Host: a kubelet or load balancer calls them by IP, and they reveal nothing.
PROBES = frozenset({"/health", "/ready", "/ping", "/v2/health/live", "/v2/health/ready"})
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_DOCS = "See docs/security.md."


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> str:
    """``Host`` header → lower-case name without port or IPv6 brackets (``[::1]:5000`` → ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value  # a bare IPv6 address (not valid in Host, compared as is) or a plain name


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, the scheme's default port dropped; ``null`` stays."""
    scheme, sep, rest = value.strip().lower().partition("://")
    if not sep:
        return value.strip().lower()
    rest = rest.split("/", 1)[0]
    host, port = rest, ""
    if rest.startswith("["):
        end = rest.find("]")
        host, port = rest[: end + 1], rest[end + 2 :] if rest[end + 1 : end + 2] == ":" else ""
    elif ":" in rest:
        host, _, port = rest.partition(":")
    if port and port == _DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _items(setting: str) -> list[str]:
    return [s.strip() for s in setting.split(",") if s.strip()]


class HostRule:
    """Which ``Host`` names are answered (see the module docstring)."""

    def __init__(self, allowed_hosts: str, bind_host: str | None) -> None:
        items = [split_host(i) if i != "*" else i for i in _items(allowed_hosts)]
        self.any = "*" in items
        self.names = frozenset(i for i in items if not i.startswith((".", "*.")))
        self.domains = tuple(i.lstrip("*") for i in items if i.startswith((".", "*.")))
        self.configured = bool(items)
        self.bind_host = bind_host

    def allows(self, host: str, scope: Scope) -> bool:
        if self.configured:
            return (
                self.any or host in self.names or any(host.endswith(d) or host == d[1:] for d in self.domains)
            )
        bound = self.bind_host
        if bound is None:  # not started by our CLI: the address this connection arrived on
            server = scope.get("server")
            bound = str(server[0]) if server else None
        if bound is None or not is_loopback(bound):
            return True
        return host in LOOPBACK_NAMES


class RequestGuard:
    """The middleware: wrap an ASGI app (outermost, so nothing runs before it refuses)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        raw_body: RawBody | None = None,
        max_raw_bytes: int | None = None,
        bind_host: str | None = None,
        oip_errors: bool = False,
    ) -> None:
        """``raw_body(method, path)`` names the routes whose bodies are not JSON (default: the routes
        of ``loopline server``); they are limited to ``max_raw_bytes`` by ``Content-Length`` (None:
        unlimited here, the route streams or bounds them). ``bind_host`` defaults to
        ``LOOPLINE_BIND_HOST``. ``oip_errors``: refusals on ``/v2`` carry OIP's ``error`` too."""
        self.app = app
        self.hosts = HostRule(settings.allowed_hosts, bind_host or os.environ.get(BIND_HOST_ENV) or None)
        origins = _items(settings.allowed_origins)
        self.any_origin = "*" in origins
        self.origins = frozenset(normalize_origin(o) for o in origins if o != "*")
        self.raw_body = raw_body or server_raw_body
        self.max_json = int(settings.max_json_bytes)
        self.max_raw = max_raw_bytes
        self.oip_errors = oip_errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path = _route_path(scope)
        if method not in UNSAFE:
            if path not in PROBES:
                named = b""
                for name, value in scope["headers"]:
                    if name == b"host":
                        named = value
                        break
                if not self.hosts.allows(split_host(named.decode("latin-1")), scope):
                    await self._refuse_host(scope, send, named)
                    return
            await self.app(scope, receive, send)
            return

        host = origin = fetch_site = content_type = length = chunked = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                fetch_site = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = value
        host_text = (host or b"").decode("latin-1")
        if not self.hosts.allows(split_host(host_text), scope):
            await self._refuse_host(scope, send, host or b"")
            return
        if origin is not None or fetch_site == b"cross-site":
            refusal = self._foreign_origin(scope, host_text, origin)
            if refusal is not None:
                await self._refuse(send, scope, 403, "PERMISSION_DENIED", *refusal)
                return
        raw = self.raw_body(method, path)
        limit = self.max_raw if raw else self.max_json
        has_body = chunked is not None or (length is not None and length != b"0")
        if not raw and has_body and not _is_json(content_type):
            sent = f"not {content_type.decode('latin-1')[:100]}" if content_type else "this one has no type"
            await self._refuse(
                send,
                scope,
                415,
                "BAD_REQUEST",
                f"{method} {path} takes a JSON body sent as application/json; {sent}.",
                "Send the header Content-Type: application/json.",
            )
            return
        if limit is not None and length is not None:
            if not length.isdigit() or int(length) > limit:
                await self._too_large(send, scope, limit)
                return
        elif limit is not None and chunked is not None and not raw:
            body = await _read_at_most(receive, limit)
            if body is None:
                await self._too_large(send, scope, limit)
                return
            if isinstance(body, bytes):
                receive = _replay(body, receive)
            else:  # the client left mid-body: nobody to answer
                return
        await self.app(scope, receive, send)

    def _foreign_origin(self, scope: Scope, host: str, origin: bytes | None) -> tuple[str, str] | None:
        """(message, hint) when the request comes from a page of another origin, else None."""
        if self.any_origin:
            return None
        if origin is None:  # a browser that sent Sec-Fetch-Site: cross-site but no Origin
            return (
                "A state-changing request from another site's page is refused (Sec-Fetch-Site: cross-site).",
                f"Programs send no Origin or Sec-Fetch-Site headers. {_DOCS}",
            )
        seen = normalize_origin(origin.decode("latin-1"))
        own = normalize_origin(f"{scope.get('scheme', 'http')}://{host}")
        if seen == own or seen in self.origins:
            return None
        return (
            f"A state-changing request from the origin {seen[:200]!r} is refused: this server is "
            f"{own[:200]!r}.",
            "List the origin in LOOPLINE_ALLOWED_ORIGINS to allow its pages. Behind a TLS proxy, let "
            f"the server trust its X-Forwarded-Proto (--forwarded-allow-ips). {_DOCS}",
        )

    async def _refuse_host(self, scope: Scope, send: Send, host: bytes) -> None:
        shown = host.decode("latin-1")[:200] if host else "no Host header"
        await self._refuse(
            send,
            scope,
            400,
            "BAD_REQUEST",
            f"This server does not answer requests for the host {shown!r}.",
            "Set LOOPLINE_ALLOWED_HOSTS to the names clients use to reach it (a server bound to "
            f"127.0.0.1 answers only localhost, 127.0.0.1 and [::1] by default). {_DOCS}",
        )

    async def _too_large(self, send: Send, scope: Scope, limit: int) -> None:
        await self._refuse(
            send,
            scope,
            413,
            "BAD_REQUEST",
            f"The request body is larger than this route's limit of {limit} bytes.",
            "Send smaller requests (split batches), or raise LOOPLINE_MAX_JSON_BYTES on the server.",
        )

    async def _refuse(
        self, send: Send, scope: Scope, status: int, code: str, message: str, hint: str
    ) -> None:
        path = _route_path(scope)
        log.info("refused %s %s: %d %s", scope["method"], path[:200], status, message)
        payload: dict[str, str] = {"error_code": code, "message": message, "hint": hint}
        if self.oip_errors and path.startswith("/v2"):
            payload = {"error": f"{message} {hint}", **payload}
        body = orjson.dumps(payload)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 413:  # the rest of the body is not read: the connection cannot be reused
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


class _Gone:
    """The client disconnected while its body streamed in."""


async def _read_at_most(receive: Receive, limit: int) -> bytes | _Gone | None:
    """A chunked body whole if it holds at most ``limit`` bytes; None as soon as it holds more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _Gone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read already, then the client's later messages."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# ---- which routes take raw bodies --------------------------------------------------------------

_SERVER_RAW_PUT = (
    "/api/2.0/mlflow-artifacts/artifacts/",  # MLflow's artifact upload (any content type)
    "/api/2.0/loopline/uploads/",  # parts of multipart artifact uploads
    "/api/2.0/loopline/data/blobs/",  # dataset blobs by digest
)
_SERVER_RAW_POST = frozenset(
    {
        "/api/2.0/loopline/data/blobs/batch",  # framed blobs (application/x-loopline-blobs)
        "/api/2.0/loopline/features/historical",  # Arrow IPC streams
        "/api/2.0/loopline/features/push",
        "/api/2.0/loopline/features/training-sets",
        "/ui/login",  # the web UI's sign-in form (form-encoded; a cross-origin post is refused above)
    }
)


def server_raw_body(method: str, path: str) -> bool:
    """``loopline server``'s routes whose bodies are not JSON (its OpenAPI document says the same:
    tests/server/test_guard.py compares them)."""
    if method == "PUT":
        return path.startswith(_SERVER_RAW_PUT)
    return method == "POST" and path in _SERVER_RAW_POST


def serving_raw_body(method: str, path: str) -> bool:
    """``loopline serve``: MLflow scoring (JSON, CSV, Parquet) and OIP inference (JSON or binary
    tensors) check their own content types and encodings; the other POST routes take JSON."""
    return path == "/invocations" or (path.startswith("/v2/models/") and path.endswith("/infer"))
