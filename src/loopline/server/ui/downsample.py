"""Fewer points for a chart that looks the same: the minimum and maximum of each bucket of x.

A line through 100,000 points on a 1,000-pixel-wide chart draws each pixel column from ~100 points;
what the eye sees of them is their extent. Keeping each bucket's lowest and highest point (in x order)
keeps every spike and dip that a mean or a stride would hide, in 2 points per bucket. Zooming asks
again for the visible range only, which comes back exact once it holds few enough points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Series:
    """Points in x order; ``exact`` when they are every point in the range; ``total``: how many those are."""

    x: list[float]
    y: list[float | None]  # None for NaN: a gap in the line
    exact: bool
    total: int


def min_max(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    buckets: int,
    lo: float | None = None,
    hi: float | None = None,
) -> Series:
    """The points with ``lo <= x <= hi``, all of them if there are at most ``2 * buckets``, else the
    lowest and highest of each of ``buckets`` equal slices of the x range."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if lo is not None:
        keep = x >= lo
        x, y = x[keep], y[keep]
    if hi is not None:
        keep = x <= hi
        x, y = x[keep], y[keep]
    total = len(x)
    if total <= 2 * buckets:
        return Series(x.tolist(), _values(y), True, total)
    start, stop = float(x[0]), float(x[-1])
    bounds = np.searchsorted(x, np.linspace(start, stop, buckets + 1)[1:-1], side="left")
    picked: list[int] = []
    for a, b in zip(np.concatenate(([0], bounds)), np.concatenate((bounds, [total])), strict=True):
        if a == b:
            continue
        part = y[a:b]
        finite = ~np.isnan(part)
        if not finite.any():
            picked.append(int(a))  # an all-NaN bucket stays a gap
            continue
        low = int(a + np.nanargmin(part))
        high = int(a + np.nanargmax(part))
        if not finite.all():
            picked.append(int(a + np.flatnonzero(~finite)[0]))  # and a NaN inside one stays visible
        picked.extend(sorted({low, high}))
    idx = np.unique(np.array(picked, dtype=np.int64))  # x order, each point once
    return Series(x[idx].tolist(), _values(y[idx]), False, total)


def _values(y: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if v != v else v for v in y.tolist()]  # NaN != NaN


__all__ = ["Series", "min_max"]
