"""``loopline monitor drift``: formats and exit codes (0 ran, 1 drifted with --fail-on-drift, 2 bad input)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loopline.cli.main import app


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(21)
    n = 2000
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})
    same = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})
    moved = same.assign(a=same.a + 1, b=same.b * 3)
    paths = {
        "ref": tmp_path / "ref.parquet",
        "same": tmp_path / "same.csv",
        "moved": tmp_path / "moved.parquet",
    }
    ref.to_parquet(paths["ref"])
    same.to_csv(paths["same"], index=False)
    moved.to_parquet(paths["moved"])
    (tmp_path / "other.csv").write_text("z\n1\n2\n")
    return {k: str(v) for k, v in paths.items()} | {
        "other": str(tmp_path / "other.csv"),
        "dir": str(tmp_path),
    }


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["monitor", "drift", *args])
    return res.exit_code, res.stdout, " ".join(res.stderr.split())  # rich wraps long lines


def test_json_output_and_exit_codes(files: dict[str, str]) -> None:
    code, out, _ = run("-r", files["ref"], "-c", files["moved"], "--format", "json")
    assert code == 0
    body = json.loads(out)
    assert body["dataset_drift"] is True and body["columns"]["a"]["drifted"] is True
    assert run("-r", files["ref"], "-c", files["moved"], "--fail-on-drift", "-f", "json")[0] == 1
    assert run("-r", files["ref"], "-c", files["same"], "--fail-on-drift", "-f", "json")[0] == 0


def test_bad_input_exits_2_and_names_the_problem(files: dict[str, str]) -> None:
    code, _, err = run("-r", files["ref"], "-c", files["other"])
    assert code == 2 and "lacks the columns 'a', 'b', 'c'" in err
    code, _, err = run("-r", files["dir"] + "/nope.parquet", "-c", files["same"])
    assert code == 2 and "nope.parquet" in err
    assert run("-r", files["ref"], "-c", files["same"], "--test", "a")[0] == 2  # not COLUMN=TEST
    assert run("-r", files["ref"])[0] == 2  # usage error: no --current


def test_table_and_html_outputs(files: dict[str, str], tmp_path: Path) -> None:
    code, out, _ = run("-r", files["ref"], "-c", files["moved"], "--test", "b=psi", "--threshold", "b=0.2")
    assert code == 0 and "dataset drift" in out and "psi" in out
    page = tmp_path / "report.html"
    assert run("-r", files["ref"], "-c", files["moved"], "-f", "html", "-o", str(page))[0] == 0
    assert "<svg" in page.read_text() and "http://" not in page.read_text()


def test_the_installed_command_exits_with_the_documented_codes(files: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "loopline.cli", "monitor", "drift", "-r", files["ref"], "-f", "json"]
    assert (
        subprocess.run([*cmd, "-c", files["moved"], "--fail-on-drift"], capture_output=True).returncode == 1
    )
    assert subprocess.run([*cmd, "-c", files["other"]], capture_output=True).returncode == 2
