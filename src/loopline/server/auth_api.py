"""Users, API tokens and roles under ``/api/2.0/loopline/auth`` (``auth.policy`` says who may call
which: users need a server admin, roles an admin of the workspace, tokens only a signed-in user, who
manages their own and, as a server admin, anyone's).

Roles are granted in the request's workspace (``Loopline-Workspace``, else the server's): the role
check of the middleware and the grant concern the same workspace, so an admin of one workspace can
never grant in another.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from loopline.auth.credentials import MIN_PASSWORD
from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Identity, Role, binding_to_json, token_to_json, user_to_json
from loopline.clock import now_ms
from loopline.errors import PermissionDenied
from loopline.server.auth import identity_of
from loopline.server.http import json_response
from loopline.server.openapi_models import Answer, DocumentedRoute, Empty, Name
from loopline.server.state import state, workspace

router = APIRouter(prefix="/api/2.0/loopline/auth", tags=["auth"], route_class=DocumentedRoute)

ROLE = "^(viewer|editor|maintainer|admin)$"
ROLE_TEXT = "viewer, editor, maintainer or admin"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Password = Annotated[str, Field(min_length=MIN_PASSWORD, description=f"at least {MIN_PASSWORD} characters")]


class UserCreate(_Body):
    name: Name
    password: Password | None = Field(None, description="None: a service account, which signs in with tokens")
    is_admin: bool = False


class UserUpdate(_Body):
    name: Name
    password: Password | None = None
    is_admin: bool | None = None
    disabled: bool | None = None


class TokenCreate(_Body):
    name: Name
    user: Name | None = Field(None, description="whose token (default: the caller's; others': admins only)")
    scope: str = Field("admin", description="the highest role the token may use", pattern=ROLE)
    expires_in_s: int | None = Field(None, gt=0, le=10 * 365 * 86400, description="None: never expires")


class TokenRevoke(_Body):
    id: int = Field(ge=1)


class RoleGrant(_Body):
    user: Name
    role: str = Field(pattern=ROLE, description=ROLE_TEXT)
    model: str = Field("", max_length=256, description="a registered model: the role applies to it only")


class RoleRevoke(_Body):
    user: Name
    model: str = Field("", max_length=256)


# ---- answers (documented in the OpenAPI; the routes serialise the same shapes by hand) ----------


class UserOut(Answer):
    id: int
    name: str
    is_admin: bool
    disabled: bool
    service_account: bool = Field(description="no password: signs in with tokens only")
    origin: str = Field(description="local, or oidc: made at a first sign-in through the identity provider")
    created_at: int = Field(description="ms since the epoch")


class TokenOut(Answer):
    id: int
    user: str
    name: str
    scope: str = Field(description=ROLE_TEXT + ": the highest role the token may use")
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None


class RoleOut(Answer):
    user: str
    workspace: str
    role: str = Field(description=ROLE_TEXT)
    model: str = Field(description='a registered model the role is bound to ("": the whole workspace)')


class ModelRoleOut(Answer):
    workspace: str
    model: str
    role: str


class WhoAmI(Answer):
    user: str
    auth: bool = Field(description="whether the server requires authentication")
    via: str | None = Field(None, description="token, basic, session or oidc")
    is_admin: bool | None = None
    scope: str | None = Field(None, description="a token's cap")
    workspace: str = Field(description="the request's workspace")
    role: str | None = Field(description="the caller's role in it (None: none)")
    roles: dict[str, str] = Field(description="workspace -> role")
    models: list[ModelRoleOut] | None = None


class UsersReply(Answer):
    users: list[UserOut]


class UserReply(Answer):
    user: UserOut


class TokensReply(Answer):
    tokens: list[TokenOut]


class TokenReply(Answer):
    token: TokenOut


class NewToken(Answer):
    token: TokenOut
    secret: str = Field(description="the token itself: shown this once, kept by the server only as SHA-256")


class RolesReply(Answer):
    roles: list[RoleOut]


class RoleReply(Answer):
    role: RoleOut


def _store(request: Request) -> SqlAuthStore:
    who = identity_of(request.scope)
    st = state(request)
    return st.auth.scoped(workspace=workspace(request), actor=who.user if who else None)


def _changed(request: Request) -> None:
    state(request).authenticator.forget()  # this replica at once; the others within CACHE_S


def _caller(request: Request) -> Identity | None:
    return identity_of(request.scope)


def _may_manage(request: Request, user: str) -> None:
    """A caller manages their own tokens; another user's only as a server admin (or with auth off)."""
    who = _caller(request)
    if who is not None and who.user != user and not who.is_admin:
        raise PermissionDenied(f"Only a server admin may manage the tokens of {user!r}.")


@router.get("/whoami", response_model=WhoAmI)
def whoami(request: Request) -> Response:
    """Who the server takes the caller for, and their roles."""
    who = _caller(request)
    ws = workspace(request)
    if who is None:  # auth off: everyone acts as the server's user
        actor = state(request).context.actor
        return json_response({"user": actor, "auth": False, "workspace": ws, "role": "admin", "roles": {}})
    role = who.role(ws)
    return json_response(
        {
            "user": who.user,
            "auth": True,
            "via": who.via,
            "is_admin": who.is_admin,
            "scope": str(who.scope),
            "workspace": ws,
            "role": None if role is None else str(role),
            "roles": {w: str(r) for w, r in sorted(who.roles.items())},
            "models": [
                {"workspace": w, "model": m, "role": str(r)} for (w, m), r in sorted(who.models.items())
            ],
        }
    )


@router.get("/users", response_model=UsersReply)
def list_users(request: Request) -> Response:
    return json_response({"users": [user_to_json(u) for u in _store(request).list_users()]})


@router.post("/users/create", response_model=UserReply)
def create_user(request: Request, body: UserCreate) -> Response:
    user = _store(request).create_user(body.name, password=body.password, is_admin=body.is_admin)
    return json_response({"user": user_to_json(user)})


@router.post("/users/update", response_model=UserReply)
def update_user(request: Request, body: UserUpdate) -> Response:
    user = _store(request).update_user(
        body.name, password=body.password, is_admin=body.is_admin, disabled=body.disabled
    )
    _changed(request)
    return json_response({"user": user_to_json(user)})


@router.get("/tokens", response_model=TokensReply)
def list_tokens(request: Request, user: str | None = None) -> Response:
    who = _caller(request)
    if who is not None and not who.is_admin:
        _may_manage(request, user or who.user)
        user = who.user
    return json_response({"tokens": [token_to_json(t) for t in _store(request).list_tokens(user)]})


@router.post("/tokens/create", response_model=NewToken)
def create_token(request: Request, body: TokenCreate) -> Response:
    who = _caller(request)
    user = body.user or (who.user if who else state(request).context.actor)
    _may_manage(request, user)
    scope = Role.parse(body.scope)
    if who is not None and who.user == user and not who.is_admin and scope > who.scope:
        raise PermissionDenied(f"A token of scope {who.scope} cannot make one of scope {scope}.")
    expires = None if body.expires_in_s is None else now_ms() + body.expires_in_s * 1000
    info, secret = _store(request).create_token(user, name=body.name, scope=scope, expires_at=expires)
    return json_response({"token": token_to_json(info), "secret": secret})


@router.post("/tokens/revoke", response_model=TokenReply)
def revoke_token(request: Request, body: TokenRevoke) -> Response:
    store = _store(request)
    _may_manage(request, store.get_token(body.id).user)
    info = store.revoke_token(body.id)
    _changed(request)
    return json_response({"token": token_to_json(info)})


@router.get("/roles", response_model=RolesReply)
def list_roles(request: Request, user: str | None = None) -> Response:
    bindings = _store(request).bindings(user=user, workspace=workspace(request))
    return json_response({"roles": [binding_to_json(b) for b in bindings]})


@router.post("/roles/grant", response_model=RoleReply)
def grant(request: Request, body: RoleGrant) -> Response:
    binding = _store(request).grant(body.user, workspace(request), Role.parse(body.role), model=body.model)
    _changed(request)
    return json_response({"role": binding_to_json(binding)})


@router.post("/roles/revoke", response_model=Empty)
def revoke(request: Request, body: RoleRevoke) -> Response:
    _store(request).revoke(body.user, workspace(request), model=body.model)
    _changed(request)
    return json_response({})
