"""The gate's statistics: metric values against scikit-learn, the paired bootstrap's bound against
``scipy.stats.bootstrap`` (paired, percentile), and its false-promotion rate at the margin.

The calibration data is binormal: negatives score N(0, 1), positives N(mu, 1), so a model's ROC AUC
is exactly Phi(mu / sqrt 2); the candidate's noise is correlated with the champion's (they are
scored on the same rows), and mu is chosen to make the true AUC difference what each test needs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from loopline.automation.bootstrap import METRICS, Interval, metric_value, non_inferior, paired_bootstrap
from loopline.errors import InvalidInput

MAX_LOSS, ALPHA = 0.005, 0.05
MU_CHAMPION = 1.5  # the champion's AUC: Phi(1.5 / sqrt 2) = 0.8556


def binormal(
    rng: np.random.Generator, trials: int, n: int, delta: float, rho: float = 0.8, prevalence: float = 0.3
) -> tuple[Any, Any, Any]:
    """``trials`` held-out samples of ``n`` rows: labels, candidate and champion scores, with the
    candidate's true AUC ``delta`` above the champion's."""
    auc = stats.norm.cdf(MU_CHAMPION / np.sqrt(2))
    mu = np.sqrt(2) * stats.norm.ppf(auc + delta)
    y = rng.random((trials, n)) < prevalence
    z, e = rng.normal(size=(trials, n)), rng.normal(size=(trials, n))
    return y.astype(int), mu * y + rho * z + np.sqrt(1 - rho**2) * e, MU_CHAMPION * y + z


def _classification(n: int = 3000) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(1.2 * y - 0.6 + rng.normal(0, 1, n))))
    y3 = rng.integers(0, 3, n)
    p3 = rng.dirichlet([1, 1, 1], n) + 0.6 * np.eye(3)[y3]
    p3 /= p3.sum(axis=1, keepdims=True)
    return {"y": y, "p": p, "p_tied": np.round(p, 1), "y3": y3, "p3": p3}


@pytest.mark.parametrize(
    ("metric", "case", "reference"),
    [
        ("roc_auc", "binary", lambda y, p: skm.roc_auc_score(y, p)),
        ("roc_auc", "tied", lambda y, p: skm.roc_auc_score(y, p)),
        ("roc_auc", "multiclass", lambda y, p: skm.roc_auc_score(y, p, multi_class="ovr")),
        ("log_loss", "binary", lambda y, p: skm.log_loss(y, p)),
        ("log_loss", "multiclass", lambda y, p: skm.log_loss(y, p)),
        ("accuracy_score", "labels", skm.accuracy_score),
        ("f1_score", "labels", skm.f1_score),
        ("precision_score", "labels", skm.precision_score),
        ("recall_score", "labels", skm.recall_score),
        ("f1_score", "multilabels", lambda y, p: skm.f1_score(y, p, average="macro")),
    ],
)
def test_metric_values_match_scikit_learn(metric: str, case: str, reference: Any) -> None:
    d = _classification()
    y, out = {
        "binary": (d["y"], d["p"]),
        "tied": (d["y"], d["p_tied"]),
        "multiclass": (d["y3"], d["p3"]),
        "labels": (d["y"], (d["p"] > 0.5).astype(int)),
        "multilabels": (d["y3"], d["p3"].argmax(axis=1)),
    }[case]
    assert metric_value(metric, y, out) == pytest.approx(reference(y, out), abs=1e-12)


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        ("mean_absolute_error", skm.mean_absolute_error),
        ("mean_squared_error", skm.mean_squared_error),
        ("root_mean_squared_error", skm.root_mean_squared_error),
        ("r2_score", skm.r2_score),
    ],
)
def test_regression_values_match_scikit_learn(metric: str, reference: Any) -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(3, 2, 500)
    pred = y + rng.normal(0, 0.8, 500)
    assert metric_value(metric, y, pred) == pytest.approx(reference(y, pred), abs=1e-12)


def _auc_rows(y: Any, score: Any, axis: int = -1) -> Any:
    """ROC AUC of each row (scipy hands the statistic a batch of resamples): Mann-Whitney from ranks."""
    ranks = stats.rankdata(score, axis=axis)
    pos = y.sum(axis=axis)
    neg = y.shape[axis] - pos
    return ((ranks * y).sum(axis=axis) - pos * (pos + 1) / 2) / (pos * neg)


def test_bound_agrees_with_scipy_paired_percentile_bootstrap() -> None:
    y, cand, champ = (a[0] for a in binormal(np.random.default_rng(11), 1, 800, delta=0.02))
    ours = paired_bootstrap("roc_auc", y, cand, champ, resamples=4000, confidence=0.95, seed=1)
    ref = stats.bootstrap(
        (y, cand, champ),
        lambda y, a, b, axis=-1: _auc_rows(y, a, axis) - _auc_rows(y, b, axis),
        paired=True,
        vectorized=True,
        method="percentile",
        alternative="greater",
        confidence_level=0.95,
        n_resamples=4000,
        rng=np.random.default_rng(2),
    )
    assert ours.difference == pytest.approx(
        skm.roc_auc_score(y, cand) - skm.roc_auc_score(y, champ), abs=1e-12
    )
    # Two independent Monte Carlo estimates of the 5% quantile: each off by ~0.05 standard errors.
    assert ours.bound == pytest.approx(ref.confidence_interval.low, abs=0.25 * ref.standard_error)
    assert ours.bound < ours.difference and ours.resamples == 4000
    assert ours.higher_is_better and ours.worst_loss == -ours.bound


def test_a_lower_is_better_metric_is_bounded_from_above_as_scipy_does() -> None:
    rng = np.random.default_rng(12)
    y = rng.normal(0, 1, 600)
    cand, champ = y + rng.normal(0, 0.5, 600), y + rng.normal(0, 0.55, 600)
    ours = paired_bootstrap("mean_absolute_error", y, cand, champ, resamples=4000, seed=3)
    ref = stats.bootstrap(
        (y, cand, champ),
        lambda y, a, b, axis=-1: np.abs(a - y).mean(axis=axis) - np.abs(b - y).mean(axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        alternative="less",
        n_resamples=4000,
        rng=np.random.default_rng(4),
    )
    assert not ours.higher_is_better and ours.bound > ours.difference
    assert ours.bound == pytest.approx(ref.confidence_interval.high, abs=0.25 * ref.standard_error)
    assert ours.worst_loss == ours.bound
    assert non_inferior(ours, max_loss=ours.bound) and not non_inferior(ours, max_loss=ours.bound - 1e-6)


def _promotion_rate(trials: int, n: int, delta: float, seed: int) -> float:
    y, cand, champ = binormal(np.random.default_rng(seed), trials, n, delta)
    return float(
        np.mean(
            [
                non_inferior(
                    paired_bootstrap("roc_auc", y[i], cand[i], champ[i], resamples=500, seed=i), MAX_LOSS
                )
                for i in range(trials)
            ]
        )
    )


def test_false_promotion_rate_at_the_margin_is_alpha() -> None:
    """A candidate truly worse by exactly the allowed loss is promoted in about alpha of the trials."""
    trials = 200
    rate = _promotion_rate(trials, 2000, delta=-MAX_LOSS, seed=21)
    tolerance = 3 * np.sqrt(ALPHA * (1 - ALPHA) / trials)  # binomial, 3 standard deviations: 0.046
    assert rate <= ALPHA + tolerance
    assert rate >= ALPHA - tolerance  # calibrated, not merely cautious: ~0.05, not 0


def test_a_clear_improvement_is_promoted() -> None:
    """The test has power: at a true gain of 0.02 AUC nearly every trial promotes."""
    assert _promotion_rate(50, 2000, delta=0.02, seed=22) >= 0.9


def test_a_clear_loss_is_not_promoted() -> None:
    assert _promotion_rate(50, 2000, delta=-0.03, seed=23) == 0.0


def test_ten_thousand_rows_a_thousand_resamples_well_under_a_second() -> None:
    y, cand, champ = (a[0] for a in binormal(np.random.default_rng(13), 1, 10_000, delta=0.0))
    paired_bootstrap("roc_auc", y, cand, champ, resamples=50)  # warm
    start = time.perf_counter()
    iv = paired_bootstrap("roc_auc", y, cand, champ, resamples=1000)
    assert time.perf_counter() - start < 1.0
    assert isinstance(iv, Interval) and iv.resamples == 1000


def test_same_seed_same_bound_and_identical_models_pass_at_zero_loss() -> None:
    y, cand, champ = (a[0] for a in binormal(np.random.default_rng(14), 1, 500, delta=0.0))
    a = paired_bootstrap("log_loss", y, 1 / (1 + np.exp(-cand)), 1 / (1 + np.exp(-champ)), seed=7)
    b = paired_bootstrap("log_loss", y, 1 / (1 + np.exp(-cand)), 1 / (1 + np.exp(-champ)), seed=7)
    assert a == b
    same = paired_bootstrap("roc_auc", y, cand, cand)
    assert same.difference == 0 and same.bound == 0 and non_inferior(same, 0.0)


def test_undefined_resamples_are_dropped_and_too_many_refused() -> None:
    y = np.array([1] + [0] * 29)  # one positive: (29/30)^30 = 36 % of resamples draw none
    iv = paired_bootstrap("roc_auc", y, np.linspace(0, 1, 30), np.linspace(1, 0, 30), resamples=2000)
    assert 1180 < iv.resamples < 1380
    with pytest.raises(InvalidInput, match="undefined on most resamples") as e:
        paired_bootstrap("roc_auc", np.zeros(30), np.linspace(0, 1, 30), np.linspace(1, 0, 30))
    assert "more held-out rows" in e.value.hint


def test_bad_input_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput, match="cannot bootstrap the metric 'auc'") as e:
        paired_bootstrap("auc", [0, 1], [0.1, 0.9], [0.2, 0.8])
    assert "roc_auc" in e.value.hint
    with pytest.raises(InvalidInput, match="two classes"):
        paired_bootstrap("roc_auc", [0, 1, 2], [0.1, 0.5, 0.9], [0.2, 0.5, 0.8])
    with pytest.raises(InvalidInput, match="3 labels but 2"):
        paired_bootstrap("accuracy_score", [0, 1, 1], [0, 1], [0, 1])
    assert set(METRICS) >= {"roc_auc", "accuracy_score", "f1_score", "log_loss", "r2_score"}
