"""Helpers for tests that start real servers (importable as ``support``: tests/ is on sys.path)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


# A test's own (client-side) settings of where the store is must not redirect the server's.
_WHERE = {"LOOPLINE_TRACKING_URI", "LOOPLINE_ARTIFACTS_URI", "LOOPLINE_STORE_URI", "MLFLOW_TRACKING_URI"}


@contextlib.contextmanager
def serve_loopline(
    home: Path,
    *,
    store: str | None = None,
    artifacts: str | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    check_log: bool = False,
) -> Iterator[str]:
    """``loopline server`` in a subprocess on a free 127.0.0.1 port; yields its URL.

    Its own store: ``store`` (default SQLite in ``home``) and ``artifacts`` (default ``home/artifacts``);
    the test's own tracking and artifact URIs do not leak in (its other ``LOOPLINE_*`` settings do),
    ``env`` is added.
    The log goes to ``home/server.log`` (a file, not a pipe nobody reads); with ``check_log`` the log
    must hold no traceback at the end: every request, bad ones included, was answered on purpose.
    """
    home.mkdir(parents=True, exist_ok=True)
    full = {k: v for k, v in os.environ.items() if k not in _WHERE}
    full |= {
        "LOOPLINE_TRACKING_URI": store or f"sqlite:///{home / 'server.db'}",
        "LOOPLINE_ARTIFACTS_URI": artifacts or str(home / "artifacts"),
        **(env or {}),
    }
    port = free_port()
    log = home / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loopline.cli",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            cwd=home,
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if check_log:
        text = log.read_text()
        assert "Traceback" not in text, text


def allow_mlflow_pickles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the real ``mlflow`` load the pickled/skops models a test saved itself.

    MLflow 3.18 renamed the opt-in (``MLFLOW_ALLOW_MODEL_CODE_EXECUTION``) and warns on the old name,
    which this suite turns into an error; the installed MLflow decides which one it reads.
    """
    import mlflow.environment_variables as mlflow_env

    name = (
        "MLFLOW_ALLOW_MODEL_CODE_EXECUTION"
        if hasattr(mlflow_env, "MLFLOW_ALLOW_MODEL_CODE_EXECUTION")
        else "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    )
    monkeypatch.setenv(name, "true")


def run_cli(url: str, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``loopline *args`` as a fresh process in ``cwd``, against the server at ``url`` only: none of the
    test's own LOOPLINE_*/MLFLOW_* settings leak in (a client that needed the database would fail)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env["LOOPLINE_TRACKING_URI"] = url
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
