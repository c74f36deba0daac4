"""Load and fault: nothing acknowledged is lost.

50 concurrent clients (async, one process) log and read through MLflow's REST routes and Loopline's
own against a real ``loopline server`` on 127.0.0.1, while

- the server is killed with SIGKILL and restarted on the same store and port (SQLite and PostgreSQL);
- PostgreSQL drops every connection of the server's database, twice (``pg_terminate_backend``);
- several clients register model versions of the same models.

Afterwards every write that was acknowledged (a 2xx answer arrived) is in the store, read back through
the server; model version numbers are never given twice. Clients retry as Loopline's does: a dropped
connection and a 503 are retried, a keyed create with its ``Idempotency-Key``; a 500, a 4xx to a valid
call or a request that hangs fails the test at once. Each test stays within about 20 s on a loaded
2-core machine: small data, bounded work and patience.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fault_helpers import (
    MLFLOW,
    KillableServer,
    Ledger,
    check_acknowledged,
    killable_server,
    registering_client,
    run_clients,
    terminate_backends,
    tracking_client,
)

# One group: under ``--dist loadgroup`` these run one after another on one worker, so two loads of
# 50 clients never share the 2 cores; the timeout is a net under a hang, far above their ~10 s.
pytestmark = [pytest.mark.xdist_group("faults"), pytest.mark.timeout(120)]

CLIENTS = 50
ITERATIONS = 2  # per tracking client: 5 acknowledged writes each
WRITES_PER_ITERATION = 5


@pytest.fixture
def client_headers() -> dict[str, str]:
    """The headers every client of these tests sends: where an ``Authorization`` goes once the
    server requires one."""
    return {}


@pytest.fixture
def server_env() -> dict[str, str]:
    """The server's extra environment (its authentication settings, once they exist)."""
    return {}


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
    total = CLIENTS * ITERATIONS * WRITES_PER_ITERATION
    ledger = Ledger(kill_at=total // 3)
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
    assert ledger.acks == total and ledger.acks > ledger.after_fault  # all done, much of it after the restart
    check_acknowledged(server.url, ledger, client_headers)
    assert "Traceback" not in server.log, server.log
    print(f"{total} writes in {took:.1f} s across a SIGKILL; retried: {dict(ledger.met)}")


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
        total = CLIENTS * ITERATIONS * WRITES_PER_ITERATION
        ledger = Ledger(kill_at=total // 4)
        work = functools.partial(
            tracking_client, experiment_id=experiment_id, model="faults-model", iterations=ITERATIONS
        )
        asyncio.run(run_clients(server.url, client_headers, ledger, work, CLIENTS, drop_twice))

        assert dropped[0] > 0, "the server held no connection to drop"
        assert server.lives == 1 and ledger.met["transport"] == 0  # it never went down
        assert ledger.acks == total and ledger.acks > ledger.after_fault  # it recovered by itself
        assert set(ledger.met) <= {"503"}, ledger.met  # failures were "try again", never a 500
        check_acknowledged(server.url, ledger, client_headers)
        assert "Traceback" not in server.log, server.log
        print(f"dropped {dropped} connections; retried: {dict(ledger.met)}")


def test_sigkill_during_concurrent_registrations_never_duplicates_a_version(
    server: KillableServer, client_headers: dict[str, str]
) -> None:
    models = ["churn", "fraud"]
    _prepare(server.url, client_headers, *models)
    clients, each = 8, 12
    ledger = Ledger(kill_at=clients * each // 3)
    work = functools.partial(registering_client, models=models, count=each)
    asyncio.run(
        run_clients(
            server.url, client_headers, ledger, work, clients, functools.partial(_kill_and_restart, server)
        )
    )

    assert server.lives == 2 and ledger.met["transport"] > 0
    assert len(ledger.versions) == clients * each  # every registration acknowledged once, each its own number
    check_acknowledged(server.url, ledger, client_headers)
    assert "Traceback" not in server.log, server.log
