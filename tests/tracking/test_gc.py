"""Server-side periodic garbage collection (opt-in with ``loopline server --gc-every``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from support import free_port, wait_http

from loopline.config import Settings
from loopline.tracking import Client


def test_server_collects_garbage_periodically_when_asked(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {}, tracking_uri=f"sqlite:///{tmp_path / 'db'}", artifacts_uri=str(tmp_path / "a")
    )
    client = Client(settings)
    exp = client.set_experiment("gc").experiment_id
    keep, gone = (client.create_run(exp).info.run_id for _ in range(2))
    client.log_text(keep, "kept", "f.txt")
    client.log_text(gone, "payload", "f.txt")
    client.delete_run(gone)
    port = free_port()
    env = {
        **os.environ,
        "LOOPLINE_TRACKING_URI": settings.tracking_uri,
        "LOOPLINE_ARTIFACTS_URI": settings.artifacts_uri,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loopline.cli",
            "server",
            "--port",
            str(port),
            "--gc-every",
            "0.2s",
            "--gc-older-than",
            "0s",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        deadline = time.monotonic() + 15
        while len(client.search_runs(run_view_type="ALL")) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    assert [r.info.run_id for r in client.search_runs(run_view_type="ALL")] == [keep]
    refs = sorted(
        p.relative_to(tmp_path / "a" / "refs").as_posix() for p in (tmp_path / "a" / "refs").rglob("f.txt")
    )
    assert refs == [f"{exp}/{keep}/artifacts/f.txt"]
