"""The loop's routes under ``/api/2.0/loopline/automation``, and its controller inside the server.

GET takes the query string, POST a JSON object; errors are 4xx ``{"error_code", "message"}``:

=====================================================  =============================================
``GET  policies/list``                                 ``{"policies": [Policy…]}`` by name
``GET  policies/get?name=``                            ``{"policy": Policy}``
``POST policies/put`` ``{"policy": Policy}``           ``{"policy": Policy, "changed": bool}``
``POST policies/delete`` ``{"name"}``                  ``{}``
``POST applies/record`` ``{"source", "changes"}``     ``{}``: the ``loop.apply`` event of one apply
``POST triggers/add`` ``{"policy", "kind",             ``{}``: a reason to retrain, queued
"source_event"?, "change_ms"?}``
``GET  rollouts/list?policy=&active=&limit=``          ``{"rollouts": [Rollout…]}`` newest first
``GET  rollouts/get?id=``                              ``{"rollout": Rollout}``
``POST rollouts/approve`` ``{"id", "reason"}``         ``{"rollout": Rollout}``; 409 unless it waits
=====================================================  =============================================

``Policy`` and ``Rollout`` are ``loopline.automation.types``' JSON shapes. While the server runs, the
loop's controllers, one per workspace and for every workspace (``automation/workspaces.py``), tick
every ``LOOPLINE_CONTROLLER_INTERVAL`` seconds on a thread of their own (``0``: off); several server
processes and replicas share the work through each workspace's leases.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.automation import types
from loopline.automation.sql_store import SqlAutomationStore
from loopline.automation.types import policy_from_json, policy_to_json, rollout_to_json
from loopline.clock import now_ms
from loopline.errors import AlreadyExists, InvalidInput
from loopline.server.automation_models import PolicyIn
from loopline.server.http import (
    blocking,
    json_response,
    optional_int,
    optional_str,
    params,
    required_str,
)
from loopline.server.openapi_models import DocumentedRoute, Empty, Name, documented, whole_number
from loopline.server.state import context

log = logging.getLogger("loopline.server")
router = APIRouter(prefix="/api/2.0/loopline/automation", tags=["automation"], route_class=DocumentedRoute)
TRIGGER_KINDS = (*types.TRIGGER_KINDS, "manual")  # `loopline retrain` asks by hand


def _store(request: Request) -> SqlAutomationStore:
    return SqlAutomationStore(context(request))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


MAX_ID = 2**62  # ids and times are 64-bit in the store
Id = Annotated[int, Field(json_schema_extra={"minimum": 1, "maximum": MAX_ID}), BeforeValidator(whole_number)]
Count = Annotated[
    int, Field(json_schema_extra={"minimum": 0, "maximum": MAX_ID}), BeforeValidator(whole_number)
]


class PutPolicy(_Strict):
    policy: PolicyIn = Field(description="a policy (docs/loop.md lists its fields)")


class RecordApply(_Strict):
    source: str = Field(
        json_schema_extra={"minLength": 1, "maxLength": 400}, description="the applied file's name"
    )
    changes: dict[str, list[str]] = Field(description="created / changed / deleted: the object URIs")


class DeletePolicy(_Strict):
    name: Name


class AddTrigger(_Strict):
    policy: Name
    kind: str = Field("manual", json_schema_extra={"enum": list(TRIGGER_KINDS)})
    source_event: Count | None = None
    change_ms: Count | None = Field(
        None, description="when the change that asks for it happened (default now)"
    )


class Approve(_Strict):
    id: Id
    reason: str = Field(json_schema_extra={"minLength": 1, "maxLength": 2000})


class NameQuery(BaseModel):
    name: Name


class RolloutsQuery(BaseModel):
    policy: str | None = None
    active: bool | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class IdQuery(BaseModel):
    id: Id


class PolicyOut(BaseModel):
    policy: dict[str, Any]
    changed: bool | None = None


class PoliciesOut(BaseModel):
    policies: list[dict[str, Any]] = []


class RolloutOut(BaseModel):
    rollout: dict[str, Any]


class RolloutsOut(BaseModel):
    rollouts: list[dict[str, Any]] = []


@router.get("/policies/list", response_model=PoliciesOut)
@documented(errors=())
async def list_policies(request: Request) -> Response:
    found = await blocking(_store(request).list_policies)
    return json_response({"policies": [policy_to_json(p) for p in found]})


@router.get("/policies/get", response_model=PolicyOut)
@documented(NameQuery)
async def get_policy(request: Request) -> Response:
    name = required_str(await params(request), "name")
    return json_response({"policy": policy_to_json(await blocking(_store(request).get_policy, name))})


@router.post("/policies/put", response_model=PolicyOut)
@documented(errors=())
async def put_policy(req: PutPolicy, request: Request) -> Response:
    policy = policy_from_json(req.policy.model_dump())  # every field checked, the wrong one named (400)
    stored, changed = await blocking(_store(request).put_policy, policy)
    return json_response({"policy": policy_to_json(stored), "changed": changed})


@router.post("/policies/delete")
@documented(answer=Empty)
async def delete_policy(req: DeletePolicy, request: Request) -> Response:
    await blocking(_store(request).delete_policy, req.name)
    return json_response({})


@router.post("/applies/record")
@documented(answer=Empty, errors=())
async def record_apply(req: RecordApply, request: Request) -> Response:
    if not req.source.strip() or len(req.source) > 400:
        raise InvalidInput("'source' must name the applied file (at most 400 characters).")
    await blocking(_store(request).record_apply, req.source, req.changes)
    return json_response({})


@router.post("/triggers/add")
@documented(answer=Empty)
async def add_trigger(req: AddTrigger, request: Request) -> Response:
    if req.kind not in TRIGGER_KINDS:
        raise InvalidInput(
            f"Unknown trigger kind {req.kind!r}.", hint="Use " + ", ".join(TRIGGER_KINDS) + "."
        )
    store, change_ms = _store(request), req.change_ms or now_ms()
    await blocking(
        lambda: store.add_trigger(req.policy, req.kind, source_event=req.source_event, change_ms=change_ms)
    )
    return json_response({})


def _flag(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "false", "0"):
        return str(value).lower() in ("true", "1")
    raise InvalidInput(f"Invalid value {value!r} for '{name}'.", hint="Use true or false.")


@router.get("/rollouts/list", response_model=RolloutsOut)
@documented(RolloutsQuery, errors=())
async def list_rollouts(request: Request) -> Response:
    body = await params(request)
    policy, active = optional_str(body, "policy"), _flag(body.get("active"), "active")
    limit = optional_int(body, "limit", 100)
    if limit is None or not 1 <= limit <= 1000:
        raise InvalidInput(f"Invalid value {limit} for 'limit': it must be between 1 and 1000.")
    found = await blocking(lambda: _store(request).list_rollouts(policy=policy, active=active, limit=limit))
    return json_response({"rollouts": [rollout_to_json(r) for r in found]})


@router.get("/rollouts/get", response_model=RolloutOut)
@documented(IdQuery)
async def get_rollout(request: Request) -> Response:
    rollout_id = optional_int(await params(request), "id")
    if rollout_id is None or not 1 <= rollout_id <= MAX_ID:
        raise InvalidInput("'id' must be a rollout's id (a positive whole number).", hint="loopline rollouts")
    return json_response(
        {"rollout": rollout_to_json(await blocking(_store(request).get_rollout, rollout_id))}
    )


@router.post("/rollouts/approve", response_model=RolloutOut)
@documented(errors=(404, 409))
async def approve(req: Approve, request: Request) -> Response:
    done = await blocking(_store(request).approve, req.id, req.reason)
    return json_response({"rollout": rollout_to_json(done)})


@contextlib.asynccontextmanager
async def background(app: FastAPI) -> AsyncIterator[None]:
    """The loop's controllers of every workspace, on a thread of their own while the server is up
    (entered by the lifespan): ``automation/workspaces.py`` says how a tick finds the work."""
    from loopline.automation.controller import Controller
    from loopline.automation.workspaces import WorkspaceControllers

    state = app.state.loopline
    interval = state.settings.controller_interval
    if interval <= 0:
        yield
        return
    auth = state.auth if state.settings.auth else None
    # With auth, the loop acts in each workspace as its own service account, with the role it was
    # granted there; one holder name for the process (leases are per workspace and key).
    actor = CONTROLLER_ACCOUNT if auth is not None else None
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def make(workspace: str) -> Controller:
        context = state.context.scoped(workspace=workspace, actor=actor)
        authorize = None if auth is None else _controller_role_check(auth, workspace)
        # confined: policies come from clients, so only pipeline files under the configured roots run
        return Controller(context, holder=holder, confined=True, authorize=authorize)

    controllers = WorkspaceControllers(state.context.engine, make)
    stop = threading.Event()
    thread = threading.Thread(
        target=controllers.run, args=(stop, interval), name="loopline-controller", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


CONTROLLER_ACCOUNT = "loopline-controller"


def _controller_role_check(auth: SqlAuthStore, workspace: str) -> Callable[[], str | None]:
    """Whether the loop's service account may move production in ``workspace`` (a maintainer's
    work), read at most every 10 s; the account is made, without a role, on first start."""
    with contextlib.suppress(AlreadyExists):
        auth.create_user(CONTROLLER_ACCOUNT)
    checked: list[tuple[float, str | None]] = []

    def authorize() -> str | None:
        if checked and checked[0][0] > time.monotonic():
            return checked[0][1]
        who = auth.identity(CONTROLLER_ACCOUNT, via="service")
        role = None if who is None else who.role(workspace)
        why = None
        if role is None or role < Role.MAINTAINER:
            why = (
                f"the loop's service account {CONTROLLER_ACCOUNT!r} is {role or 'without a role'} in "
                f"workspace {workspace!r} and needs maintainer: "
                f"loopline roles grant {CONTROLLER_ACCOUNT} maintainer -w {workspace}"
            )
        checked[:] = [(time.monotonic() + 10.0, why)]
        return why

    return authorize


__all__ = ["background", "router"]
