"""The smallest useful Loopline script: one run with params, a metric per step and an artifact, then a search.

python examples/quickstart.py     # writes to ./.loopline (SQLite + artifacts)
loopline runs list -e quickstart  # the runs, from the command line
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import loopline


def main() -> None:
    with loopline.start_run(experiment="quickstart", run_name="exp-decay") as run:
        lr = 0.1
        loopline.log_params({"lr": lr, "steps": 50})
        for step in range(50):
            loopline.log_metric("loss", math.exp(-lr * step), step=step)  # buffered: ~µs per call
        with tempfile.TemporaryDirectory() as tmp:
            notes = Path(tmp) / "notes.txt"
            notes.write_text(f"loss = exp(-{lr} * step)\n")
            loopline.log_artifact(notes)  # stored as artifacts/notes.txt of the run
    print(f"logged run {run.run_id}")

    # The run ended (and its metrics were flushed) when the with block closed.
    for r in loopline.search_runs(["quickstart"], "metrics.loss < 0.1", order_by=["metrics.loss"]):
        print(r.info.run_id, r.info.run_name, r.data.params["lr"], r.data.metrics["loss"])


if __name__ == "__main__":
    main()
