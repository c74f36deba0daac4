"""Helpers for the pipeline tests (a module with a unique name: tests/pipelines is on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from loopline.config import Settings


def write(folder: Path, **files: str) -> Path:
    """Write ``name=source`` files (``name`` without .py) into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def cli(
    args: list[str],
    cwd: Path,
    settings: Settings,
    *,
    check: bool = True,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``loopline …`` in a subprocess against ``settings``' store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env.update(
        LOOPLINE_TRACKING_URI=settings.tracking_uri,
        LOOPLINE_ARTIFACTS_URI=settings.artifacts_uri,
        COLUMNS="200",
        **(extra_env or {}),
    )
    done = subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def run_json(args: list[str], cwd: Path, settings: Settings, **kw: Any) -> dict[str, Any]:
    done = cli([*args, "--format", "json"], cwd, settings, **kw)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {s["node"]: s["status"] for s in result["steps"]}


def invoke(args: list[str], cwd: Path, settings: Settings) -> Any:
    """``loopline …`` in this process (Typer's runner): fast, for commands whose process does not matter."""
    from typer.testing import CliRunner

    from loopline.cli.main import app

    env = {"LOOPLINE_TRACKING_URI": settings.tracking_uri, "LOOPLINE_ARTIFACTS_URI": settings.artifacts_uri,
           "COLUMNS": "200"}  # fmt: skip
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args, env=env, catch_exceptions=True)
    finally:
        os.chdir(old)
