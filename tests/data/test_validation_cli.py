"""``loopline data validate`` as a user runs it: exit codes, output, report files, stored results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from loopline.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUITE = """\
name: people
expectations:
  - {expect: unique, column: id}
  - {expect: between, column: age, min: 0, max: 120}
  - {expect: matches, column: email, pattern: '^[^@]+@[^@]+$', severity: warning}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = pl.DataFrame({"id": [1, 2, 3], "age": [10, 20, 30], "email": ["a@x", "b@x", "c@x"]})
    bad = pl.DataFrame(
        {"id": [1, 2, 2, 4], "age": [10, -5, 30, 999], "email": ["a@x", "[bold]b", "c@x", None]}
    )
    good.write_parquet(tmp_path / "good.parquet")
    bad.write_parquet(tmp_path / "bad.parquet")
    (tmp_path / "suite.yaml").write_text(SUITE)
    return {
        "good": tmp_path / "good.parquet",
        "bad": tmp_path / "bad.parquet",
        "suite": tmp_path / "suite.yaml",
    }


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "store").mkdir()
    return {
        "LOOPLINE_TRACKING_URI": f"sqlite:///{tmp_path / 'store' / 'l.db'}",
        "LOOPLINE_ARTIFACTS_URI": str(tmp_path / "art"),
        "COLUMNS": "160",
    }


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["data", "validate", *map(str, args)], env=env or {"COLUMNS": "200"})
    return result.exit_code, result.output


def test_passing_data_exits_0(files: dict[str, Path]) -> None:
    code, out = invoke(files["good"], "--suite", files["suite"])
    assert code == 0, out
    assert "PASSED: 3 of 3 checks passed" in out and "people on" in out


def test_failing_data_exits_1_with_a_table_and_failing_rows(files: dict[str, Path], tmp_path: Path) -> None:
    code, out = invoke(
        files["bad"],
        "--suite",
        files["suite"],
        "--json-out",
        tmp_path / "r.json",
        "--html",
        tmp_path / "r.html",
    )
    assert code == 1, out
    assert "FAILED: 0 of 3 checks passed, 2 failed, 1 warning" in out
    assert "between(age)" in out and "2 (50%)" in out and "1, 3" in out  # count, share, row numbers
    assert "between(age): 2 of 2 failing rows" in out and "999" in out
    assert "[bold]b" in out  # data is printed as text, not as markup
    result = json.loads((tmp_path / "r.json").read_text())
    assert [r["failing_rows"] for r in result["results"]] == [[1, 2], [1, 3], [1]]
    assert "<!doctype html>" in (tmp_path / "r.html").read_text()


def test_warnings_alone_exit_0(files: dict[str, Path], tmp_path: Path) -> None:
    pl.DataFrame({"id": [1], "age": [1], "email": ["nobody"]}).write_parquet(tmp_path / "w.parquet")
    code, out = invoke(tmp_path / "w.parquet", "--suite", files["suite"])
    assert code == 0 and "PASSED: 2 of 3 checks passed, 1 warning" in out


def test_json_format_prints_only_json(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(
        app, ["data", "validate", str(files["bad"]), "-s", str(files["suite"]), "-f", "json"]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["schema"] == "loopline.validation/1" and data["success"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --suite FILE, or --infer-from REFERENCE"),
        (("--suite", "S", "--infer-from", "R"), "not both"),
        (("--suite", "S", "--write-suite", "W"), "add --infer-from"),
    ],
)
def test_usage_errors_exit_2(files: dict[str, Path], args: tuple[str, ...], message: str) -> None:
    args = tuple(str(files["suite"]) if a == "S" else a for a in args)
    code, out = invoke(files["good"], *args)
    assert code == 2 and message in " ".join(out.split())


def test_bad_input_exits_2_and_names_the_problem(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text("expectations:\n  - {expect: not_null, column: emial}\n")
    code, out = invoke(files["good"], "--suite", tmp_path / "typo.yaml")
    assert code == 2 and "'emial'" in out and "Hint:" in out
    code, out = invoke(tmp_path / "missing.parquet", "--suite", files["suite"])
    assert code == 2 and "No file or folder" in out
    code, out = invoke(files["good"], "--suite", tmp_path / "missing.yaml")
    assert code == 2 and "No suite file" in out


def test_infer_write_and_reuse_a_suite(files: dict[str, Path], tmp_path: Path) -> None:
    suite = tmp_path / "inferred.yaml"
    code, out = invoke(files["good"], "--infer-from", files["good"], "--write-suite", suite)
    assert code == 0, out
    assert f"to {suite}" in out.replace("\n", "") and "expect: unique" in suite.read_text()
    code, out = invoke(files["bad"], "--suite", suite)
    assert code == 1 and "unique(id)" in out


def test_a_dataset_version_is_validated_and_the_result_stored(
    files: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    from loopline.config import Settings
    from loopline.data import DataClient

    client = DataClient(Settings.from_env(env))
    client.add(files["bad"], "people")
    code, out = invoke("datasets:/people", "--suite", files["suite"], env=env)
    assert code == 1, out
    assert "people on datasets:/people/1" in out and "Stored with datasets:/people/1" in out
    [stored] = client.validations("datasets:/people/1")
    assert stored.success is False

    code, out = invoke("datasets:/people/1", "--infer-from", "datasets:/people/1", "--no-record", env=env)
    assert code == 0, out  # a version passes the suite inferred from its own stored profile
    assert len(client.validations("datasets:/people/1")) == 1
    code, out = invoke("datasets:/nobody/1", "--suite", files["suite"], env=env)
    assert code == 2 and "Error:" in out
    (tmp_path / "typo.yaml").write_text("expectations:\n  - {expect: unique, column: idd}\n")
    code, out = invoke("datasets:/people/1", "--suite", tmp_path / "typo.yaml", env=env)
    assert code == 2 and "'idd'" in out
    assert len(client.validations("datasets:/people/1")) == 1  # nothing stored for bad input


def test_the_quickstart_example_runs(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "validation_quickstart.py")],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "the reference passes: True" in proc.stdout
    assert "FAILED unique(order_id): 2 rows [41, 42]" in proc.stdout
    assert "FAILED in_set(country): 1 rows [7]" in proc.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["success"] is False and (tmp_path / "report.html").is_file()
    assert "expect: custom" in (tmp_path / "suite.yaml").read_text()
