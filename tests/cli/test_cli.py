"""The CLI as a user runs it: real subprocesses for exit codes, CliRunner for output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.config import Settings
from loopline.tracking import Client


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Client, dict[str, str], list[str]]:
    env = {
        "LOOPLINE_TRACKING_URI": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "LOOPLINE_ARTIFACTS_URI": str(tmp_path / "art"),
    }
    client = Client(Settings.from_env(env))
    exp = client.set_experiment("cli").experiment_id
    ids = []
    for i, lr in enumerate(("0.1", "0.01")):
        rid = client.create_run(exp, run_name=f"run{i}").info.run_id
        client.log_batch(rid, params={"lr": lr, "depth": 3})
        client.log_metric(rid, "acc", 0.8 + i / 10, synchronous=True)
        client.log_text(rid, "x" * (i + 1), "notes.txt")
        ids.append(rid)
    return client, env, ids


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_runs_list_show_compare(seeded: tuple[Client, dict[str, str], list[str]]) -> None:
    _, env, ids = seeded
    runner = CliRunner()
    out = runner.invoke(
        app, ["runs", "list", "-e", "cli", "-o", "metrics.acc DESC"], env=env, terminal_width=200
    )
    assert out.exit_code == 0, out.output
    assert out.output.index("run1") < out.output.index("run0")
    out = runner.invoke(app, ["runs", "show", ids[0]], env=env, terminal_width=200)
    assert out.exit_code == 0 and "0.1" in out.output and "notes.txt" in out.output
    out = runner.invoke(app, ["runs", "compare", *ids], env=env, terminal_width=200)
    assert out.exit_code == 0
    assert "params.lr" in out.output and "0.01" in out.output and "metrics.acc" in out.output


def test_experiments_list_and_create(seeded: tuple[Client, dict[str, str], list[str]]) -> None:
    _, env, _ = seeded
    runner = CliRunner()
    assert runner.invoke(app, ["experiments", "create", "fresh"], env=env).output.strip().isdigit()
    out = runner.invoke(app, ["experiments", "list"], env=env, terminal_width=200)
    assert "fresh" in out.output and "cli" in out.output and "Default" in out.output


def test_errors_print_message_and_hint_and_exit_nonzero(
    seeded: tuple[Client, dict[str, str], list[str]],
) -> None:
    _, env, _ = seeded
    res = run_cli("runs", "show", "0" * 32, env=env)
    assert res.returncode == 2  # an unknown name is bad input
    assert "Error: Run with id=" in res.stderr and "Hint:" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("runs", "list", "--filter", "metrics.acc >>", env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = run_cli("runs", "nonsense", env=env)
    assert res.returncode == 2


def test_delete_then_gc_frees_storage_but_keeps_shared_blobs(
    seeded: tuple[Client, dict[str, str], list[str]], tmp_path: Path
) -> None:
    client, env, ids = seeded
    keep, gone = ids
    client.log_text(gone, "x", "shared-with-keep.txt")  # same content as keep's notes.txt
    blobs = tmp_path / "art" / "blobs"
    before = sum(1 for p in blobs.rglob("*") if p.is_file())
    assert run_cli("runs", "delete", gone, env=env).returncode == 0
    res = run_cli("gc", "--grace", "0s", env=env)
    assert res.returncode == 0, res.stderr
    assert "Purged 1 runs and 2 artifact files" in res.stdout
    after = sum(1 for p in blobs.rglob("*") if p.is_file())
    assert after == before - 1  # "xx" went; "x" is still used by the kept run
    assert client.download_artifacts(keep, "notes.txt", tmp_path / "dl").read_text() == "x"
    assert [r.info.run_id for r in client.search_runs(run_view_type="ALL")] == [keep]


def test_db_upgrade_and_help(tmp_path: Path) -> None:
    res = run_cli("db", "upgrade", f"sqlite:///{tmp_path / 'new.db'}", env={})
    assert res.returncode == 0 and "revision" in res.stdout
    res = run_cli("--help", env={})
    assert res.returncode == 0 and "server" in res.stdout and "runs" in res.stdout


def test_server_ignores_a_client_side_http_tracking_uri(tmp_path: Path) -> None:
    import os

    from support import free_port, wait_http

    port = free_port()
    env = {**os.environ, "LOOPLINE_TRACKING_URI": "http://127.0.0.1:1", "MLFLOW_TRACKING_URI": "http://x:1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "server", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
    finally:
        proc.terminate()
        proc.wait(10)
    assert (tmp_path / ".loopline" / "loopline.db").exists()


def test_experiment_delete_restore_rename_and_download(
    seeded: tuple[Client, dict[str, str], list[str]], tmp_path: Path
) -> None:
    client, env, ids = seeded
    assert run_cli("experiments", "rename", "cli", "cli2", env=env).returncode == 0
    assert run_cli("experiments", "delete", "cli2", env=env).returncode == 0
    assert client.search_runs() == []
    assert run_cli("experiments", "restore", "cli2", env=env).returncode == 0
    assert len(client.search_runs()) == 2
    res = run_cli("runs", "download", ids[1], "notes.txt", "-d", str(tmp_path / "dl"), env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "dl" / "notes.txt").read_text() == "xx"
