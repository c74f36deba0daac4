"""The SQLAlchemy-free lookup a cold ``load_model`` uses on an embedded store: the store's own SQL,
the same answers as the full registry store, ``None`` whenever it is not sure, and the store the
caller configured."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import loopline
from loopline.errors import InvalidInput
from loopline.registry import RegistryClient, log_model
from loopline.registry.sqlite_lookup import find_model_version, read_version
from loopline.tracking import default_client


def _register(db: Path, art: Path, slope: float) -> None:
    """Register ``m`` v1 (a line with that slope) as ``champion`` in the store at ``db``."""
    loopline.set_tracking_uri(f"sqlite:///{db}", str(art))
    X = np.arange(10, dtype=float).reshape(-1, 1)
    with loopline.start_run(experiment="e"):
        log_model(LinearRegression().fit(X, slope * X[:, 0]), "model", registered_model_name="m")
    rc = RegistryClient()
    rc.set_alias("m", "champion", 1)
    rc.store.set_model_version_tag("m", 1, "team", "risk")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    _register(tmp_path / "db.sqlite", tmp_path / "art", 2.0)
    yield f"sqlite:///{tmp_path / 'db.sqlite'}"
    while loopline.active_run():
        loopline.end_run()


def test_answers_as_the_full_store_does(store: str) -> None:
    full = RegistryClient().store
    workspace = default_client().settings.workspace
    by_alias = find_model_version(store, workspace, "m", alias="champion")
    assert by_alias == full.get_model_version_by_alias("m", "champion")
    assert by_alias is not None and by_alias.tags == {"team": "risk"} and by_alias.aliases == ("champion",)
    assert by_alias.digests and "MLmodel" in by_alias.digests
    assert find_model_version(store, workspace, "m", version=1) == full.get_model_version("m", 1)


def test_the_lookup_sends_sqlite_the_stores_own_statements(store: str) -> None:
    """What SQLite receives from the registry store (through SQLAlchemy) and from the lookup (through
    ``sqlite3``), recorded by SQLite's own trace with the values bound: the same reads, in order."""
    from sqlalchemy import event

    from loopline.metadata.engine import create_store_engine
    from loopline.registry.sql_store import SqlRegistryStore

    workspace = default_client().settings.workspace
    engine = create_store_engine(store)
    from_store: list[str] = []
    event.listen(engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(from_store.append))
    engine.dispose()  # connections made from here on are traced
    full = SqlRegistryStore(engine, workspace=workspace)
    conn = sqlite3.connect(store.removeprefix("sqlite:///"), isolation_level=None)
    from_lookup: list[str] = []
    conn.set_trace_callback(from_lookup.append)
    try:
        for alias, version, ask_store in [
            ("champion", None, lambda: full.get_model_version_by_alias("m", "champion")),
            (None, 1, lambda: full.get_model_version("m", 1)),
        ]:
            from_store.clear()
            from_lookup.clear()
            want = ask_store()
            assert read_version(conn, workspace, "m", version=version, alias=alias) == want
            reads = [sql for sql in from_store if sql.startswith("SELECT")]  # not its BEGIN, ROLLBACK
            assert len(reads) == (5 if alias else 4)
            assert from_lookup == reads
    finally:
        conn.close()
        engine.dispose()


def test_none_whenever_unsure(store: str, tmp_path: Path) -> None:
    workspace = default_client().settings.workspace
    assert find_model_version(store, workspace, "nope", alias="champion") is None
    assert find_model_version(store, workspace, "m", alias="nope") is None
    assert find_model_version(store, workspace, "m", version=7) is None
    assert find_model_version(store, "other-workspace", "m", version=1) is None
    assert find_model_version(store, workspace, "m") is None  # neither version nor alias
    assert find_model_version(store, workspace, "m", version=2**70) is None
    with pytest.raises(InvalidInput, match="versions are between 1 and"):  # the store says what is wrong
        loopline.load_model(f"models:/m/{2**70}")
    assert find_model_version("postgresql+psycopg://x@127.0.0.1/db", workspace, "m", version=1) is None
    missing = tmp_path / "missing.db"
    assert find_model_version(f"sqlite:///{missing}", workspace, "m", version=1) is None
    assert not missing.exists()  # a lookup never creates a database
    db = Path(store.removeprefix("sqlite:///"))
    with sqlite3.connect(db) as conn:  # a schema from another release of Loopline
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    assert find_model_version(store, workspace, "m", version=1) is None


def test_cold_load_reads_the_configured_store_without_sqlalchemy(tmp_path: Path) -> None:
    # Two stores with a model of the same name: the environment names one, the program the other.
    _register(tmp_path / "a.db", tmp_path / "a-art", 2.0)
    _register(tmp_path / "b.db", tmp_path / "b-art", 5.0)
    code = (
        "import sys, numpy as np, loopline\n"
        f"loopline.set_tracking_uri('sqlite:///{tmp_path / 'b.db'}', '{tmp_path / 'b-art'}')\n"
        "m = loopline.load_model('models:/m@champion')\n"
        "print(float(m.predict(np.array([[1.0]]))[0]), 'sqlalchemy' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env["LOOPLINE_TRACKING_URI"] = f"sqlite:///{tmp_path / 'a.db'}"
    env["LOOPLINE_ARTIFACTS_URI"] = str(tmp_path / "a-art")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert float(out[0]) == pytest.approx(5.0)  # store b's model (a's predicts 2.0)
    assert out[1] == "False"
