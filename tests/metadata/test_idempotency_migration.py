"""Migration 0011 (``idempotency_keys``) on a database at 0010 that holds data, SQLite and PostgreSQL:
it upgrades without touching the data, its primary key makes a second claim of a key fail, and it
downgrades back to 0010."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from loopline.metadata import engine as metadata_engine
from loopline.metadata.engine import current_revision, upgrade
from loopline.metadata.schema_idempotency import idempotency_keys


def _downgrade(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(metadata_engine.__file__).parent / "migrations"))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_0011_upgrades_a_populated_0010_store_and_downgrades(store_uri: str) -> None:
    engine = sa.create_engine(store_uri)
    try:
        upgrade(engine, "0010")
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO workspaces (name, description, created_at) VALUES ('team', '', 1)")
            )
        assert "idempotency_keys" not in _tables(engine)

        upgrade(engine, "0011")
        with engine.connect() as conn:
            assert current_revision(conn) == "0011"
            assert conn.execute(sa.text("SELECT name FROM workspaces WHERE name = 'team'")).scalar() == "team"
        row = {
            "workspace": "team",
            "key": "k",
            "method": "POST",
            "path": "/p",
            "fingerprint": "f",
            "created_at": 1,
        }
        with engine.begin() as conn:
            conn.execute(sa.insert(idempotency_keys).values(row))
            conn.execute(
                sa.insert(idempotency_keys).values(row | {"workspace": "other"})
            )  # keys are per workspace
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.insert(idempotency_keys).values(row | {"path": "/q"}))
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("idempotency_keys")}
        assert "ix_idempotency_keys_created_at" in indexes  # what the purge's range delete uses

        _downgrade(engine, "0010")
        assert "idempotency_keys" not in _tables(engine)
        with engine.connect() as conn:
            assert current_revision(conn) == "0010"
            assert conn.execute(sa.text("SELECT count(*) FROM workspaces WHERE name = 'team'")).scalar() == 1
    finally:
        engine.dispose()
