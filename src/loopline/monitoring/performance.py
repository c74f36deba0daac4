"""Model performance once ground truth arrives: accuracy/F1/AUC for classifiers, RMSE/MAE for regressors.

Plain NumPy (no scikit-learn at run time). The task is read off the labels: numbers that are not all
whole, or more than ``MAX_CLASSES`` distinct values, mean regression; anything else is classification.
F1 is the positive class's for two classes (the larger label, as ``1`` in 0/1 labels) and the macro
average otherwise; AUC needs two classes and numeric scores (probabilities or 0/1 predictions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_CLASSES = 50
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


def _numeric(values: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    try:
        arr = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 else None


def _label(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def task_of(labels: Sequence[Any]) -> str:
    y = _numeric(labels)
    if y is None or any(isinstance(v, bool | str) for v in labels[:100]):
        return "classification"
    if np.any(y != np.round(y)) or np.unique(y).size > MAX_CLASSES:
        return "regression"
    return "classification"


def auc(labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with midranks for ties); None without both classes."""
    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(s.size)
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    starts = np.r_[0, ends[:-1] + 1]
    for a, b in zip(starts, ends, strict=True):
        ranks[a : b + 1] = (a + b) / 2 + 1
    r = np.empty(s.size)
    r[order] = ranks
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def performance(labels: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
    """The figures of ``predictions`` against ``labels`` (equal length; pairs with a missing side dropped)."""
    pairs = [(y, p) for y, p in zip(labels, predictions, strict=True) if y is not None and p is not None]
    if not pairs:
        return {"labelled_rows": 0.0}
    ys = [y for y, _ in pairs]
    ps = [p for _, p in pairs]
    out: dict[str, float] = {"labelled_rows": float(len(pairs))}
    if task_of(ys) == "regression":
        y, p = _numeric(ys), _numeric(ps)
        if y is None or p is None:
            return out
        err = p - y
        out["rmse"] = math.sqrt(float(np.mean(err**2)))
        out["mae"] = float(np.mean(np.abs(err)))
        return out
    y_num, p_num = _numeric(ys), _numeric(ps)
    scores = None
    if y_num is not None and p_num is not None and np.isin(y_num, (0.0, 1.0)).all():
        # 0/1 labels: a prediction in (0, 1) is a probability, thresholded at 0.5 for the hard figures.
        t, h, scores = y_num.astype(np.int64), (p_num >= 0.5).astype(np.int64), p_num
    else:
        t, h = np.array([_label(v) for v in ys]), np.array([_label(v) for v in ps])
    out["accuracy"] = float(np.mean(t == h))
    classes = np.unique(t)
    f1s = []
    for c in classes:
        tp = float(np.sum((h == c) & (t == c)))
        fp = float(np.sum((h == c) & (t != c)))
        fn = float(np.sum((h != c) & (t == c)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    out["f1"] = f1s[-1] if classes.size == 2 else float(np.mean(f1s))
    if scores is not None and classes.size == 2:
        a = auc(t, scores)
        if a is not None:
            out["auc"] = a
    return out


def breached(figures: dict[str, float], thresholds: dict[str, float]) -> dict[str, float]:
    """Figures on the wrong side of their threshold (minimums, except RMSE/MAE which are maximums)."""
    bad = {}
    for key, limit in thresholds.items():
        value = figures.get(key)
        if value is None:
            continue
        if (value > limit) if key in LOWER_IS_BETTER else (value < limit):
            bad[key] = value
    return bad
