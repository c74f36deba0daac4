"""The values of authentication and authorisation: roles, users, tokens, and who a request is."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput


class Role(enum.IntEnum):
    """What a user may do in a workspace; each role may do what the ones below it may."""

    VIEWER = 1  # read everything in the workspace
    EDITOR = 2  # create and change experiments, runs, datasets, features, pipelines, models, monitors
    MAINTAINER = 3  # move aliases, promote, roll back, approve, change deployments
    ADMIN = 4  # grant and revoke roles in the workspace

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            choices = ", ".join(r.name.lower() for r in cls)
            raise InvalidInput(f"Unknown role {name!r}.", hint=f"Use one of: {choices}.") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool
    disabled: bool
    has_password: bool  # False: a service account, which signs in with tokens only
    created_at: int
    origin: str = "local"  # or "oidc": made at a first sign-in through the identity provider


@dataclass(frozen=True)
class TokenInfo:
    """An API token as listed: everything but the secret, which only its creator ever sees."""

    id: int
    user: str
    name: str
    scope: Role  # the highest role the token may use, whatever its user's roles
    created_at: int
    expires_at: int | None
    revoked_at: int | None


@dataclass(frozen=True)
class RoleBinding:
    user: str
    workspace: str
    role: Role
    model: str = ""  # a registered model's name: this role overrides the workspace's for that model


@dataclass(frozen=True)
class Identity:
    """Who a request is, once authenticated: the user, how they proved it, and their roles."""

    user: str
    is_admin: bool
    via: str  # "token", "basic", "session", "oidc"
    roles: dict[str, Role] = field(default_factory=dict)  # workspace → role
    models: dict[tuple[str, str], Role] = field(default_factory=dict)  # (workspace, model) → role
    scope: Role = Role.ADMIN  # a token's cap
    csrf: str = ""  # a web session's: state-changing requests must send it back

    def role(self, workspace: str, model: str | None = None) -> Role | None:
        """The role this identity acts with in ``workspace`` (on ``model``, when it has an override)."""
        if self.is_admin:
            found: Role | None = Role.ADMIN
        else:
            found = self.roles.get(workspace)
            if model is not None:
                found = self.models.get((workspace, model), found)
        return None if found is None else Role(min(found, self.scope))


# ---- JSON shapes of the REST API (server/auth_api.py ↔ auth/rest_store.py) ---------------------


def user_to_json(u: User) -> dict[str, object]:
    return {
        "id": u.id,
        "name": u.name,
        "is_admin": u.is_admin,
        "disabled": u.disabled,
        "service_account": not u.has_password,
        "origin": u.origin,
        "created_at": u.created_at,
    }


def user_from_json(d: dict[str, Any]) -> User:
    return User(
        id=int(d["id"]), name=d["name"], is_admin=bool(d["is_admin"]), disabled=bool(d["disabled"]),
        has_password=not d["service_account"], created_at=int(d["created_at"]),
        origin=d.get("origin", "local"),
    )  # fmt: skip


def token_to_json(t: TokenInfo) -> dict[str, object]:
    return {
        "id": t.id,
        "user": t.user,
        "name": t.name,
        "scope": str(t.scope),
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
    }


def token_from_json(d: dict[str, Any]) -> TokenInfo:
    return TokenInfo(
        id=int(d["id"]), user=d["user"], name=d["name"], scope=Role.parse(d["scope"]),
        created_at=int(d["created_at"]), expires_at=d.get("expires_at"), revoked_at=d.get("revoked_at"),
    )  # fmt: skip


def binding_to_json(b: RoleBinding) -> dict[str, object]:
    return {"user": b.user, "workspace": b.workspace, "role": str(b.role), "model": b.model}


def binding_from_json(d: dict[str, Any]) -> RoleBinding:
    return RoleBinding(user=d["user"], workspace=d["workspace"], role=Role.parse(d["role"]), model=d["model"])


def identity_from_json(d: dict[str, Any]) -> Identity:
    """An identity as ``GET auth/whoami`` tells it."""
    return Identity(
        user=d["user"], is_admin=bool(d.get("is_admin")), via=d.get("via", ""),
        roles={w: Role.parse(r) for w, r in d.get("roles", {}).items()},
        models={(m["workspace"], m["model"]): Role.parse(m["role"]) for m in d.get("models", [])},
        scope=Role.parse(d.get("scope", "admin")),
    )  # fmt: skip
