"""What the CLI and clients need of the identity store, and ``open_auth_store`` that picks one:
``SqlAuthStore`` on a database (how the first admin is made, on the server's own database),
``RestAuthStore`` through ``loopline server``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from loopline.auth.types import Role, RoleBinding, TokenInfo, User
    from loopline.context import Context


class AuthStore(Protocol):
    def create_user(self, name: str, *, password: str | None = None, is_admin: bool = False) -> User: ...
    def list_users(self) -> list[User]: ...
    def update_user(
        self,
        name: str,
        *,
        password: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> User: ...
    def create_token(
        self, user: str, *, name: str, scope: Role, expires_at: int | None = None
    ) -> tuple[TokenInfo, str]: ...
    def list_tokens(self, user: str | None = None) -> list[TokenInfo]: ...
    def revoke_token(self, token_id: int) -> TokenInfo: ...
    def grant(self, user: str, workspace: str, role: Role, *, model: str = "") -> RoleBinding: ...
    def revoke(self, user: str, workspace: str, *, model: str = "") -> None: ...
    def bindings(self, *, user: str | None = None, workspace: str | None = None) -> list[RoleBinding]: ...
    def whoami(self) -> dict[str, Any]: ...


def open_auth_store(context: Context) -> AuthStore:
    if context.is_remote:
        from loopline.auth.rest_store import RestAuthStore

        return RestAuthStore(context.http)
    from loopline.auth.sql_store import SqlAuthStore

    return SqlAuthStore(context.engine, workspace=context.workspace, actor=context.actor)
