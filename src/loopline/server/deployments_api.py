"""The deployment routes under ``/api/2.0/loopline/deployments``.

GET takes the query string, POST a JSON object; errors are 4xx ``{"error_code", "message"}`` (a
stale ``expected_revision`` is 409 ``INVALID_STATE``):

=================================================  =================================================
``GET  list?max_results=&page_token=``             ``{"deployments": [Deployment…],
                                                   "next_page_token"?}`` by name
``GET  get?name=``                                 ``{"deployment": Deployment}``
``GET  revision?name=``                            ``{"name", "revision"}``: what servers poll
``GET  revisions?name=&max_results=&page_token=``  ``{"revisions": [Revision…], "next_page_token"?}``
                                                   newest first
``POST set`` ``{"name", "routes": [{"model",       ``{"deployment": Deployment}``: a new revision
"weight"}], "shadow"?: {"model", "sample_rate"},   (or the same one, if nothing changed)
"sticky_header"?, "expected_revision"?,
"comment"?}``
``POST rollback`` ``{"name", "to_revision",        ``{"deployment": Deployment}``: a new revision
"expected_revision"?, "comment"?}``                with the spec of ``to_revision``
``POST delete`` ``{"name", "expected_revision"?}``  ``{}``
=================================================  =================================================

``Deployment`` and ``Revision`` are ``loopline.serving.types``' JSON shapes. Each request builds the
SQL store from the request's context, so model URIs resolve in this server's registry and old
``deployments/*.json`` files are imported from this server's artifact store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from loopline.server.http import (
    blocking,
    json_response,
    max_results,
    page_response,
    page_token,
    params,
    required_str,
)
from loopline.server.openapi_models import DocumentedRoute, Empty, Name, documented, whole_number
from loopline.server.state import context
from loopline.serving.sql_store import MAX_RESULTS, SqlDeploymentStore
from loopline.serving.types import (
    MAX_COMMENT,
    MAX_ROUTES,
    MAX_URI,
    DeploymentSpec,
    Route,
    Shadow,
    deployment_to_json,
    revision_to_json,
)

router = APIRouter(prefix="/api/2.0/loopline/deployments", tags=["deployments"], route_class=DocumentedRoute)


def _store(request: Request) -> SqlDeploymentStore:
    return SqlDeploymentStore(context(request))


# ---- typed shapes ------------------------------------------------------------------------------


class _Strict(BaseModel):
    # strict: "90" is not a weight; forbid: a misspelt field is an error, not silently ignored
    model_config = ConfigDict(extra="forbid", strict=True)


# The bounds below are documented (json_schema_extra) and checked by DeploymentSpec, whose refusals
# name the field and the fix; a pydantic constraint would answer first, with a bare "should be ≥ 0".
ModelUri = Annotated[
    str,
    Field(
        json_schema_extra={"minLength": 1, "maxLength": MAX_URI},
        description="models:/name/3, models:/name@alias, or a folder on the serving machine",
    ),
]
Comment = Annotated[str, Field(json_schema_extra={"maxLength": MAX_COMMENT})]
Revision = Annotated[
    int, Field(json_schema_extra={"minimum": 0, "maximum": 2**31 - 1}), BeforeValidator(whole_number)
]


class RouteIn(_Strict):
    model: ModelUri
    weight: float = Field(
        1.0,
        json_schema_extra={"minimum": 0},
        description="share of traffic: weight / sum of weights (some > 0)",
    )


class ShadowIn(_Strict):
    model: ModelUri
    sample_rate: float = Field(
        1.0,
        json_schema_extra={"minimum": 0, "maximum": 1},
        description="share of requests copied to the shadow",
    )


class SetRequest(_Strict):
    name: Name
    # Documented bounds; DeploymentSpec refuses an empty or too long list with its own words.
    routes: list[RouteIn] = Field(json_schema_extra={"minItems": 1, "maxItems": MAX_ROUTES})
    shadow: ShadowIn | None = None
    sticky_header: str | None = Field(
        None, json_schema_extra={"pattern": r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"}
    )
    expected_revision: Revision | None = Field(
        None, description="the revision you read (0: must not exist); another one is 409"
    )
    comment: Comment = ""


class RollbackRequest(_Strict):
    name: Name
    to_revision: Annotated[
        int, Field(json_schema_extra={"minimum": 1, "maximum": 2**31 - 1}), BeforeValidator(whole_number)
    ]
    expected_revision: Revision | None = None
    comment: Comment = ""


class DeleteRequest(_Strict):
    name: Name
    expected_revision: Revision | None = None


class PageQuery(BaseModel):
    max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 100
    page_token: str | None = Field(None, description="next_page_token of the previous page, as given")


class NameQuery(BaseModel):
    name: Name


class RevisionsQuery(PageQuery):
    name: Name


class SpecOut(BaseModel):
    name: str
    routes: list[dict[str, Any]]
    shadow: dict[str, Any] | None = None
    sticky_header: str | None = None


class DeploymentOut(BaseModel):
    name: str
    uri: str
    revision: int
    spec: SpecOut
    resolved: dict[str, str]
    created_ms: int
    created_by: str
    updated_ms: int
    updated_by: str


class RevisionOut(BaseModel):
    name: str
    revision: int
    spec: SpecOut
    resolved: dict[str, str]
    actor: str
    time_ms: int
    comment: str


class DeploymentResponse(BaseModel):
    deployment: DeploymentOut


class DeploymentsResponse(BaseModel):
    deployments: list[DeploymentOut] = []
    next_page_token: str | None = None


class RevisionResponse(BaseModel):
    name: str
    revision: int


class RevisionsResponse(BaseModel):
    revisions: list[RevisionOut] = []
    next_page_token: str | None = None


# ---- routes ------------------------------------------------------------------------------------


@router.get("/list", response_model=DeploymentsResponse)
@documented(PageQuery, errors=())
async def list_deployments(request: Request) -> Response:
    body = await params(request)
    n, token = max_results(body, 100, MAX_RESULTS), page_token(body)
    page = await blocking(lambda: _store(request).list_deployments(n, token))
    return page_response("deployments", [deployment_to_json(d) for d in page.items], page.next_page_token)


@router.get("/get", response_model=DeploymentResponse)
@documented(NameQuery)
async def get_deployment(request: Request) -> Response:
    name = required_str(await params(request), "name")
    d = await blocking(lambda: _store(request).get_deployment(name))
    return json_response({"deployment": deployment_to_json(d)})


@router.get("/revision", response_model=RevisionResponse)
@documented(NameQuery)
async def get_revision(request: Request) -> Response:
    name = required_str(await params(request), "name")
    return json_response(
        {"name": name, "revision": await blocking(lambda: _store(request).get_revision(name))}
    )


@router.get("/revisions", response_model=RevisionsResponse)
@documented(RevisionsQuery)
async def list_revisions(request: Request) -> Response:
    body = await params(request)
    name, n, token = required_str(body, "name"), max_results(body, 100, MAX_RESULTS), page_token(body)
    page = await blocking(lambda: _store(request).list_revisions(name, n, token))
    return page_response("revisions", [revision_to_json(r) for r in page.items], page.next_page_token)


@router.post("/set", response_model=DeploymentResponse)
@documented(errors=(404, 409))
async def set_deployment(req: SetRequest, request: Request) -> Response:
    spec = DeploymentSpec(  # checks every field, naming the one that is wrong (400)
        req.name,
        tuple(Route(r.model, r.weight) for r in req.routes),
        Shadow(req.shadow.model, req.shadow.sample_rate) if req.shadow is not None else None,
        req.sticky_header.lower() if req.sticky_header else None,
    )
    d = await blocking(
        lambda: _store(request).set_deployment(
            spec, expected_revision=req.expected_revision, comment=req.comment
        )
    )
    return json_response({"deployment": deployment_to_json(d)})


@router.post("/rollback", response_model=DeploymentResponse)
@documented(errors=(404, 409))
async def rollback(req: RollbackRequest, request: Request) -> Response:
    d = await blocking(
        lambda: _store(request).rollback(
            req.name, req.to_revision, expected_revision=req.expected_revision, comment=req.comment
        )
    )
    return json_response({"deployment": deployment_to_json(d)})


@router.post("/delete")
@documented(answer=Empty, errors=(404, 409))
async def delete_deployment(req: DeleteRequest, request: Request) -> Response:
    await blocking(
        lambda: _store(request).delete_deployment(req.name, expected_revision=req.expected_revision)
    )
    return json_response({})


__all__ = ["router"]
