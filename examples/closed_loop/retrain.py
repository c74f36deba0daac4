"""The demo's training pipeline, the one its loop policy names: retrain the breast-cancer model on the
newest version of the training data and register it (the controller finds the new version).

    loopline pipeline run examples/closed_loop/retrain.py:retrain -p flavour=logistic

``flavour`` stands for the code a team would change between retrainings: ``logistic`` is the
model that serves well; ``shuffled-labels`` is a bug (labels no longer line up with their rows)
that the gate must catch; ``heavy`` is a bagged ensemble of 1,500 of them, as accurate
offline but too slow online, which only a canary can catch.
"""

from __future__ import annotations

import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.ensemble import BaggingClassifier
from sklearn.linear_model import LogisticRegression

import loopline.pipelines as lp

MODEL = "breast-cancer"


@lp.step(register=MODEL)
def fit(frame: pd.DataFrame, flavour: str) -> ClassifierMixin:
    X, y = frame.drop(columns="label"), frame["label"].to_numpy()
    if flavour == "shuffled-labels":
        y = pd.Series(y).sample(frac=1.0, random_state=0).to_numpy()
    if flavour == "heavy":  # as accurate, 1,500 times the work per prediction
        heavy = BaggingClassifier(LogisticRegression(max_iter=1000), n_estimators=1500, random_state=0)
        return heavy.fit(X, y)
    return LogisticRegression(max_iter=1000).fit(X, y)


@lp.pipeline
def retrain(data: str = "datasets:/breast-cancer-train@latest", flavour: str = "logistic") -> ClassifierMixin:
    return fit(lp.dataset(data), flavour)  # the version read is an edge in the lineage graph
