"""Users, API tokens, role bindings and web sessions in the metadata database.

Users are global; their roles are bound per workspace (and per registered model, which overrides the
workspace's role for that model). Every change is an event in the audit trail, recorded in the
workspace it concerns (user and token changes in the store's own workspace).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from loopline.auth import credentials
from loopline.auth.types import Identity, Role, RoleBinding, TokenInfo, User
from loopline.clock import now_ms
from loopline.errors import AlreadyExists, InvalidInput, NotFound
from loopline.metadata import schema_auth as t
from loopline.metadata.base import SqlStore
from loopline.names import WORKSPACE, check_name

SESSION_TTL_MS = 12 * 3600 * 1000  # a web sign-in lasts a working day


class SqlAuthStore(SqlStore):
    """Identities and their roles: one per database, whichever workspace the caller acts in."""

    # ---- users ------------------------------------------------------------------------------

    def create_user(
        self, name: str, *, password: str | None = None, is_admin: bool = False, origin: str = "local"
    ) -> User:
        """A user; without a password, a service account that signs in with tokens only (``origin``
        "oidc": one the identity provider vouches for, made at their first sign-in)."""
        name = check_name("user", name)
        with self._write() as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.name == name)).first() is not None:
                raise AlreadyExists(f"User {name!r} exists already.")
            conn.execute(
                insert(t.users).values(
                    name=name, password_hash=_hashed(password), is_admin=is_admin, disabled=False,
                    origin=origin, created_at=now_ms(),
                )
            )  # fmt: skip
            self._event(conn, "user.created", f"users:/{name}", is_admin=is_admin, origin=origin)
            return _user(self._user_row(conn, name))

    def get_user(self, name: str) -> User:
        with self.engine.connect() as conn:
            return _user(self._user_row(conn, name))

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(t.users).order_by(t.users.c.name))]

    def count_users(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.users)).scalar_one())

    def update_user(
        self, name: str, *, password: str | None = None, is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> User:  # fmt: skip
        """Change a user's password, admin flag or disabled flag (a disabled user's tokens and
        sessions stop working at once; they come back if the user is enabled again)."""
        values: dict[str, object] = {}
        if password is not None:
            values["password_hash"] = _hashed(password)
        if is_admin is not None:
            values["is_admin"] = is_admin
        if disabled is not None:
            values["disabled"] = disabled
        with self._write() as conn:
            self._user_row(conn, name)
            if values:
                conn.execute(update(t.users).where(t.users.c.name == name).values(**values))
                if password is not None:  # a new password ends every web session of the old one
                    uid = select(t.users.c.id).where(t.users.c.name == name).scalar_subquery()
                    conn.execute(delete(t.user_sessions).where(t.user_sessions.c.user_id == uid))
                changed = {k: v for k, v in values.items() if k != "password_hash"}
                self._event(conn, "user.updated", f"users:/{name}", password=password is not None, **changed)
            return _user(self._user_row(conn, name))

    def check_password(self, name: str, password: str) -> Identity | None:
        """The identity of ``name`` if ``password`` is theirs and they are enabled, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
            if row is None or row.disabled or not row.password_hash:
                credentials.verify_password(password, _dummy_hash())  # the same time for unknown users
                return None
            if not credentials.verify_password(password, row.password_hash):
                return None
            return self._identity(conn, row, via="basic")

    # ---- tokens -----------------------------------------------------------------------------

    def create_token(
        self, user: str, *, name: str, scope: Role = Role.ADMIN, expires_at: int | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token of ``user`` and its secret, which is not kept and cannot be shown again."""
        if expires_at is not None and expires_at <= now_ms():
            raise InvalidInput("A token's expiry must lie in the future.")
        secret = credentials.new_token()
        with self._write() as conn:
            uid = self._user_row(conn, user).id
            new_id = conn.execute(
                insert(t.api_tokens).values(
                    user_id=uid, name=check_name("token", name), sha256=credentials.sha256(secret),
                    scope=scope.name.lower(), created_at=now_ms(), expires_at=expires_at,
                ).returning(t.api_tokens.c.id)
            ).scalar_one()  # fmt: skip
            self._event(
                conn, "token.created", f"users:/{user}", token=int(new_id), name=name, scope=str(scope)
            )
            return self._token(conn, int(new_id)), secret

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self.engine.connect() as conn:
            query = _TOKENS.order_by(t.api_tokens.c.id)
            if user is not None:
                query = query.where(t.users.c.name == user)
            return [_token_info(r) for r in conn.execute(query)]

    def get_token(self, token_id: int) -> TokenInfo:
        with self.engine.connect() as conn:
            return self._token(conn, token_id)

    def revoke_token(self, token_id: int) -> TokenInfo:
        with self._write() as conn:
            info = self._token(conn, token_id)
            if info.revoked_at is None:
                conn.execute(
                    update(t.api_tokens).where(t.api_tokens.c.id == token_id).values(revoked_at=now_ms())
                )
                self._event(conn, "token.revoked", f"users:/{info.user}", token=token_id)
            return self._token(conn, token_id)

    def token_identity(self, secret: str) -> Identity | None:
        """The identity a token secret stands for, if it is live and its user enabled."""
        with self.engine.connect() as conn:
            tok = conn.execute(
                select(t.api_tokens).where(t.api_tokens.c.sha256 == credentials.sha256(secret))
            ).first()
            now = now_ms()
            if (
                tok is None
                or tok.revoked_at is not None
                or (tok.expires_at is not None and tok.expires_at <= now)
            ):
                return None
            row = conn.execute(select(t.users).where(t.users.c.id == tok.user_id)).first()
            if row is None or row.disabled:
                return None
            return self._identity(conn, row, via="token", scope=Role.parse(tok.scope))

    # ---- roles ------------------------------------------------------------------------------

    def grant(self, user: str, workspace: str, role: Role, *, model: str = "") -> RoleBinding:
        """Give ``user`` ``role`` in ``workspace`` (on ``model`` only, when named); replaces a former one."""
        workspace = check_name("workspace", workspace, WORKSPACE)
        with self._write() as conn:
            uid = self._user_row(conn, user).id
            stmt = self._insert(conn, t.role_bindings).values(
                user_id=uid, workspace=workspace, model=model, role=role.name.lower()
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["user_id", "workspace", "model"], set_={"role": role.name.lower()}
                )
            )
            self.scoped(workspace=workspace)._event(
                conn, "role.granted", f"users:/{user}", role=str(role), model=model
            )
            return RoleBinding(user=user, workspace=workspace, role=role, model=model)

    def revoke(self, user: str, workspace: str, *, model: str = "") -> None:
        with self._write() as conn:
            uid = self._user_row(conn, user).id
            gone = conn.execute(
                delete(t.role_bindings).where(
                    t.role_bindings.c.user_id == uid,
                    t.role_bindings.c.workspace == workspace,
                    t.role_bindings.c.model == model,
                )
            ).rowcount
            if not gone:
                on = f" on model {model!r}" if model else ""
                raise NotFound(f"User {user!r} has no role in workspace {workspace!r}{on}.")
            self.scoped(workspace=workspace)._event(conn, "role.revoked", f"users:/{user}", model=model)

    def bindings(self, *, user: str | None = None, workspace: str | None = None) -> list[RoleBinding]:
        query = (
            select(
                t.users.c.name, t.role_bindings.c.workspace, t.role_bindings.c.role, t.role_bindings.c.model
            )
            .join(t.users, t.users.c.id == t.role_bindings.c.user_id)
            .order_by(t.role_bindings.c.workspace, t.users.c.name, t.role_bindings.c.model)
        )
        if user is not None:
            query = query.where(t.users.c.name == user)
        if workspace is not None:
            query = query.where(t.role_bindings.c.workspace == workspace)
        with self.engine.connect() as conn:
            return [
                RoleBinding(user=r.name, workspace=r.workspace, role=Role.parse(r.role), model=r.model)
                for r in conn.execute(query)
            ]

    # ---- web sessions -----------------------------------------------------------------------

    def create_session(self, identity: Identity) -> tuple[str, str]:
        """A web session for a signed-in user: the cookie's secret and the CSRF token."""
        secret, csrf = credentials.new_secret(), credentials.new_secret()
        now = now_ms()
        with self._write() as conn:
            uid = self._user_row(conn, identity.user).id
            conn.execute(delete(t.user_sessions).where(t.user_sessions.c.expires_at <= now))
            conn.execute(
                insert(t.user_sessions).values(
                    sha256=credentials.sha256(secret), user_id=uid, csrf=csrf, created_at=now,
                    expires_at=now + SESSION_TTL_MS,
                )
            )  # fmt: skip
            self._event(conn, "user.signed_in", f"users:/{identity.user}", via=identity.via)
        return secret, csrf

    def session_identity(self, secret: str) -> Identity | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(t.user_sessions, t.users)
                .join(t.users, t.users.c.id == t.user_sessions.c.user_id)
                .where(t.user_sessions.c.sha256 == credentials.sha256(secret))
            ).first()
            if found is None or found.expires_at <= now_ms() or found.disabled:
                return None
            user = conn.execute(select(t.users).where(t.users.c.id == found.user_id)).one()
            return self._identity(conn, user, via="session", csrf=found.csrf)

    def end_session(self, secret: str) -> None:
        with self._write() as conn:
            conn.execute(
                delete(t.user_sessions).where(t.user_sessions.c.sha256 == credentials.sha256(secret))
            )

    def whoami(self) -> dict[str, Any]:
        """On the database itself there is no sign-in: whoever holds it acts as its admin."""
        return {"user": self.actor, "auth": False, "workspace": self.workspace, "role": "admin", "roles": {}}

    # ---- helpers ----------------------------------------------------------------------------

    def identity(self, name: str, *, via: str, origin: str | None = None) -> Identity | None:
        """The identity of an enabled user found by name (of that ``origin``, when given: a verified
        OIDC token names an "oidc" user, never a local one)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
            if row is None or row.disabled or (origin is not None and row.origin != origin):
                return None
            return self._identity(conn, row, via=via)

    def _identity(
        self,
        conn: Connection,
        user: Row[tuple[object, ...]],
        *,
        via: str,
        scope: Role = Role.ADMIN,
        csrf: str = "",
    ) -> Identity:
        roles: dict[str, Role] = {}
        models: dict[tuple[str, str], Role] = {}
        rows = conn.execute(
            select(t.role_bindings.c.workspace, t.role_bindings.c.model, t.role_bindings.c.role).where(
                t.role_bindings.c.user_id == user.id
            )
        )
        for r in rows:
            if r.model:
                models[(r.workspace, r.model)] = Role.parse(r.role)
            else:
                roles[r.workspace] = Role.parse(r.role)
        return Identity(
            user=str(user.name), is_admin=bool(user.is_admin), via=via, roles=roles, models=models,
            scope=scope, csrf=csrf,
        )  # fmt: skip

    @staticmethod
    def _user_row(conn: Connection, name: str) -> Row[tuple[object, ...]]:
        row = conn.execute(select(t.users).where(t.users.c.name == name)).first()
        if row is None:
            raise NotFound(f"User {name!r} not found.", hint="`loopline users list` shows them.")
        return row

    @staticmethod
    def _token(conn: Connection, token_id: int) -> TokenInfo:
        row = conn.execute(_TOKENS.where(t.api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"Token {token_id} not found.", hint="`loopline tokens list` shows them.")
        return _token_info(row)


_TOKENS = select(t.api_tokens, t.users.c.name.label("user_name")).join(
    t.users, t.users.c.id == t.api_tokens.c.user_id
)


@functools.cache
def _dummy_hash() -> str:
    return credentials.hash_password("not anyone's password")


def _hashed(password: str | None) -> str | None:
    if password is None:
        return None
    if len(password) < credentials.MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {credentials.MIN_PASSWORD} characters.")
    return credentials.hash_password(password)


def _user(row: Row[tuple[object, ...]]) -> User:
    return User(
        id=int(row.id), name=str(row.name), is_admin=bool(row.is_admin), disabled=bool(row.disabled),
        has_password=row.password_hash is not None, created_at=int(row.created_at), origin=str(row.origin),
    )  # fmt: skip


def _token_info(row: Row[tuple[object, ...]]) -> TokenInfo:
    return TokenInfo(
        id=int(row.id), user=str(row.user_name), name=str(row.name), scope=Role.parse(str(row.scope)),
        created_at=int(row.created_at), expires_at=row.expires_at, revoked_at=row.revoked_at,
    )  # fmt: skip
