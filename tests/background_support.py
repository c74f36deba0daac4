"""What the tests of the server's background work in several workspaces share (importable as
``background_support``: tests/ is on sys.path): a loop policy whose retraining fails at once, and
waiting for something the server does by itself."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopline.automation.types import Gate, GateRule, Policy, RolloutStep

# A retraining that fails at once: enough to see a policy driven (its rollout started, then failed).
FAILING = textwrap.dedent(
    """
    from loopline.pipelines import pipeline, step


    @step
    def load(rows: int) -> int:
        raise ValueError("no fresh data yet")


    @pipeline
    def train(rows: int = 10):
        return load(rows)
    """
)


def failing_pipeline(folder: Path) -> str:
    """``FAILING`` written to ``folder/train.py``; its target."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(FAILING)
    return f"{folder / 'train.py'}:train"


def policy(pipeline: str, **kw: Any) -> Policy:
    """Policy churn: retrain ``pipeline``, then a canary on deployment churn-prod."""
    return Policy(
        name="churn",
        model="churn",
        deployment="churn-prod",
        pipeline=pipeline,
        gate=Gate(
            (GateRule("metric", metric="roc_auc", max_loss=0.02),), dataset="datasets:/h@latest", target="y"
        ),
        rollout=(RolloutStep("canary", 10, bake_s=0),),
        debounce_s=0,
        **kw,
    )


def wait_for(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    """``found()`` once it is truthy, polling every 0.2 s."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.2)
    return value
