"""Bins and sketches of numerical columns, computed from sorted arrays.

- **Quantile bins** of the reference: ``n_bins`` bins holding equal shares of the reference (its
  quantiles at 1/n, 2/n, …, linear interpolation), open at both ends so that current values outside the
  reference's range still land in the first or last bin. Equal-count bins keep resolution where the
  data is — in a heavy tail too — where equal-width bins put nearly everything in one or two bins.
  Repeated quantiles (a column with few distinct values) collapse, so such a column gets fewer bins:
  one per distinct run of values, never an empty duplicate.
- **Sketch**: a large sorted reference is kept as ``size`` evenly spaced order statistics. Its ECDF is
  within ``1/(size-1) + 1/n`` of the full sample's everywhere, so a KS statistic computed from it is
  within that of the exact one (the p-value still uses the true ``n``).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def quantile_edges(sorted_values: Floats, n_bins: int) -> Floats:
    """The inner edges of ``n_bins`` equal-share bins of ``sorted_values`` (distinct, ascending)."""
    if n_bins < 2 or sorted_values.size == 0:
        return np.zeros(0)
    probs = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    # NumPy's default ("linear") quantiles, read off the sorted array: np.quantile would partition it again.
    pos = probs * (sorted_values.size - 1)
    lower = np.floor(pos).astype(np.int64)
    upper = np.minimum(lower + 1, sorted_values.size - 1)
    a, b = sorted_values[lower], sorted_values[upper]
    edges = a + (b - a) * (pos - lower)
    return np.unique(edges)


def bin_counts(sorted_values: Floats, edges: Floats) -> Ints:
    """How many of ``sorted_values`` fall in each bin ``(-inf, e0], (e0, e1], …, (e_last, inf)``."""
    at_or_below = np.searchsorted(sorted_values, edges, side="right")
    bounds = np.concatenate(([0], at_or_below, [sorted_values.size]))
    return np.diff(bounds).astype(np.int64)


def sketch(sorted_values: Floats, size: int) -> Floats:
    """``size`` evenly spaced order statistics (the minimum and maximum included); the sample if smaller."""
    n = sorted_values.size
    if n <= size:
        return sorted_values
    ranks = np.round(np.linspace(0, n - 1, size)).astype(np.int64)
    return np.ascontiguousarray(sorted_values[ranks])


def sketch_error(size: int, n: int) -> float:
    """Bound on |D_sketch - D_exact| for a KS statistic against a ``size``-point sketch of ``n`` values."""
    if n <= size:
        return 0.0
    return 1.0 / (size - 1) + 1.0 / n


def bin_labels(edges: Floats) -> list[str]:
    """Readable bin names for reports: ``≤ 1.5``, ``(1.5, 3.2]``, ``> 3.2``."""
    if edges.size == 0:
        return ["all"]
    f = [f"{e:.4g}" for e in edges]
    labels = [f"≤ {f[0]}"]
    labels += [f"({a}, {b}]" for a, b in itertools.pairwise(f)]
    labels.append(f"> {f[-1]}")
    return labels
