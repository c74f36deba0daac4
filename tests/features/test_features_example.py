"""examples/features_quickstart.py, run as a user runs it: a fresh folder, the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loopline.config import Settings
from loopline.features import FeatureStore
from loopline.metadata import lineage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "features_quickstart.py"


def test_quickstart_registers_trains_and_serves(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "apply: 4 to add, 0 to change, 0 to remove." in out
    assert "apply again: No changes (4 objects up to date)." in out
    assert "materialised 3 drivers" in out
    assert "'conv_rate': [0.21], 'trips_today': [11], 'expected_value': [1.008]" in out
    fs = FeatureStore(
        Settings.from_env({}, tracking_uri=f"sqlite:///{tmp_path / '.loopline' / 'loopline.db'}")
    )
    assert sorted(fs.definitions()) == ["driver_activity", "driver_stats", "ride_value"]
    down = lineage.downstream(fs.registry.engine, "default", "features:/driver_stats")
    assert ("features:/driver_stats", "datasets:/rides_training/1") in {(e.from_uri, e.to_uri) for e in down}
    fs.close()
