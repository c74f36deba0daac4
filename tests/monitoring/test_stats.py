"""The statistics agree with SciPy's reference implementations and with plain NumPy formulas."""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.stats as ss
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.spatial.distance import jensenshannon as scipy_js

from loopline.monitoring import binning, stats

REL = 1e-9

# Values with ties, extremes and tiny magnitudes; samples from 1 to 80 values.
_value = st.one_of(
    st.integers(-5, 5).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-300, 2.5]),
)
_sample = st.lists(_value, min_size=1, max_size=80).map(lambda v: np.sort(np.array(v, np.float64)))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_sample, _sample)
def test_ks_agrees_with_scipy(a: np.ndarray, b: np.ndarray) -> None:
    with warnings.catch_warnings():  # SciPy's exact method gives up on some tied samples, and says so
        warnings.simplefilter("ignore", RuntimeWarning)
        want = ss.ks_2samp(a, b, method="auto")
    d, p = stats.ks(a, b)
    assert close(d, want.statistic) and close(p, want.pvalue)
    # The statistic used for large samples (no SciPy call) is the same figure.
    assert close(stats.ks_statistic(a, b), want.statistic)
    assert close(stats.ks_statistic(b, a), want.statistic)


def test_ks_asymptotic_path_agrees_with_scipy() -> None:
    rng = np.random.default_rng(3)
    a = np.sort(rng.normal(size=12_000))
    b = np.sort(np.round(rng.normal(0.02, 1, size=15_001), 2))  # ties too
    want = ss.ks_2samp(a, b)
    d, p = stats.ks(a, b)
    assert close(d, want.statistic) and close(p, want.pvalue)


def _ks_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(8)
    return {
        "shifted normals": (rng.normal(size=300), rng.normal(0.3, size=200)),
        "equal sizes": (rng.normal(size=500), rng.normal(0.1, 1.1, size=500)),
        "rounded (ties)": (np.round(rng.normal(size=1_000), 1), np.round(rng.normal(0.05, size=1_500), 1)),
        "integers (ties)": (rng.integers(0, 4, 40).astype(float), rng.integers(1, 5, 55).astype(float)),
        "largest exact": (rng.normal(size=10_000), rng.normal(0.02, size=9_999)),
        # SciPy's exact computation gives up here and falls back to the asymptotic p-value.
        "exact gives up": (np.array([0.0, 0.0, 0.0, 0.0, 1.0]), np.zeros(5)),
    }


@pytest.mark.parametrize("name", list(_ks_pairs()))
def test_ks_figures_are_scipys_own(name: str) -> None:
    a, b = (np.sort(x) for x in _ks_pairs()[name])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        want = ss.ks_2samp(a, b)  # the public function, its default method ("auto")
    assert bool(seen) == (name == "exact gives up")  # the case that checks the fallback takes it
    assert stats.ks(a, b) == (want.statistic, want.pvalue)  # the same floats, not merely close


def test_ks_in_many_threads_leaves_the_warning_filters_as_it_found_them() -> None:
    a, b = _ks_pairs()["exact gives up"]
    before = list(warnings.filters)

    def run(_: int) -> tuple[float, float]:
        return stats.ks(np.sort(a), b)

    with ThreadPoolExecutor(8) as pool:
        results = set(pool.map(run, range(1_000)))
    assert len(results) == 1
    assert warnings.filters == before  # SciPy's fallback warning was silenced only inside each call
    with pytest.raises(RuntimeWarning):  # pytest's "error" filter still applies
        warnings.warn("still raised", RuntimeWarning, stacklevel=1)


def test_ks_against_a_sketch_is_within_its_bound_and_uses_the_true_size() -> None:
    rng = np.random.default_rng(4)
    ref = np.sort(rng.standard_t(3, size=200_000))
    cur = np.sort(rng.standard_t(3, size=5_000) + 0.05)
    exact = ss.ks_2samp(ref, cur)
    sk = binning.sketch(ref, 4096)
    d, p = stats.ks(sk, cur, n_ref=ref.size)
    assert abs(d - exact.statistic) <= binning.sketch_error(4096, ref.size)
    assert close(p, stats.ks_pvalue(d, ref.size, cur.size))


@settings(max_examples=100, deadline=None)
@given(_sample, _sample)
def test_wasserstein_agrees_with_scipy(a: np.ndarray, b: np.ndarray) -> None:
    want = ss.wasserstein_distance(a, b)
    got = stats.wasserstein(a, b)
    assert math.isclose(got, want, rel_tol=REL, abs_tol=1e-12 * max(1.0, np.abs(np.r_[a, b]).max()))


_counts = st.lists(st.integers(0, 1000), min_size=2, max_size=12)


@settings(max_examples=100, deadline=None)
@given(_counts, st.data())
def test_psi_and_js_agree_with_plain_numpy(ref: list[int], data: st.DataObject) -> None:
    cur = data.draw(st.lists(st.integers(0, 1000), min_size=len(ref), max_size=len(ref)))
    r, c = np.array(ref, float), np.array(cur, float)
    if r.sum() == 0 or c.sum() == 0:
        return
    p, q = r / r.sum(), c / c.sum()
    pe, qe = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    assert math.isclose(
        stats.psi(r, c), float(np.sum((qe - pe) * np.log(qe / pe))), rel_tol=REL, abs_tol=1e-15
    )
    assert math.isclose(stats.jensen_shannon(r, c), float(scipy_js(p, q, base=2)), rel_tol=1e-7, abs_tol=1e-7)
    assert 0.0 <= stats.jensen_shannon(r, c) <= 1.0
    assert math.isclose(
        stats.total_variation(r, c), float(np.abs(p - q).sum() / 2), rel_tol=REL, abs_tol=1e-15
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=2, max_size=10))
def test_chi_square_and_g_test_agree_with_scipy(pairs: list[tuple[int, int]]) -> None:
    table = np.array(pairs, np.int64).T
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        assert stats.chi2_test(table) == (0.0, 1.0, 0)
        return
    for g in (False, True):
        want = ss.chi2_contingency(table, correction=False, lambda_="log-likelihood" if g else None)
        s, p, dof = stats.chi2_test(table, g_test=g)
        assert dof == want.dof
        assert math.isclose(s, want.statistic, rel_tol=REL, abs_tol=1e-12)
        assert math.isclose(p, want.pvalue, rel_tol=REL, abs_tol=1e-300)


def test_pooling_keeps_every_count_and_only_pools_rare_categories() -> None:
    ref = np.array([500, 300, 3, 2, 0, 1])
    cur = np.array([480, 310, 1, 0, 0, 4])
    table = stats.pooled_table(ref, cur)
    assert table.sum() == ref.sum() + cur.sum()
    assert table.shape == (2, 3)  # two common categories and one pooled bucket of the rare ones
    assert table[:, :2].tolist() == [[500, 300], [480, 310]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_benjamini_hochberg_agrees_with_scipy(p: list[float]) -> None:
    got = stats.benjamini_hochberg(np.array(p))
    np.testing.assert_allclose(got, ss.false_discovery_control(p), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_bins", [2, 5, 10, 20])
def test_quantile_bins_honour_n_bins_and_hold_equal_shares(n_bins: int) -> None:
    x = np.sort(np.random.default_rng(5).pareto(1.5, size=10_000))  # a heavy tail
    edges = binning.quantile_edges(x, n_bins)
    counts = binning.bin_counts(x, edges)
    assert len(counts) == n_bins and counts.sum() == x.size
    assert counts.min() >= x.size / n_bins - 2 and counts.max() <= x.size / n_bins + 2


def test_bins_collapse_on_repeated_values_instead_of_staying_empty() -> None:
    x = np.sort(np.array([1.0] * 90 + [2.0] * 10))
    edges = binning.quantile_edges(x, 10)
    counts = binning.bin_counts(x, edges)
    assert counts.sum() == 100 and (counts > 0).sum() >= 2 and len(counts) == len(edges) + 1
