"""A registry holding versions of a 20-feature churn classifier: what the serving tests serve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = [f"f{i}" for i in range(20)]


@dataclass(frozen=True)
class Registry:
    home: Path
    tracking_uri: str
    artifacts_uri: str
    X: pd.DataFrame
    models: dict[int, Any]  # version -> the fitted sklearn model

    def expected(self, version: int, X: pd.DataFrame) -> list[Any]:
        return list(self.models[version].predict(X))

    def client(self) -> Any:
        from loopline.config import Settings
        from loopline.tracking import Client

        return Client(Settings.from_env({}, tracking_uri=self.tracking_uri, artifacts_uri=self.artifacts_uri))


def make_registry(home: Path, versions: int = 3) -> Registry:
    """Versions 1..n of ``churn`` (logistic regressions that disagree), champion=1, challenger=2."""
    from sklearn.linear_model import LogisticRegression

    from loopline.registry import RegistryClient, log_model

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(400, 20)), columns=COLUMNS)
    y = (X.f0 + X.f1 * 0.5 - X.f2 > 0).astype(int)
    tracking_uri = f"sqlite:///{home / 'db.sqlite'}"
    artifacts_uri = str(home / "artifacts")
    reg = Registry(home, tracking_uri, artifacts_uri, X, {})
    client = reg.client()
    models = {}
    for v in range(1, versions + 1):
        # Each version flips the sign of one feature, so versions answer differently on the same rows.
        yv = y if v == 1 else (X[f"f{v}"] > 0).astype(int)
        model = LogisticRegression(C=1.0).fit(X, yv)
        run = client.create_run(client.set_experiment("churn").experiment_id)
        log_model(
            model,
            "model",
            input_example=X[:5],
            registered_model_name="churn",
            run_id=run.info.run_id,
            client=client,
        )
        client.set_terminated(run.info.run_id)
        models[v] = model
    rc = RegistryClient(client)
    rc.set_alias("churn", "champion", 1)
    rc.set_alias("churn", "challenger", 2)
    client.close()
    return Registry(home, tracking_uri, artifacts_uri, X, models)
