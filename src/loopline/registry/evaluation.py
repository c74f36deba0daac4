"""Evaluate a model on labelled data and log the metrics to a run.

    result = loopline.evaluate("models:/churn@challenger", df, targets="churned", model_type="classifier")
    result.metrics["f1_score"]

Metric names are MLflow's (``mlflow.evaluate``'s default evaluator), so dashboards and filters
written for MLflow runs read these too:

- classifier: ``example_count``, ``accuracy_score``, ``precision_score``, ``recall_score``,
  ``f1_score`` (of the positive class, the greater label, for two classes; the unweighted mean
  over classes — "macro" — for more), and, when the model gives class probabilities,
  ``roc_auc`` (one-vs-rest, macro, for more than two classes) and ``log_loss``;
- regressor: ``example_count``, ``mean_absolute_error``, ``mean_squared_error``,
  ``root_mean_squared_error``, ``r2_score``, ``max_error``, ``mean_absolute_percentage_error``,
  ``sum_on_target``, ``mean_on_target``.

Probabilities come from ``predict_proba`` of the native model (scikit-learn, XGBoost and
LightGBM estimators), from an ONNX model's probability output, or from a model whose ``predict``
already returns probabilities (an XGBoost or LightGBM ``Booster`` with a binary or softmax
objective). A metric that cannot be computed (ROC AUC with one class present) is left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from loopline.errors import InvalidInput

ModelType = Literal["classifier", "regressor"]


@dataclass(frozen=True)
class EvaluationResult:
    """The metrics, and the run they were logged to (``None`` when no run was given or active)."""

    metrics: dict[str, float]
    model_type: str
    run_id: str | None = None
    example_count: int = 0
    artifacts: dict[str, Any] = field(default_factory=dict)


def _split(data: Any, targets: Any) -> tuple[Any, Any]:
    """(features, labels) from a DataFrame + target column name, or from X + y."""
    import numpy as np

    if isinstance(targets, str):
        if not hasattr(data, "columns"):
            raise InvalidInput(
                f"targets={targets!r} names a column, but the data is not a DataFrame.",
                hint="Pass a DataFrame with that column, or the features and the labels (X, y).",
            )
        if targets not in data.columns:
            raise InvalidInput(
                f"The data has no target column {targets!r}.",
                hint="Columns: " + ", ".join(map(str, data.columns)) + ".",
            )
        return data.drop(columns=[targets]), np.asarray(data[targets])
    if targets is None:
        raise InvalidInput("evaluate needs the true values.", hint="Pass targets= (a column name or array).")
    y = np.asarray(targets)
    if len(y) != len(data):
        raise InvalidInput(f"The data has {len(data)} rows but there are {len(y)} targets.")
    return data, y


def _model(model: Any, client: Any, allow_pickle: bool) -> Any:
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from loopline.registry.models import load_model

        return load_model(model, client=client, allow_pickle=allow_pickle)
    if not callable(getattr(model, "predict", None)):
        raise InvalidInput(
            f"Cannot evaluate a {type(model).__name__}: it has no predict method.",
            hint="Pass a model URI (models:/name@alias), a LoadedModel or a fitted model.",
        )
    return model


def _native_input(model: Any, X: Any) -> tuple[Any, Any]:
    """The native model and the input as the loaded model would hand it over."""
    from loopline.registry.models import LoadedModel
    from loopline.registry.signature import enforce

    if isinstance(model, LoadedModel):
        return model.native, enforce(model.signature, X)
    return model, X


def _column(values: Any) -> Any:
    import numpy as np

    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def _onnx_outputs(pred: Mapping[str, Any]) -> tuple[Any, Any]:
    """(labels, probabilities or None) from a multi-output model such as skl2onnx's classifiers."""
    import numpy as np

    names = list(pred)
    label_key = next((n for n in names if "label" in n.lower()), names[0])
    proba = None
    for n in names:
        if n != label_key and "prob" in n.lower():
            arr = np.asarray(pred[n])
            if arr.dtype.kind == "f" and arr.ndim == 2:
                proba = arr
    return _column(pred[label_key]), proba


def _looks_like_proba(arr: Any) -> bool:
    import numpy as np

    if arr.dtype.kind != "f" or arr.size == 0 or np.nanmin(arr) < 0 or np.nanmax(arr) > 1:
        return False
    if arr.ndim == 1:
        return not bool(np.all(np.mod(arr, 1) == 0))
    return arr.ndim == 2 and bool(np.allclose(arr.sum(axis=1), 1.0, atol=1e-4))


def _classify(model: Any, X: Any, y: Any) -> tuple[Any, Any, Any]:
    """(predicted labels, probabilities or None, the classes the probability columns stand for)."""
    import numpy as np

    pred = model.predict(X)
    native, native_X = _native_input(model, X)
    known = getattr(native, "classes_", None)
    classes = np.asarray(known) if known is not None else np.unique(y)
    proba = None
    if isinstance(pred, Mapping):
        labels, proba = _onnx_outputs(pred)
    else:
        arr = np.asarray(pred.to_numpy() if hasattr(pred, "to_numpy") else pred)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if _looks_like_proba(arr):  # a Booster or network giving probabilities
            proba = arr
            if arr.ndim == 1:
                labels = np.where(arr >= 0.5, classes[-1], classes[0]) if len(classes) == 2 else arr
            else:
                labels = classes[np.argmax(arr, axis=1)] if arr.shape[1] == len(classes) else arr.argmax(1)
        elif arr.ndim == 2:  # scores (logits): the best column is the class
            labels = classes[np.argmax(arr, axis=1)] if arr.shape[1] == len(classes) else arr.argmax(1)
        else:
            labels = arr
    if proba is None and callable(getattr(native, "predict_proba", None)):
        try:
            proba = np.asarray(native.predict_proba(native_X))
        except Exception:  # some estimators define predict_proba only for some settings
            proba = None
    if proba is not None and proba.ndim == 2 and proba.shape[1] == 2 and len(classes) == 2:
        proba = proba[:, 1]
    return _column(labels), proba, classes


def _regress(model: Any, X: Any, y: Any) -> Any:
    pred = model.predict(X)
    if isinstance(pred, Mapping):
        pred = next(iter(pred.values()))
    p = _column(pred).astype(float)
    if p.ndim != 1 or len(p) != len(y):
        raise InvalidInput(f"The model returned predictions of shape {list(p.shape)} for {len(y)} rows.")
    return p


def model_outputs(model: Any, X: Any, y: Any, model_type: ModelType = "classifier") -> tuple[Any, Any, Any]:
    """The per-row outputs ``evaluate`` scores ``model`` by, on features ``X`` with true values ``y``.

    A classifier: (predicted labels, probabilities or None, the classes of the probability columns;
    one column, of the greater class, for two). A regressor: (predictions, None, None). The gate's
    paired bootstrap (``loopline.automation.bootstrap``) resamples these rows.
    """
    if model_type == "regressor":
        return _regress(model, X, y), None, None
    labels, proba, classes = _classify(model, X, y)
    if labels.dtype != y.dtype and labels.dtype.kind in "fiu" and y.dtype.kind in "iu":
        labels = labels.astype(y.dtype)
    return labels, proba, classes


def _classifier_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as skm

    labels, proba, classes = model_outputs(model, X, y)
    present = np.unique(np.concatenate([np.unique(y), np.unique(labels)]))
    out: dict[str, float] = {"example_count": float(len(y)), "accuracy_score": skm.accuracy_score(y, labels)}
    if len(present) <= 2:
        pos = classes[-1] if len(classes) == 2 else present[-1]
        kw: dict[str, Any] = {"average": "binary", "pos_label": pos, "zero_division": 0}
    else:
        kw = {"average": "macro", "zero_division": 0}
    out["precision_score"] = skm.precision_score(y, labels, **kw)
    out["recall_score"] = skm.recall_score(y, labels, **kw)
    out["f1_score"] = skm.f1_score(y, labels, **kw)
    if proba is not None:
        cls = list(classes)
        try:
            if proba.ndim == 1:
                out["roc_auc"] = skm.roc_auc_score(y == classes[-1], proba)
                out["log_loss"] = skm.log_loss(y, np.column_stack([1 - proba, proba]), labels=cls)
            else:
                out["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=cls)
                out["log_loss"] = skm.log_loss(y, proba, labels=cls)
        except ValueError:  # one class only, or probabilities that do not match the classes
            pass
    return out


def _regressor_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as skm

    p = _regress(model, X, y)
    y = y.astype(float)
    return {
        "example_count": float(len(y)),
        "mean_absolute_error": skm.mean_absolute_error(y, p),
        "mean_squared_error": skm.mean_squared_error(y, p),
        "root_mean_squared_error": skm.root_mean_squared_error(y, p),
        "r2_score": skm.r2_score(y, p),
        "max_error": skm.max_error(y, p),
        "mean_absolute_percentage_error": skm.mean_absolute_percentage_error(y, p),
        "sum_on_target": float(np.sum(y)),
        "mean_on_target": float(np.mean(y)),
    }


def _log(metrics: dict[str, float], run_id: str | None, client: Any) -> str | None:
    from loopline.tracking import active_run, default_client
    from loopline.tracking.types import Metric

    tracking = getattr(client, "tracking", client)  # a RegistryClient carries its tracking Client
    if run_id is None:
        run = active_run()
        if run is None:
            return None
        run_id = run.run_id
        tracking = tracking or run.client
    tracking = tracking or default_client()
    ts = int(time.time() * 1000)
    tracking.log_batch(run_id, [Metric(k, v, ts, 0) for k, v in sorted(metrics.items())])
    return run_id


def evaluate(
    model: Any,
    data: Any,
    targets: Any = None,
    model_type: ModelType = "classifier",
    *,
    run_id: str | None = None,
    client: Any = None,
    allow_pickle: bool = False,
) -> EvaluationResult:
    """Compute ``model``'s metrics on ``data`` and log them to ``run_id`` (or the active run).

    ``model`` is a model URI (``models:/name@alias``, ``runs:/…``, a folder), a ``LoadedModel`` or a
    fitted model with ``predict``. ``data`` is a DataFrame whose ``targets`` column holds the true
    values, or the features with ``targets`` the true values. ``allow_pickle`` is passed to
    ``load_model`` when ``model`` is a URI (unpickling runs code: only for models you trust).
    """
    if model_type not in ("classifier", "regressor"):
        raise InvalidInput(
            f"Unknown model_type {model_type!r}.", hint="Use model_type='classifier' or 'regressor'."
        )
    X, y = _split(data, targets)
    if len(y) == 0:
        raise InvalidInput("There is no data to evaluate on.")
    loaded = _model(model, client, allow_pickle)
    compute = _classifier_metrics if model_type == "classifier" else _regressor_metrics
    raw = compute(loaded, X, y)
    metrics = {k: float(v) for k, v in raw.items() if v is not None and math.isfinite(float(v))}
    logged = _log(metrics, run_id, client)
    return EvaluationResult(metrics, model_type, logged, len(y))


__all__ = ["EvaluationResult", "evaluate", "model_outputs"]
