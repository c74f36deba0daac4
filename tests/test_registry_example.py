"""examples/registry_quickstart.py, run as a user runs it: a fresh folder, the embedded default, a subprocess.

The test then opens the ``./.loopline`` the script left behind and checks what it claims: a
registered version with the ``champion`` alias, made by a finished run, with a digest for every
file; the model loads by alias, verified, and predicts; the evaluation metrics are on the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline import Client, RunStatus, Settings
from loopline.registry import RegistryClient, load_model

pytest.importorskip("sklearn")
pytest.importorskip("skops")

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "registry_quickstart.py"
NAME = "breast-cancer"


def run_script(cwd: Path) -> str:
    """Run the example in ``cwd`` with no Loopline or MLflow settings inherited; its stdout."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=cwd, env=clean, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"{SCRIPT.name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    """The registry the example creates in ``tmp_path/.loopline``."""
    home = tmp_path / ".loopline"
    settings = Settings.from_env(
        {}, tracking_uri=f"sqlite:///{home / 'loopline.db'}", artifacts_uri=str(home / "artifacts")
    )
    client = Client(settings)
    yield RegistryClient(client)
    client.close()


def test_registry_quickstart_registers_aliases_loads_and_evaluates(
    tmp_path: Path, registry: RegistryClient
) -> None:
    out = run_script(tmp_path)

    champion = registry.get_model_version_by_alias(NAME, "champion")
    assert champion.version == 1 and champion.aliases == ("champion",)
    assert champion.status.value == "READY"
    assert f"registered {NAME} version 1 as @champion" in out
    assert "loaded version 1 (verified: True)" in out
    assert "refused: Input is missing column 'mean radius'." in out

    # The version came from a finished run, through a logged model, with every file pinned.
    run = registry.tracking.get_run(champion.run_id)
    assert run.info.status == RunStatus.FINISHED
    assert run.data.params == {"model": "logreg", "max_iter": "1000"}
    assert champion.model_id and champion.model_id in out
    assert {"MLmodel", "model.skops", "requirements.txt", "input_example.json"} <= set(champion.digests)

    # The evaluation's metrics were logged to that run, and match what the script printed.
    metrics = run.data.metrics
    assert metrics["example_count"] == 143  # a quarter of the 569 rows held out
    assert 0.9 < metrics["accuracy_score"] <= 1 and 0.95 < metrics["roc_auc"] <= 1
    printed = re.search(r"accuracy (\d\.\d{3}), ROC AUC (\d\.\d{3})", out)
    assert printed, out
    assert float(printed[1]) == round(metrics["accuracy_score"], 3)
    assert float(printed[2]) == round(metrics["roc_auc"], 3)

    # What the script left behind loads by alias, verified, and predicts the two classes.
    model = load_model(f"models:/{NAME}@champion", client=registry)
    assert model.verified and model.flavor == "sklearn"
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    assert set(model.predict(X).tolist()) == {0, 1}

    # A second run registers version 2 and moves the alias to it.
    run_script(tmp_path)
    assert registry.get_model_version_by_alias(NAME, "champion").version == 2
    assert registry.get_model_version(NAME, 1).aliases == ()
