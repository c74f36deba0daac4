"""Load and fault: nothing acknowledged is lost.

50 concurrent clients (async, one process) log and read through MLflow's REST routes and Loopline's
own against a real ``loopline server`` on 127.0.0.1, while

- the server is killed with SIGKILL and restarted on the same store and port (SQLite and PostgreSQL);
- PostgreSQL drops every connection of the server's database, twice (``pg_terminate_backend``);
- several clients register model versions of the same models (PostgreSQL).

Afterwards every write that was acknowledged (a 2xx answer arrived) is in the store, read back through
the server; model version numbers are never given twice. Clients retry as Loopline's does: a dropped
connection and a 503 are retried, a keyed create with its ``Idempotency-Key``; a 500, a 4xx to a valid
call or a request that hangs fails the test at once. Then, step by step on PostgreSQL: a request held
on a lock while its connection is dropped (a read is run again, a write answered 503), and a keyed
write held past its lease, then cut off by SIGKILL (its key is renewed while it runs, and lapses when
its server is dead). Each test stays within about 20 s on a loaded 2-core machine: small data, bounded
work and patience. Authentication, once on: ``client_headers`` and ``server_env`` below.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fault_helpers import (
    MLFLOW,
    REQUEST_TIMEOUT,
    KillableServer,
    Ledger,
    check_acknowledged,
    killable_server,
    registering_client,
    run_clients,
    terminate_backends,
    tracking_client,
)

from loopline.auth.sql_store import SqlAuthStore
from loopline.auth.types import Role
from loopline.config import Settings
from loopline.context import Context

# One group: under ``--dist loadgroup`` these run one after another on one worker, so two loads of
# 50 clients never share the 2 cores; the timeout is a net under a hang, far above their ~10 s.
pytestmark = [pytest.mark.xdist_group("faults"), pytest.mark.timeout(120)]

CLIENTS = 50
ITERATIONS = 1  # per tracking client: a registered model, then 5 acknowledged writes per iteration
WRITES_PER_ITERATION = 5
TOTAL = CLIENTS * (1 + ITERATIONS * WRITES_PER_ITERATION)


@pytest.fixture
def token(request: pytest.FixtureRequest) -> str:
    """An editor's API token, in the test's store (its ``store_uri``, else its PostgreSQL database)
    before its server starts: every client signs in with it."""
    uri = request.getfixturevalue("store_uri" if "store_uri" in request.fixturenames else "postgres_uri")
    store = SqlAuthStore(Context(Settings(tracking_uri=uri)).engine)
    store.create_user("loader")
    store.grant("loader", "default", Role.EDITOR)
    return store.create_token("loader", name="faults")[1]


@pytest.fixture
def client_headers(token: str) -> dict[str, str]:
    """The headers every client of these tests sends: the token (auth is on)."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server_env(token: str) -> dict[str, str]:
    """The server's extra environment: authentication on, as a shared server runs."""
    return {"LOOPLINE_AUTH": "1"}


@pytest.fixture
def server(tmp_path: Path, store_uri: str, server_env: dict[str, str]) -> Iterator[KillableServer]:
    with killable_server(tmp_path / "server", store_uri, server_env) as s:
        yield s


def _prepare(url: str, headers: dict[str, str], *models: str) -> str:
    """An experiment and registered models for the clients, made before any fault: their id."""
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        made = http.post(f"{MLFLOW}/experiments/create", json={"name": "faults"})
        assert made.status_code == 200, made.text
        for model in models:
            assert http.post(f"{MLFLOW}/registered-models/create", json={"name": model}).status_code == 200
        return str(made.json()["experiment_id"])


def _kill_and_restart(server: KillableServer) -> None:
    server.kill()
    server.start()


def test_sigkill_and_restart_mid_load_loses_no_acknowledged_write(
    server: KillableServer, client_headers: dict[str, str]
) -> None:
    experiment_id = _prepare(server.url, client_headers, "faults-model")
    ledger = Ledger(kill_at=TOTAL // 3)
    work = functools.partial(
        tracking_client, experiment_id=experiment_id, model="faults-model", iterations=ITERATIONS
    )
    started = time.monotonic()
    asyncio.run(
        run_clients(
            server.url, client_headers, ledger, work, CLIENTS, functools.partial(_kill_and_restart, server)
        )
    )
    took = time.monotonic() - started

    assert server.lives == 2
    assert ledger.met["transport"] > 0, "the kill cut no client off: it came too late to prove anything"
    assert ledger.acks == TOTAL and ledger.acks > ledger.after_fault  # all done, much of it after the restart
    check_acknowledged(server.url, ledger, client_headers, experiment_id=experiment_id)
    assert "Traceback" not in server.log, server.log
    print(f"{TOTAL} writes in {took:.1f} s across a SIGKILL; retried: {dict(ledger.met)}")


@pytest.mark.postgres
def test_dropped_postgres_connections_mid_load_fail_fast_and_lose_nothing(
    tmp_path: Path, postgres_uri: str, server_env: dict[str, str], client_headers: dict[str, str]
) -> None:
    dropped: list[int] = []

    def drop_twice() -> None:
        dropped.append(terminate_backends(postgres_uri))
        time.sleep(0.3)  # the pool has reconnected and the clients are back at it: drop them again
        dropped.append(terminate_backends(postgres_uri))

    with killable_server(tmp_path / "server", postgres_uri, server_env) as server:
        experiment_id = _prepare(server.url, client_headers, "faults-model")
        ledger = Ledger(kill_at=TOTAL // 4)
        work = functools.partial(
            tracking_client, experiment_id=experiment_id, model="faults-model", iterations=ITERATIONS
        )
        asyncio.run(run_clients(server.url, client_headers, ledger, work, CLIENTS, drop_twice))

        assert dropped[0] > 0, "the server held no connection to drop"
        assert server.lives == 1 and ledger.met["transport"] == 0  # it never went down
        assert ledger.acks == TOTAL and ledger.acks > ledger.after_fault  # it recovered by itself
        # Failures were "try again" (a 409: a key whose release the drop cut off), never a 500.
        assert set(ledger.met) <= {"503", "409"}, ledger.met
        check_acknowledged(server.url, ledger, client_headers, faults=2, experiment_id=experiment_id)
        assert "Traceback" not in server.log, server.log
        print(f"dropped {dropped} connections; retried: {dict(ledger.met)}")


@pytest.mark.postgres
def test_sigkill_during_concurrent_registrations_never_duplicates_a_version(
    tmp_path: Path, postgres_uri: str, server_env: dict[str, str], client_headers: dict[str, str]
) -> None:
    # PostgreSQL, where registrations really run side by side (the model's row lock orders them);
    # SQLite's one writer is covered by the versions registered in the tracking load above.
    models = ["churn", "fraud"]
    clients, each = 8, 12
    ledger = Ledger(kill_at=clients * each // 3)
    work = functools.partial(registering_client, models=models, count=each)
    with killable_server(tmp_path / "server", postgres_uri, server_env) as server:
        _prepare(server.url, client_headers, *models)
        asyncio.run(
            run_clients(
                server.url,
                client_headers,
                ledger,
                work,
                clients,
                functools.partial(_kill_and_restart, server),
            )
        )

        assert server.lives == 2 and ledger.met["transport"] > 0
        assert len(ledger.versions) == clients * each  # each registration acknowledged, each its own number
        check_acknowledged(server.url, ledger, client_headers)
        assert "Traceback" not in server.log, server.log


# ---- one request under the fault, step by step (PostgreSQL: a test can hold a request mid-way) ----


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


def _waiting_on_a_lock(db: sa.Engine) -> bool:
    with db.connect() as conn:
        sql = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = %s"
        )
        return bool(conn.exec_driver_sql(sql, ("Lock",)).scalar())


@pytest.mark.postgres
def test_a_connection_dropped_under_a_request_is_a_read_run_again_or_a_503(
    tmp_path: Path, postgres_uri: str, server_env: dict[str, str], client_headers: dict[str, str]
) -> None:
    db = sa.create_engine(postgres_uri, poolclass=sa.NullPool)
    with (
        killable_server(tmp_path / "server", postgres_uri, server_env) as server,
        httpx.Client(base_url=server.url, headers=client_headers, timeout=REQUEST_TIMEOUT) as http,
        ThreadPoolExecutor(1) as pool,
        db.connect() as locker,
    ):
        run = {"experiment_id": "0", "run_name": "first"}
        run_id = http.post(f"{MLFLOW}/runs/create", json=run).json()["run"]["info"]["run_id"]
        me = locker.exec_driver_sql("SELECT pg_backend_pid()").scalar()

        def drop_under(method: str, path: str, **kwargs: Any) -> httpx.Response:
            """``method path`` held on a lock of ``runs`` while PostgreSQL drops the server's connections."""
            locker.exec_driver_sql("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
            answer = pool.submit(http.request, method, path, **kwargs)
            _wait_for("the request waiting on the lock", lambda: _waiting_on_a_lock(db))
            locker.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), {int(me)})"
            )
            locker.rollback()  # the lock goes: a request run once more gets through
            return answer.result(timeout=15)

        # A read is run once more, on a fresh connection: the client sees nothing of the drop.
        got = drop_under("GET", f"{MLFLOW}/runs/get", params={"run_id": run_id})
        assert got.status_code == 200 and got.json()["run"]["info"]["run_id"] == run_id
        # A write is not (its COMMIT may have landed): 503, JSON, Retry-After, no statement shown.
        key = {"Idempotency-Key": "cut-off"}
        run["run_name"] = "second"
        refused = drop_under("POST", f"{MLFLOW}/runs/create", json=run, headers=key)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "INSERT" not in refused.text and "Traceback" not in refused.text
        # ... and its key was freed: the retry runs it, once.
        retried = http.post(f"{MLFLOW}/runs/create", json=run, headers=key)
        assert retried.status_code == 200 and "idempotency-replayed" not in retried.headers
        names = http.post(f"{MLFLOW}/runs/search", json={"experiment_ids": ["0"]}).json()["runs"]
        assert sorted(r["info"]["run_name"] for r in names) == ["first", "second"]
        assert "Traceback" not in server.log, server.log
    db.dispose()


_SLOW_RUN = [  # the run named "slow" takes 3 s to insert: its request is in flight for that long
    "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN IF NEW.name = 'slow' THEN "
    "PERFORM pg_sleep(3); END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER slow BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION slow()",
]


@pytest.mark.postgres
def test_a_keyed_write_holds_its_key_while_it_runs_and_a_killed_servers_key_lapses(
    tmp_path: Path, postgres_uri: str, server_env: dict[str, str], client_headers: dict[str, str]
) -> None:
    db = sa.create_engine(postgres_uri, poolclass=sa.NullPool)
    env = {**server_env, "LOOPLINE_IDEMPOTENCY_LEASE": "1"}
    with (
        killable_server(tmp_path / "server", postgres_uri, env) as server,
        httpx.Client(base_url=server.url, headers=client_headers, timeout=REQUEST_TIMEOUT) as http,
        ThreadPoolExecutor(1) as pool,
        db.connect() as locker,
    ):
        with db.begin() as conn:  # the server made the schema
            for sql in _SLOW_RUN:
                conn.exec_driver_sql(sql)

        def create(name: str, key: str) -> httpx.Response:
            body = {"experiment_id": "0", "run_name": name}
            return http.post(f"{MLFLOW}/runs/create", json=body, headers={"Idempotency-Key": key})

        def claimed(key: str) -> bool:
            with db.connect() as conn:
                sql = "SELECT count(*) FROM idempotency_keys WHERE key = %s"
                return bool(conn.exec_driver_sql(sql, (key,)).scalar())

        # Running past its lease (1 s), the request renews it: a retry meanwhile waits (409).
        first = pool.submit(create, "slow", "held")
        _wait_for("the claim of the first request", lambda: claimed("held"))
        time.sleep(1.6)
        busy = create("slow", "held")
        assert busy.status_code == 409 and busy.headers["retry-after"] == "1", busy.text
        assert first.result(timeout=15).status_code == 200
        assert create("slow", "held").headers["idempotency-replayed"] == "true"

        # Its server killed mid-request (held on a lock of runs), the claim is renewed no more: a
        # retry after the restart waits out the lease at most, then runs the call.
        locker.exec_driver_sql("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        cut = pool.submit(create, "cut", "cut")
        _wait_for("the request waiting on the lock", lambda: _waiting_on_a_lock(db))
        server.kill()
        with pytest.raises(httpx.TransportError):
            cut.result(timeout=15)
        locker.rollback()
        server.start()
        deadline = time.monotonic() + 10
        while (retried := create("cut", "cut")).status_code == 409:
            assert time.monotonic() < deadline, "the dead server's claim never lapsed"
            time.sleep(0.2)
        assert retried.status_code == 200 and "idempotency-replayed" not in retried.headers
        runs = http.post(f"{MLFLOW}/runs/search", json={"experiment_ids": ["0"]}).json()["runs"]
        assert sorted(r["info"]["run_name"] for r in runs) == ["cut", "slow"]
    db.dispose()
