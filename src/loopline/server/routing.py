"""One dict lookup to find a plain route, ahead of FastAPI's routers.

FastAPI matches a request by trying every route in turn, router by router (FastAPI 0.165 matches an
included router's routes lazily, twice per request), then solves the endpoint's dependencies. Most of
our routes take the ``Request`` and validate by hand (see ``http.py``), so for them both steps are pure
overhead: measured under the unmodified ``mlflow`` client, routing and the APIRoute wrapper cost more
server CPU than the endpoints themselves. ``PlainRoutes`` indexes every such route by its exact path
and method and is placed first in the app, so a hot call costs one dict lookup and Starlette's plain
``request_response`` wrapper (which still applies the app's exception handlers). The APIRoutes stay
registered: they serve the OpenAPI document and match whatever the index does not hold.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


def plain_endpoint(route: APIRoute) -> Endpoint | None:
    """``route``'s endpoint as ``(Request) -> Response`` if FastAPI has nothing to do for it: an exact
    path, no parameters, dependencies or response model (the endpoint builds its own Response)."""
    d = route.dependant
    if (
        route.param_convertors
        or route.dependencies
        or route.response_model is not None
        or d.path_params
        or d.query_params
        or d.header_params
        or d.cookie_params
        or d.body_params
        or d.dependencies
    ):
        return None
    endpoint: Callable[..., Awaitable[Response]] = route.endpoint
    if d.request_param_name is None:  # e.g. the probes, which take nothing

        async def without_request(_: Request) -> Response:
            return await endpoint()

        return without_request
    first = next(iter(inspect.signature(endpoint).parameters.values()))
    # Starlette passes the Request positionally; a keyword-only one is left to FastAPI.
    return endpoint if first.name == d.request_param_name and first.kind != first.KEYWORD_ONLY else None


class PlainRoutes(BaseRoute):
    """The plain routes of some routers, matched by exact path and method (see the module doc)."""

    def __init__(self, routers: Iterable[APIRouter], *routes: BaseRoute) -> None:
        self._apps: dict[str, dict[str, ASGIApp]] = {}
        for route in [*routes, *(r for router in routers for r in router.routes)]:
            if isinstance(route, APIRoute) and (endpoint := plain_endpoint(route)) is not None:
                by_method = self._apps.setdefault(route.path, {})
                for method in route.methods or ():
                    # The first registration wins, as it would in FastAPI's own ordered matching.
                    by_method.setdefault(method, request_response(endpoint))

    def __len__(self) -> int:
        return sum(len(m) for m in self._apps.values())

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and (by_method := self._apps.get(scope["path"])) is not None:
            # PARTIAL (path known, method not): the router still looks for a FULL match elsewhere,
            # then lets handle() answer 405, as FastAPI's own routes do.
            return (Match.FULL if scope["method"] in by_method else Match.PARTIAL), {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        by_method = self._apps[scope["path"]]
        app = by_method.get(scope["method"])
        if app is None:
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(by_method))})
        await app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        from starlette.routing import NoMatchFound

        raise NoMatchFound(name, path_params)  # url_for resolves through the APIRoutes themselves
