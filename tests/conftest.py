"""Shared fixtures: real servers and real databases, each on 127.0.0.1 and private to the test.

PostgreSQL (127.0.0.1:5432) and the moto S3 server are used for real. When a service is
unreachable its tests skip with the reason, unless LOOPLINE_REQUIRE_SERVICES=1 (set by CI),
where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port, serve_loopline, wait_http

REQUIRE_SERVICES = os.environ.get("LOOPLINE_REQUIRE_SERVICES") == "1"
PG_ADMIN = os.environ.get("LOOPLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def unavailable(reason: str) -> None:
    """Skip, or fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (LOOPLINE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


# ---- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test, dropped afterwards."""
    try:
        import sqlalchemy as sa

        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"loopline_test_{uuid.uuid4().hex[:12]}"
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as e:
        unavailable(f"PostgreSQL is not reachable at 127.0.0.1:5432: {e}")
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every metadata-store test runs against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loopline.db'}"
    return str(request.getfixturevalue("postgres_uri"))


# ---- S3 (moto's server) --------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (the only S3-speaking server this machine can run)."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if exe is None:
        unavailable("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        # Its access log goes nowhere: a pipe nobody reads fills up and then blocks every request.
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # a request still in flight can hold werkzeug's shutdown
            proc.kill()
            proc.wait(10)


@pytest.fixture
def s3_uri(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket on the moto server, with the environment pointing S3 clients at it."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    bucket = f"loopline-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/artifacts"


# ---- a real loopline server ----------------------------------------------------------------


@pytest.fixture
def loopline_server(tmp_path: Path) -> Iterator[str]:
    """``loopline server`` in a subprocess on a free port, with its own SQLite store and artifacts
    (``tmp_path/server.db``, ``tmp_path/server-artifacts``: a test may fill them before it starts)."""
    with serve_loopline(tmp_path, artifacts=str(tmp_path / "server-artifacts")) as url:
        yield url


@pytest.fixture
def local_settings(tmp_path: Path) -> object:
    """Settings for an embedded store in this test's temporary folder."""
    from loopline.config import Settings

    return Settings.from_env(
        {},
        tracking_uri=f"sqlite:///{tmp_path / 'loopline.db'}",
        artifacts_uri=str(tmp_path / "artifacts"),
        user="tester",
    )
