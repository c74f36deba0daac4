"""The statistics of drift detection, on NumPy arrays: exact where SciPy is exact, vectorised throughout.

Numerical columns arrive **sorted** (the reference profile keeps its sample sorted; the current side is
sorted once per column), so every statistic here is a few ``searchsorted`` calls over sorted arrays
rather than a fresh sort per statistic:

============================  ==========================================================================
``ks``                        two-sample Kolmogorov-Smirnov: D, and SciPy's p-value (exact when
                              ``max(n1, n2) <= 10,000``, as ``scipy.stats.ks_2samp(method="auto")``
                              chooses, else Smirnov's asymptotic ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``)
``wasserstein``               the 1-Wasserstein distance (``scipy.stats.wasserstein_distance``)
``psi``, ``jensen_shannon``   on binned proportions (bins of the reference's quantiles, see ``binning``)
``chi2_test``                 two-sample chi-square (or G-test) on a 2 x k contingency table, as
                              ``scipy.stats.chi2_contingency(table, correction=False)``
``benjamini_hochberg``        adjusted p-values for testing many columns at once
============================  ==========================================================================

Agreement with SciPy is checked by a property test (``tests/monitoring/test_stats.py``).
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.errors import require

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

KS_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp's MAX_AUTO_N: 'auto' is exact up to this size
PSI_EPSILON = 1e-4  # an empty bin counts as this share of its sample (the usual PSI convention)
MIN_EXPECTED = 5.0  # chi-square: categories rarer than this (expected count) are pooled
# catch_warnings swaps the process-wide filter list and puts back what it saw on entry: two threads
# leaving out of order (drift tests columns in a thread pool) would leave SciPy's filter on for good.
_QUIET_SCIPY = threading.Lock()


def _group_ends(a: Floats) -> tuple[Floats, Ints]:
    """Distinct values of sorted ``a`` and how many elements are <= each (the ECDF numerators)."""
    if a.size == 0:
        return a, np.zeros(0, np.int64)
    ends = np.empty(a.size, bool)
    np.not_equal(a[1:], a[:-1], out=ends[:-1])
    ends[-1] = True
    idx = np.flatnonzero(ends)
    return a[idx], idx + 1


def ks_statistic(a: Floats, b: Floats) -> float:
    """sup |F_a - F_b| for sorted ``a`` and ``b``, in O(min(n) log max(n)).

    The ECDF of the smaller sample is constant between its distinct values, so the supremum is
    reached at one of them or just before the next: two ``searchsorted`` calls into the larger sample.
    """
    if a.size > b.size:
        a, b = b, a
    na, nb = a.size, b.size
    u, below = _group_ends(a)
    right = np.searchsorted(b, u, side="right")
    left = np.searchsorted(b, u, side="left")
    fa = below / na
    d_at = np.abs(fa - right / nb)  # at each distinct value of a
    # Just before the next distinct value: F_a still at its previous step, F_b almost at that value.
    prev = np.concatenate(([0.0], fa[:-1]))
    d_before = np.abs(left / nb - prev)
    return float(max(d_at.max(initial=0.0), d_before.max(initial=0.0)))


def import_scipy_stats() -> None:
    """Import SciPy's stats package in this thread, before worker threads need it.

    Threads that import its submodules at once from different entry points can trip Python's
    import-lock deadlock detection (``_DeadlockError`` on ``scipy.stats._stats_py``, seen when the
    server ran a monitor in its worker pool). Without SciPy, ``require`` says so where it is needed.
    """
    with contextlib.suppress(ImportError):
        import scipy.stats  # noqa: F401


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """SciPy's asymptotic two-sided p-value of D for sample sizes ``n1``, ``n2``."""
    from scipy.stats import distributions

    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(distributions.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks(ref: Floats, cur: Floats, *, n_ref: int | None = None) -> tuple[float, float]:
    """Two-sample KS (D, p-value) of sorted samples; ``n_ref`` is the true size when ``ref`` is a sketch.

    With both samples complete and ``max(n1, n2) <= 10,000`` both figures are SciPy's own
    (``ks_2samp(method="exact")``, which falls back to the asymptotic p-value, as ``"auto"`` does, when
    the exact one cannot be computed); larger samples use the asymptotic distribution, as SciPy does.
    """
    require("scipy", "monitoring")
    n1 = ref.size if n_ref is None else n_ref
    n2 = cur.size
    if n1 == 0 or n2 == 0:
        raise ValueError("KS needs at least one value on each side")
    if n_ref in (None, ref.size) and max(n1, n2) <= KS_EXACT_MAX_N:
        from scipy.stats import ks_2samp

        with _QUIET_SCIPY, warnings.catch_warnings():  # SciPy warns when it falls back to asymp
            warnings.simplefilter("ignore", RuntimeWarning)
            res = ks_2samp(ref, cur, method="exact")
        return float(res.statistic), float(res.pvalue)
    d = ks_statistic(ref, cur)
    return d, ks_pvalue(d, n1, n2)


def ks_critical(alpha: float, n1: int, n2: int) -> float:
    """The D that is just significant at ``alpha`` (asymptotic): how small a shift these sizes detect."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n1 + n2) / (n1 * n2))


def wasserstein(u: Floats, v: Floats) -> float:
    """1-Wasserstein distance of sorted samples, computed as ``scipy.stats.wasserstein_distance`` does."""
    all_values = np.concatenate((u, v))
    all_values.sort(kind="mergesort")  # two sorted runs: one linear merge
    deltas = np.diff(all_values)
    u_cdf = np.searchsorted(u, all_values[:-1], "right") / u.size
    v_cdf = np.searchsorted(v, all_values[:-1], "right") / v.size
    return float(np.dot(np.abs(u_cdf - v_cdf), deltas))


def proportions(counts: NDArray[Any]) -> Floats:
    total = counts.sum()
    return np.asarray(counts, np.float64) / total if total > 0 else np.zeros(len(counts))


def psi(ref_counts: NDArray[Any], cur_counts: NDArray[Any]) -> float:
    """Population stability index: sum (c - r) ln(c / r) over bins, empty bins counted as 1e-4."""
    r = proportions(ref_counts)
    c = proportions(cur_counts)
    r = np.where(r == 0, PSI_EPSILON, r)
    c = np.where(c == 0, PSI_EPSILON, c)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(ref_counts: NDArray[Any], cur_counts: NDArray[Any]) -> float:
    """Jensen-Shannon *distance* (square root of the divergence, base 2: between 0 and 1)."""
    p = proportions(ref_counts)
    q = proportions(cur_counts)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0)
        kq = np.where(q > 0, q * np.log2(q / m), 0.0)
    div = max(float(kp.sum() + kq.sum()) / 2, 0.0)
    return math.sqrt(div)


def total_variation(ref_counts: NDArray[Any], cur_counts: NDArray[Any]) -> float:
    """Half the L1 distance between the two proportions: the share of mass that moved."""
    return float(np.abs(proportions(ref_counts) - proportions(cur_counts)).sum() / 2)


def pooled_table(ref_counts: NDArray[Any], cur_counts: NDArray[Any]) -> Ints:
    """The 2 x k table a chi-square test can trust: categories with an expected count under 5 are pooled.

    Pooling depends only on the column totals (ancillary under "no drift"), so it keeps the test's
    level; it also bounds the table for columns with thousands of categories.
    """
    table = np.vstack([np.asarray(ref_counts, np.int64), np.asarray(cur_counts, np.int64)])
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    total = rows.sum()
    if table.shape[1] <= 1 or rows.min() == 0:
        return table
    expected_min = rows.min() * table.sum(axis=0) / total
    keep = expected_min >= MIN_EXPECTED
    if keep.all():
        return table
    pooled = table[:, ~keep].sum(axis=1, keepdims=True)
    kept = table[:, keep]
    if kept.shape[1] and rows.min() * pooled.sum() / total < MIN_EXPECTED:
        smallest = int(np.argmin(kept.sum(axis=0)))  # still too rare: fold into the rarest kept one
        kept = kept.copy()
        kept[:, smallest] += pooled[:, 0]
        return kept
    return np.hstack([kept, pooled])


def chi2_test(table: Ints, *, g_test: bool = False) -> tuple[float, float, int]:
    """Pearson chi-square (or G) test of homogeneity on a 2 x k table: (statistic, p-value, dof).

    Same figures as ``scipy.stats.chi2_contingency(table, correction=False)`` (``lambda_=
    "log-likelihood"`` for G). No Yates correction: it makes 2 x 2 tests conservative (a false-positive
    rate well under alpha), which the false-positive test would catch.
    """
    require("scipy", "monitoring")
    from scipy.stats import chi2_contingency

    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    res = chi2_contingency(table, correction=False, lambda_="log-likelihood" if g_test else None)
    return float(res.statistic), float(res.pvalue), int(res.dof)


def benjamini_hochberg(pvalues: NDArray[Any]) -> Floats:
    """Benjamini-Hochberg adjusted p-values: reject where adjusted <= alpha to keep the FDR at alpha."""
    p = np.asarray(pvalues, np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.clip(adjusted, 0.0, 1.0)
    return out


def bonferroni(pvalues: NDArray[Any]) -> Floats:
    p = np.asarray(pvalues, np.float64)
    return np.clip(p * p.size, 0.0, 1.0)
