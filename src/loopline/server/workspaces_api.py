"""The workspace routes under ``/api/2.0/loopline/workspaces``: list, create and show workspaces.

- ``GET workspaces`` → ``{"workspaces": [{name, description, created_at}]}``, by name.
- ``POST workspaces`` ``{name, description}`` → ``{"workspace": {...}}``: a new workspace with its
  Default experiment; 400 ``RESOURCE_ALREADY_EXISTS`` (as MLflow answers) if it exists: a workspace
  is also made on first use, by the first request whose ``Loopline-Workspace`` header names it.
- ``GET workspaces/<name>`` → ``{"workspace": {..., "counts": {kind: n}}}``: what it holds, per kind
  of object (404 if there is no such workspace).

These routes act on workspaces themselves, not inside one, so the request's own workspace plays no
part. With authentication, a caller sees only the workspaces they hold a role in (a server admin:
all); another workspace is "not found", as if it did not exist. Errors are
4xx JSON ``{"error_code", "message"}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from loopline.errors import NotFound
from loopline.names import WORKSPACE
from loopline.server.auth import identity_of
from loopline.server.http import blocking, json_response
from loopline.server.openapi_models import Answer, DocumentedRoute
from loopline.server.state import context, state
from loopline.tracking.workspaces import SqlWorkspaces, workspace_to_json

router = APIRouter(prefix="/api/2.0/loopline", tags=["workspaces"], route_class=DocumentedRoute)

# Documented here, checked by the store (check_name), whose refusal says what a name may hold.
WorkspaceName = Annotated[
    str, Field(description=WORKSPACE.hint, json_schema_extra={"pattern": f"^{WORKSPACE.pattern.pattern}$"})
]
WorkspacePath = Annotated[
    str, Path(description=WORKSPACE.hint, json_schema_extra={"pattern": f"^{WORKSPACE.pattern.pattern}$"})
]


class WorkspaceOut(Answer):
    name: str
    description: str
    created_at: int = Field(description="ms since the epoch")
    counts: dict[str, int] | None = Field(
        None, description="objects per kind (experiments, runs, registered_models, datasets, …): show only"
    )


class WorkspacesReply(Answer):
    workspaces: list[WorkspaceOut]


class WorkspaceReply(Answer):
    workspace: WorkspaceOut


class CreateWorkspace(BaseModel):
    name: WorkspaceName
    description: str = Field("", max_length=10_000)


def _store(request: Request) -> SqlWorkspaces:
    return SqlWorkspaces(state(request).context.engine, actor=context(request).actor)


@router.get("/workspaces", response_model=WorkspacesReply)
async def list_workspaces(request: Request) -> Response:
    items = await blocking(_store(request).list_workspaces)
    who = identity_of(request.scope)
    if who is not None:
        items = [w for w in items if who.role(w.name) is not None]
    return json_response({"workspaces": [workspace_to_json(w) for w in items]})


@router.post("/workspaces", response_model=WorkspaceReply)
async def create_workspace(body: CreateWorkspace, request: Request) -> Response:
    made = await blocking(_store(request).create_workspace, body.name, body.description)
    return json_response({"workspace": workspace_to_json(made)})


@router.get("/workspaces/{name}", response_model=WorkspaceReply)
async def get_workspace(name: WorkspacePath, request: Request) -> Response:
    who = identity_of(request.scope)
    if who is not None and who.role(name) is None:
        raise NotFound(f"Workspace {name!r} not found.", hint="`loopline workspaces list` shows yours.")
    found = await blocking(_store(request).get_workspace, name)
    return json_response({"workspace": workspace_to_json(found)})
