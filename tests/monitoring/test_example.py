"""examples/monitoring_quickstart.py runs as a user runs it and leaves a monitor with its history."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monitoring_quickstart.py"


def test_monitoring_quickstart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^age +ks .*DRIFTED$", out, re.M) and "dataset drift: True" in out
    assert "same verdicts from the stored profile: True" in out
    assert "run 1: ok, 400 new rows" in out and "run 2: drift, 600 new rows" in out
    assert "alerts: ['monitor.drift_detected', 'monitor.performance_degraded']" in out
    page = (tmp_path / "drift_report.html").read_text()
    assert "<svg" in page and "http://" not in page and "https://" not in page
    assert (tmp_path / ".loopline" / "loopline.db").exists()
