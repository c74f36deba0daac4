"""evaluate(): metrics against scikit-learn's own functions, logged to the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

import loopline
from loopline.errors import InvalidInput
from loopline.registry import evaluate, load_model, log_model
from loopline.tracking import default_client


@pytest.fixture(autouse=True)
def embedded(tmp_path: Path) -> Iterator[None]:
    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    yield
    while loopline.active_run():
        loopline.end_run()


def _classification(n_classes: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x1": rng.normal(0, 1, 120), "x2": rng.normal(0, 1, 120)})
    score = X.x1 + 0.5 * X.x2 + rng.normal(0, 0.7, 120)
    if n_classes == 2:
        return X, (score > 0).to_numpy().astype(int)
    return X, np.digitize(score, [-0.6, 0.6])


def test_binary_classifier_metrics_match_sklearn_and_are_logged() -> None:
    X, y = _classification()
    model = LogisticRegression().fit(X, y)
    with loopline.start_run(experiment="eval") as run:
        log_model(model, input_example=X[:3], registered_model_name="clf")
        result = evaluate("models:/clf/1", X.assign(label=y), targets="label", model_type="classifier")
    pred, proba = model.predict(X), model.predict_proba(X)
    expected = {
        "example_count": len(y),
        "accuracy_score": skm.accuracy_score(y, pred),
        "precision_score": skm.precision_score(y, pred),
        "recall_score": skm.recall_score(y, pred),
        "f1_score": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
        "log_loss": skm.log_loss(y, proba),
    }
    assert result.metrics == pytest.approx(expected)
    assert result.run_id == run.run_id
    logged = default_client().get_run(run.run_id).data.metrics
    assert logged == pytest.approx(expected)


def test_multiclass_uses_macro_averages() -> None:
    X, y = _classification(3)
    model = LogisticRegression(max_iter=500).fit(X, y)
    result = evaluate(model, X, y, "classifier")  # a fitted model and X + y work too; no run: not logged
    pred, proba = model.predict(X), model.predict_proba(X)
    assert result.run_id is None
    assert result.metrics["f1_score"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert result.metrics["precision_score"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert result.metrics["recall_score"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba))


def test_regressor_metrics_match_sklearn_and_log_to_the_given_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.uniform(1, 5, 80), "b": rng.uniform(0, 1, 80)})
    y = 3 * X.a - 2 * X.b + 10 + rng.normal(0, 0.3, 80)
    model = LinearRegression().fit(X, y)
    with loopline.start_run(experiment="eval") as run:
        log_model(model, registered_model_name="reg")
    loaded = load_model("models:/reg/1")
    result = evaluate(loaded, X, y.to_numpy(), "regressor", run_id=run.run_id)
    p = model.predict(X)
    assert result.metrics == pytest.approx(
        {
            "example_count": 80,
            "mean_absolute_error": skm.mean_absolute_error(y, p),
            "mean_squared_error": skm.mean_squared_error(y, p),
            "root_mean_squared_error": skm.root_mean_squared_error(y, p),
            "r2_score": skm.r2_score(y, p),
            "max_error": skm.max_error(y, p),
            "mean_absolute_percentage_error": skm.mean_absolute_percentage_error(y, p),
            "sum_on_target": float(y.sum()),
            "mean_on_target": float(y.mean()),
        }
    )
    logged = default_client().get_run(run.run_id).data.metrics
    assert logged["root_mean_squared_error"] == pytest.approx(skm.root_mean_squared_error(y, p))


def test_booster_probabilities_give_labels_and_auc() -> None:
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    X, y = _classification()
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(X, y), 5)
    with loopline.start_run(experiment="eval"):
        log_model(booster, registered_model_name="booster")
    result = evaluate("models:/booster/1", X, y)
    proba = booster.predict(xgb.DMatrix(X))
    assert result.metrics["accuracy_score"] == pytest.approx(skm.accuracy_score(y, proba >= 0.5))
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))


def test_onnx_classifier_uses_its_label_and_probability_outputs(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx (dev) makes the test model")
    X, y = _classification()
    arr = X.to_numpy(np.float32)
    model = LogisticRegression().fit(arr, y)
    proto = skl2onnx.to_onnx(model, arr[:1], options={"zipmap": False})
    loopline.registry.save_model(proto, tmp_path / "onnx")
    result = evaluate(str(tmp_path / "onnx"), arr, y)
    assert result.metrics["accuracy_score"] == pytest.approx(skm.accuracy_score(y, model.predict(arr)))
    assert result.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, model.predict_proba(arr)[:, 1]), 1e-5
    )


def test_bad_input_says_what_to_do() -> None:
    X, y = _classification()
    model = LogisticRegression().fit(X, y)
    with pytest.raises(InvalidInput, match="no target column 'label'") as err:
        evaluate(model, X, targets="label")
    assert "x1" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match="Unknown model_type"):
        evaluate(model, X, y, "ranker")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="120 rows but there are 3 targets"):
        evaluate(model, X, y[:3])
