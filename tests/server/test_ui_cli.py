"""``loopline ui``: a server on the embedded store in the current folder, its UI answered on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from support import free_port, wait_http


def _env() -> dict[str, str]:
    # The embedded default store: none of the test's own store settings.
    return {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}


def test_loopline_ui_serves_the_embedded_store_without_a_browser(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "ui", "--no-browser", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", proc, timeout=60)
        page = httpx.get(url + "/ui/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "<h1>Experiments</h1>" in page.text
        assert "Default" in page.text  # the new store's Default experiment
        assert (tmp_path / ".loopline" / "loopline.db").is_file()  # the embedded store, here
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"Loopline UI on http://127.0.0.1:{port}/ui/" in out.decode()


def test_loopline_ui_on_a_busy_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "loopline.cli", "ui", "--no-browser", "--port", str(port)],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert str(port) in done.stderr + done.stdout and "Traceback" not in done.stderr
