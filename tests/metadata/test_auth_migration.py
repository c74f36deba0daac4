"""Migration 0013 (users, tokens, role bindings, web sessions) on a database at 0012 that holds data,
SQLite and PostgreSQL: it upgrades without touching the data, the identity store works on it (a
user, a token that signs in, a role), and it downgrades back to 0012."""

from __future__ import annotations

import sqlalchemy as sa

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.metadata.engine import current_revision, upgrade

TABLES = {"users", "api_tokens", "role_bindings", "user_sessions"}


def test_0013_upgrades_a_populated_0012_store_and_downgrades(store_uri: str) -> None:
    from metadata.test_idempotency_migration import _downgrade, _tables

    engine = sa.create_engine(store_uri)
    try:
        upgrade(engine, "0012")
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO workspaces (name, description, created_at) VALUES ('team', '', 1)")
            )
        assert not TABLES & _tables(engine)

        upgrade(engine)
        with engine.connect() as conn:
            assert current_revision(conn) == "0013"
        store = SqlAuthStore(engine)
        store.create_user("ann", password="long enough password")
        store.grant("ann", "team", Role.MAINTAINER, model="fraud")
        _, secret = store.create_token("ann", name="ci", scope=Role.EDITOR)
        who = store.token_identity(secret)
        assert who is not None and who.role("team", "fraud") is Role.EDITOR  # capped by the scope
        assert store.check_password("ann", "long enough password") is not None

        _downgrade(engine, "0012")
        assert not TABLES & _tables(engine)
        with engine.connect() as conn:
            assert current_revision(conn) == "0012"
            assert conn.execute(sa.text("SELECT count(*) FROM workspaces WHERE name = 'team'")).scalar() == 1
    finally:
        engine.dispose()
