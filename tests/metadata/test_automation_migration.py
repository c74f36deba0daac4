"""Migration 0012 (the loop's tables) on a database at 0011 that holds data, SQLite and PostgreSQL:
it upgrades without touching the data, the new tables work (a rollout row, a lease's primary key),
and it downgrades back to 0011."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from loopline.metadata.engine import current_revision, upgrade
from loopline.metadata.schema_automation import automation_leases, automation_rollouts

TABLES = {
    "automation_policies",
    "automation_rollouts",
    "automation_triggers",
    "automation_leases",
    "automation_cursor",
}


def test_0012_upgrades_a_populated_0011_store_and_downgrades(store_uri: str) -> None:
    from metadata.test_idempotency_migration import _downgrade, _tables

    engine = sa.create_engine(store_uri)
    try:
        upgrade(engine, "0011")
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO workspaces (name, description, created_at) VALUES ('team', '', 1)")
            )
        assert not TABLES & _tables(engine)

        upgrade(engine, "0012")
        assert _tables(engine) >= TABLES
        with engine.begin() as conn:
            assert current_revision(conn) == "0012"
            assert conn.execute(sa.text("SELECT name FROM workspaces WHERE name = 'team'")).scalar() == "team"
            conn.execute(
                sa.insert(automation_rollouts).values(
                    workspace="team", policy="p", deployment="d", state="training", step=-1,
                    step_started_ms=1, candidate="", champion="", base_revision=1, pipeline_run="",
                    trigger="{}", verdict="{}", reason="", created_ms=1, updated_ms=1,
                )
            )  # fmt: skip
            conn.execute(
                sa.insert(automation_leases).values(workspace="team", key="k", holder="a", expires_ms=1)
            )
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                sa.insert(automation_leases).values(workspace="team", key="k", holder="b", expires_ms=2)
            )

        _downgrade(engine, "0011")
        assert not TABLES & _tables(engine)
        with engine.connect() as conn:
            assert current_revision(conn) == "0011"
            assert conn.execute(sa.text("SELECT count(*) FROM workspaces WHERE name = 'team'")).scalar() == 1
    finally:
        engine.dispose()
