"""``AuthStore`` through ``loopline server``'s REST API (``server/auth_api.py``). Roles are granted
in the client's workspace, which its requests name."""

from __future__ import annotations

from typing import Any

from loopline.auth.types import (
    Role,
    RoleBinding,
    TokenInfo,
    User,
    binding_from_json,
    token_from_json,
    user_from_json,
)
from loopline.clock import now_ms
from loopline.errors import InvalidInput
from loopline.protocol.http import RestClient

API = "/api/2.0/loopline/auth"


class RestAuthStore:
    def __init__(self, client: RestClient) -> None:
        self.rest = client

    def create_user(self, name: str, *, password: str | None = None, is_admin: bool = False) -> User:
        body = {"name": name, "password": password, "is_admin": is_admin}
        return user_from_json(self.rest.call("POST", f"{API}/users/create", body)["user"])

    def list_users(self) -> list[User]:
        return [user_from_json(u) for u in self.rest.call("GET", f"{API}/users")["users"]]

    def update_user(
        self,
        name: str,
        *,
        password: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> User:
        body = {"name": name, "password": password, "is_admin": is_admin, "disabled": disabled}
        return user_from_json(self.rest.call("POST", f"{API}/users/update", body)["user"])

    def create_token(
        self, user: str, *, name: str, scope: Role = Role.ADMIN, expires_at: int | None = None
    ) -> tuple[TokenInfo, str]:
        expires_in = None
        if expires_at is not None:
            expires_in = (expires_at - now_ms()) // 1000
            if expires_in <= 0:
                raise InvalidInput("A token's expiry must lie in the future.")
        body = {"name": name, "user": user, "scope": str(scope), "expires_in_s": expires_in}
        answer = self.rest.call("POST", f"{API}/tokens/create", body)
        return token_from_json(answer["token"]), str(answer["secret"])

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        query = {"user": user} if user else None
        return [token_from_json(t) for t in self.rest.call("GET", f"{API}/tokens", query)["tokens"]]

    def revoke_token(self, token_id: int) -> TokenInfo:
        return token_from_json(self.rest.call("POST", f"{API}/tokens/revoke", {"id": token_id})["token"])

    def grant(self, user: str, workspace: str, role: Role, *, model: str = "") -> RoleBinding:
        self._same_workspace(workspace)
        body = {"user": user, "role": str(role), "model": model}
        return binding_from_json(self.rest.call("POST", f"{API}/roles/grant", body)["role"])

    def revoke(self, user: str, workspace: str, *, model: str = "") -> None:
        self._same_workspace(workspace)
        self.rest.call("POST", f"{API}/roles/revoke", {"user": user, "model": model})

    def bindings(self, *, user: str | None = None, workspace: str | None = None) -> list[RoleBinding]:
        if workspace is not None:
            self._same_workspace(workspace)
        query = {"user": user} if user else None
        return [binding_from_json(b) for b in self.rest.call("GET", f"{API}/roles", query)["roles"]]

    def whoami(self) -> dict[str, Any]:
        return self.rest.call("GET", f"{API}/whoami")

    def _same_workspace(self, workspace: str) -> None:
        named = self.rest.workspace or "default"
        if workspace != named:
            raise InvalidInput(
                f"Through a server, roles are managed in the client's workspace ({named!r}), "
                f"not {workspace!r}.",
                hint=f"Set LOOPLINE_WORKSPACE={workspace} (or pass -w {workspace}).",
            )
