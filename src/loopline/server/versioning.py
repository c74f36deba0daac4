"""Client and server versions: each answer says which Loopline and which REST API it comes from,
and a Loopline client whose API this server does not speak is refused on its first request, with
both versions in the message, instead of failing later on a route that moved.

Pure ASGI (no Starlette middleware stack): it costs the hot MLflow routes two header appends.
Requests without a ``Loopline-Api`` header (MLflow's client, curl, browsers) pass untouched.
"""

from __future__ import annotations

from typing import Any

import orjson

from loopline._version import API_VERSION, MIN_CLIENT_API, __version__

Scope = dict[str, Any]
_HEADERS = [(b"loopline-version", __version__.encode()), (b"loopline-api", str(API_VERSION).encode())]


def _client_api(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"loopline-api":
            return bytes(value)
    return None


def _refusal(scope: Scope, api: bytes) -> bytes | None:
    """The error body for a client API outside [MIN_CLIENT_API, API_VERSION], else None."""
    if api.isdigit() and MIN_CLIENT_API <= int(api) <= API_VERSION:
        return None
    client = next((v.decode() for n, v in scope.get("headers", ()) if n == b"loopline-version"), "unknown")
    newer = api.isdigit() and int(api) > API_VERSION
    return orjson.dumps(
        {
            "error_code": "INCOMPATIBLE_VERSION",
            "message": f"This server runs Loopline {__version__} (API {API_VERSION}, clients of API "
            f"{MIN_CLIENT_API}-{API_VERSION}); the client is Loopline {client} (API {api.decode()}).",
            "hint": f"Upgrade the server to Loopline {client}."
            if newer
            else f"Upgrade the client: pip install 'loopline=={__version__}'.",
        }
    )


class VersionMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = _client_api(scope)
        body = _refusal(scope, api) if api is not None else None
        if body is not None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 409,
                    "headers": [(b"content-type", b"application/json"), *_HEADERS],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_versions(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_versions)
