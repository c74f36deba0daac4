"""A paired bootstrap of a metric difference: is the candidate worse than the champion by more than
the loss a gate allows?

Both models are scored on the same held-out rows, so their errors are correlated; resampling ROWS
and scoring both models on each resample keeps that pairing, and the spread of the difference is
far smaller than two separate intervals would suggest. A batch of resamples is a ``(B, n)`` array
of drawn row indices (``n`` uniform draws with replacement each), shared by both models, and each
metric scores the whole batch with a few array operations, no Python loop over resamples:

- ``accuracy_score``, ``log_loss``, ``mean_absolute_error``, ``mean_squared_error``,
  ``root_mean_squared_error``, ``r2_score``: means of per-row values over the drawn rows;
- ``precision_score``, ``recall_score``, ``f1_score``: each resample's confusion matrix, one
  ``bincount`` of (true, predicted) cells for the batch (binary for two labels, the unweighted mean
  over labels — "macro" — for more, as ``loopline.evaluate``);
- ``roc_auc``: the Mann-Whitney form. The scores are sorted once; a resample is then the count of
  each (score rank, class) cell (one ``bincount``), and its AUC the sum over positives of the
  negatives ranked lower (ties count half), a cumulative sum along the ranks; one-vs-rest, macro,
  for more than two classes.

The bound is the percentile bootstrap's (as ``scipy.stats.bootstrap(method="percentile")``): the
``1 - confidence`` quantile (numpy's linear interpolation) of the resampled differences, on the
side of a loss — the lower bound of ``candidate - champion`` for a metric where higher is better,
the upper bound where lower is. A gate passes when that bound is no worse than ``-max_loss``: a
one-sided non-inferiority test at level ``1 - confidence``, so a candidate that is truly worse by
exactly ``max_loss`` is promoted in about ``1 - confidence`` of held-out samples (measured in
tests/automation/test_bootstrap.py and benchmarks/gate_calibration.py).

Resamples where a metric is undefined (ROC AUC with one class drawn, R² of a constant target) are
left out, and ``Interval.resamples`` says how many were used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInput

Array = npt.NDArray[Any]
Stat = Callable[[Array], Array]  # (B, n) drawn row indices -> (B,) metric values

# Each metric and whether higher is better.
METRICS: dict[str, bool] = {
    "roc_auc": True,
    "log_loss": False,
    "accuracy_score": True,
    "precision_score": True,
    "recall_score": True,
    "f1_score": True,
    "mean_absolute_error": False,
    "mean_squared_error": False,
    "root_mean_squared_error": False,
    "r2_score": True,
}
_PROBABILISTIC = ("roc_auc", "log_loss")  # scored from probabilities; the others from labels/values
_CELLS = 2_000_000  # row indices drawn at once (B x n): 16 MB


@dataclass(frozen=True)
class Interval:
    """The candidate's metric against the champion's, on the same rows.

    ``bound`` is the one-sided ``confidence`` bound of ``difference`` (candidate - champion) on the
    side of a loss: its lower bound when higher is better, its upper bound otherwise.
    """

    metric: str
    candidate: float
    champion: float
    difference: float
    bound: float
    confidence: float
    resamples: int
    higher_is_better: bool

    @property
    def worst_loss(self) -> float:
        """How much worse than the champion the candidate may be, at this confidence."""
        return -self.bound if self.higher_is_better else self.bound


def non_inferior(interval: Interval, max_loss: float) -> bool:
    """Whether the candidate is no worse than the champion by more than ``max_loss``."""
    return bool(interval.worst_loss <= max_loss)


def _positive(y: Array, classes: Array | None) -> Any:
    labels = np.asarray(classes) if classes is not None else np.unique(y)
    if len(labels) > 2 and classes is None:
        raise InvalidInput(
            f"One score per row needs two classes; the labels have {len(labels)}.",
            hint="Pass one probability column per class (and classes=) for more than two classes.",
        )
    return labels[-1]  # the greater label, as scikit-learn and loopline.evaluate take it


def _auc(y_pos: Array, score: Array) -> Stat:
    """Binary ROC AUC of ``score`` for the boolean labels ``y_pos``, on resampled rows."""
    # Cells: the distinct (score, class) pairs, negatives' first, ascending; a resample only needs
    # how often each cell was drawn. For each positive cell: the last negative cell scored strictly
    # lower (its running count of negatives) and the negative cell of the same score (a tie).
    rank = np.unique(score, return_inverse=True)[1].reshape(-1)
    keys, cell = np.unique(rank * 2 + y_pos, return_inverse=True)
    is_pos = (keys % 2).astype(bool)
    neg_rank, pos_rank = keys[~is_pos] // 2, keys[is_pos] // 2
    below = np.searchsorted(neg_rank, pos_rank)  # negative cells scored lower (= padded column)
    same = np.r_[neg_rank, -1][below] == pos_rank  # a negative cell of the same score follows
    tie = np.where(same, below + 1, 0)  # its padded column (0: none)
    neg_cells, pos_cells, k = np.flatnonzero(~is_pos), np.flatnonzero(is_pos), len(keys)

    def stat(draws: Array) -> Array:
        b = len(draws)
        counts = np.bincount((cell[draws] + (np.arange(b) * k)[:, None]).ravel(), minlength=b * k)
        counts = counts.reshape(b, k)
        neg = np.zeros((b, len(neg_cells) + 1), dtype=counts.dtype)  # column 0: "no such cell"
        neg[:, 1:] = counts[:, neg_cells]
        lower = np.cumsum(neg, axis=1)
        pos = counts[:, pos_cells]
        wins2 = np.einsum("bi,bi->b", pos, 2 * lower[:, below] + neg[:, tie])  # ties count half
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(wins2 / (2.0 * pos.sum(axis=1) * lower[:, -1]))

    return stat


def _mean_of(values: Array) -> Stat:
    return lambda draws: np.asarray(values[draws].mean(axis=1))


def _confusion(y: Array, pred: Array, metric: str, classes: Array | None) -> Stat:
    labels, both = np.unique(np.concatenate([y, pred]), return_inverse=True)
    k = len(labels)
    cell = both[: len(y)] * k + both[len(y) :]  # (true, predicted) cells of the confusion matrix
    if k <= 2:  # binary: the positive label's score
        pos = classes[-1] if classes is not None and len(classes) == 2 else labels[-1]
        chosen = np.flatnonzero(labels == pos)
    else:
        chosen = np.arange(k)  # macro: every label either side has

    def stat(draws: Array) -> Array:
        b = len(draws)
        m = np.bincount((cell[draws] + (np.arange(b) * k * k)[:, None]).ravel(), minlength=b * k * k)
        m = m.reshape(b, k, k).astype(float)
        tp = np.diagonal(m, axis1=1, axis2=2)
        fp, fn = m.sum(axis=1) - tp, m.sum(axis=2) - tp  # predicted as the label / truly the label
        num = {"precision_score": tp, "recall_score": tp, "f1_score": 2 * tp}[metric]
        den = {"precision_score": tp + fp, "recall_score": tp + fn, "f1_score": 2 * tp + fp + fn}[metric]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_label = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)  # zero_division=0
        return np.asarray(per_label[:, chosen].mean(axis=1))

    return stat


def _proba_stat(metric: str, y: Array, proba: Array, classes: Array | None) -> Stat:
    p = np.asarray(proba, dtype=float)
    if p.ndim == 1:
        y_pos = y == _positive(y, classes)
        if metric == "roc_auc":
            return _auc(y_pos, p)
        eps = np.finfo(float).eps
        return _mean_of(-np.log(np.clip(np.where(y_pos, p, 1 - p), eps, 1)))
    labels = np.asarray(classes) if classes is not None else np.unique(y)
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise InvalidInput(
            f"Probabilities of shape {list(p.shape)} do not match the {len(labels)} classes.",
            hint="Pass one column per class, in the order of classes=.",
        )
    if metric == "roc_auc":  # one-vs-rest, macro over the classes present
        aucs = [_auc(y == c, p[:, k]) for k, c in enumerate(labels) if np.any(y == c)]
        return lambda draws: np.asarray(np.mean([f(draws) for f in aucs], axis=0))
    column = {c: k for k, c in enumerate(labels.tolist())}
    try:
        at = np.array([column[v] for v in y.tolist()])
    except KeyError as e:
        raise InvalidInput(f"Label {e.args[0]!r} is not among the classes {labels.tolist()}.") from None
    p = p / p.sum(axis=1, keepdims=True)  # as scikit-learn's log_loss, rows sum to one
    return _mean_of(-np.log(np.clip(p[np.arange(len(y)), at], np.finfo(float).eps, 1)))


def _statistic(metric: str, y: Array, outputs: Any, classes: Array | None) -> Stat:
    """The metric of ``outputs`` (probabilities, labels or values) as a function of row counts."""
    if metric not in METRICS:
        raise InvalidInput(
            f"The gate cannot bootstrap the metric {metric!r}.", hint="Use one of " + ", ".join(METRICS) + "."
        )
    out = np.asarray(outputs)
    if len(out) != len(y):
        raise InvalidInput(f"There are {len(y)} labels but {len(out)} model outputs.")
    if metric in _PROBABILISTIC:
        return _proba_stat(metric, y, out, classes)
    if metric in ("accuracy_score", "precision_score", "recall_score", "f1_score"):
        if metric == "accuracy_score":
            return _mean_of((out == y).astype(float))
        return _confusion(y, out, metric, classes)
    err = out.astype(float) - y.astype(float)
    if metric == "mean_absolute_error":
        return _mean_of(np.abs(err))
    mse = _mean_of(err**2)
    if metric == "mean_squared_error":
        return mse
    if metric == "root_mean_squared_error":
        return lambda draws: np.sqrt(mse(draws))
    yf, n = y.astype(float), len(y)

    def r2(draws: Array) -> Array:
        total = (yf**2)[draws].sum(axis=1) - yf[draws].sum(axis=1) ** 2 / n  # around the resample's mean
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(1 - (err**2)[draws].sum(axis=1) / np.where(total > 1e-12 * n, total, np.nan))

    return r2


def metric_value(metric: str, y_true: Any, outputs: Any, *, classes: Any = None) -> float:
    """``metric`` of one model's ``outputs`` on all rows (as scikit-learn computes it)."""
    y = np.asarray(y_true)
    cls = None if classes is None else np.asarray(classes)
    return float(_statistic(metric, y, outputs, cls)(np.arange(len(y))[None, :])[0])


def paired_bootstrap(
    metric: str,
    y_true: Any,
    candidate: Any,
    champion: Any,
    *,
    classes: Any = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    higher_is_better: bool | None = None,
) -> Interval:
    """The paired percentile bootstrap of ``metric(candidate) - metric(champion)`` on the same rows.

    Args:
        metric: a name from :data:`METRICS`.
        y_true: the true labels or values.
        candidate, champion: each model's outputs on those rows: probabilities for ``roc_auc`` and
            ``log_loss`` (one column of the greater class's, or one column per class of
            ``classes``), predicted labels or values for the others.
        classes: the class of each probability column (default: the sorted labels).
        resamples: how many resamples of the rows (0: none; the bound is the point difference).
        confidence: of the one-sided bound (0.95: a 5 % chance of promoting a candidate truly worse
            by the allowed loss).
        seed: of the resampling; the same seed gives the same bound.
        higher_is_better: the metric's direction (default: its own, from :data:`METRICS`).

    Example:
        >>> iv = paired_bootstrap("roc_auc", y, p_new, p_old)   # doctest: +SKIP
        >>> non_inferior(iv, max_loss=0.005)
    """
    y = np.asarray(y_true)
    if len(y) < 2:
        raise InvalidInput(f"The bootstrap needs at least 2 rows, got {len(y)}.")
    if not 0.5 <= confidence < 1 or resamples < 0:
        raise InvalidInput(f"Need 0.5 <= confidence < 1 and resamples >= 0, got {confidence}, {resamples}.")
    cls = None if classes is None else np.asarray(classes)
    cand, champ = _statistic(metric, y, candidate, cls), _statistic(metric, y, champion, cls)
    every = np.arange(len(y))[None, :]
    c0, h0 = float(cand(every)[0]), float(champ(every)[0])
    higher = METRICS[metric] if higher_is_better is None else higher_is_better
    if resamples == 0:
        return Interval(metric, c0, h0, c0 - h0, c0 - h0, confidence, 0, higher)
    rng = np.random.default_rng(seed)
    batch = max(1, min(resamples, _CELLS // len(y)))
    diffs = []
    for start in range(0, resamples, batch):  # the same rows for both models: the pairing
        draws = rng.integers(0, len(y), size=(min(batch, resamples - start), len(y)))
        diffs.append(cand(draws) - champ(draws))
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    if len(d) < resamples / 2:
        raise InvalidInput(
            f"{metric} is undefined on most resamples of these {len(y)} rows "
            f"({resamples - len(d)} of {resamples}).",
            hint="Judge on more held-out rows (each class needs enough of them).",
        )
    bound = float(np.quantile(d, 1 - confidence if higher else confidence))
    return Interval(metric, c0, h0, c0 - h0, bound, confidence, len(d), higher)


__all__ = ["METRICS", "Interval", "metric_value", "non_inferior", "paired_bootstrap"]
