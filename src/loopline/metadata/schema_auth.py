"""Who may do what (migration 0013), on the shared MetaData of ``loopline.metadata.schema``.

- ``users``: people and service accounts. A password is stored only as a scrypt hash; a service
  account has none and signs in with tokens. ``is_admin`` marks the server's administrators, who
  manage users and hold every role in every workspace.
- ``api_tokens``: a token is shown once, when made; only its SHA-256 is kept (a token is 256 random
  bits, so a fast hash is enough: nothing to brute-force). Revoked and expired tokens stay, for audit.
- ``role_bindings``: a user's role in a workspace (``model`` = ``""``), or on one registered model of
  it, which overrides the workspace role for that model.
- ``user_sessions``: the web UI's sign-ins: the SHA-256 of the cookie, when it ends, and the CSRF token
  its forms send back.

Users are global (one identity across workspaces); their roles are per workspace.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from loopline.metadata.schema_base import BigId, metadata

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),  # NULL: a service account (tokens only)
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # "local" (made here: a password or a service account) or "oidc" (made at a first OIDC sign-in):
    # a token from the identity provider signs in only as an "oidc" user, never as a local one of
    # the same name (an admin, or the loop's service account).
    Column("origin", String(16), nullable=False, default="local"),
    Column("created_at", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("scope", String(16), nullable=False),  # the highest role the token may use
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),  # NULL: never
    Column("revoked_at", BigInteger, nullable=True),
    Index(None, "user_id"),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("workspace", String(63), nullable=False),
    Column("model", String(256), nullable=False, default=""),  # "": the whole workspace
    Column("role", String(16), nullable=False),
    UniqueConstraint("user_id", "workspace", "model"),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)
