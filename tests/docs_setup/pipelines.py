"""The data pipelines.md names: the dataset ``churn`` (tenure, a few features, churned) and
prod.yaml, the parameters `--config` reads."""

from pathlib import Path

import numpy as np
import pandas as pd

import loopline

rng = np.random.default_rng(2)
n = 500
raw = pd.DataFrame(
    {"tenure": rng.integers(0, 72, n), "monthly": rng.normal(60, 20, n), "support_calls": rng.poisson(2, n)}
)
raw["churned"] = ((raw.tenure < 12) & (raw.support_calls > 2) | (rng.random(n) < 0.1)).astype(int)
loopline.log_dataset(raw, name="churn")
Path("prod.yaml").write_text("C: 1.0\n")
