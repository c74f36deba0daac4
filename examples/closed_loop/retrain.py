"""The demo's training pipeline, the one its loop policy names: retrain the breast-cancer model on the
newest version of the training data and register it (the controller finds the new version).

    loopline pipeline run examples/closed_loop/retrain.py:retrain -p flavour=logistic

``flavour`` stands for the code a team would change between retrainings: ``logistic`` is the
model that serves well; ``shuffled-labels`` is a bug (labels no longer line up with their rows)
that the gate must catch; ``heavy`` is a big ensemble, as accurate offline but too slow online,
which only a canary can catch.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression

import loopline
import loopline.pipelines as lp

MODEL = "breast-cancer"


@lp.step
def training_data(uri: str) -> pd.DataFrame:
    return loopline.load_dataset(uri)


@lp.step(register=MODEL)
def fit(frame: pd.DataFrame, flavour: str) -> Any:
    X, y = frame.drop(columns="label"), frame["label"].to_numpy()
    if flavour == "shuffled-labels":
        y = pd.Series(y).sample(frac=1.0, random_state=0).to_numpy()
    if flavour == "heavy":
        return ExtraTreesClassifier(n_estimators=1500, max_depth=6, random_state=0).fit(X, y)
    return LogisticRegression(max_iter=1000).fit(X, y)


@lp.pipeline
def retrain(data: str = "datasets:/breast-cancer-train@latest", flavour: str = "logistic") -> Any:
    return fit(training_data(data), flavour)
