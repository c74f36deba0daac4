"""A first suite from a reference profile: every column's presence, type, nulls, range and shape.

    profile = profile_table(reference)                    # or a dataset version's .profile dict
    suite = infer_suite(profile, name="customers")
    suite.to_yaml("suite.yaml")                            # then edit it

The reference data always passes the suite inferred from its profile: bounds are the observed ones
widened by a margin and rounded outwards. What it writes, per column kind:

* every column: ``column_exists`` with its type; ``not_null`` (with ``max_share`` of about twice the
  observed missing share plus one point when some values are missing);
* numerical, except integer keys (unique integer columns): ``between`` the observed min and max
  widened by ``range_margin`` of the range (never below 0 for a column that has no negative
  values); ``mean`` within ``stat_margin`` standard deviations; ``std`` within ±50%; the median
  between the reference's p25 and p75;
* categorical (at most 20 distinct values): ``in_set`` of the observed values;
* string: ``length`` bounds widened by ``range_margin``;
* integer and string columns found unique: ``unique``;
* the table: ``row_count`` within ``row_margin`` of the reference's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from loopline.data.profile import ColumnProfile, TableProfile
from loopline.data.validation import expect
from loopline.data.validation.suite import Suite

_DIGITS = 6  # significant digits kept in inferred bounds


def _down(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    scale = 10.0 ** (_DIGITS - 1 - math.floor(math.log10(abs(x))))
    return math.floor(x * scale) / scale


def _up(x: float) -> float:
    return -_down(-x)


def _is_int_type(c: ColumnProfile) -> bool:
    return c.type.startswith(("int", "uint"))


def infer_suite(
    profile: TableProfile | Mapping[str, Any],
    *,
    name: str = "inferred",
    range_margin: float = 0.1,
    stat_margin: float = 0.5,
    row_margin: float = 0.5,
    statistics: bool = True,
) -> Suite:
    """An editable suite the profiled data passes.

    Args:
        profile: a :class:`TableProfile` or its ``to_dict()`` (what a dataset version stores).
        range_margin: ranges and string lengths are widened by this share of the observed span.
        stat_margin: the mean may move this many standard deviations.
        row_margin: the row count may move this share of the reference's.
        statistics: also write mean, std and median checks (drift guards, stricter than ranges).
    """
    p = profile if isinstance(profile, TableProfile) else TableProfile.from_dict(profile)
    exps: list[Any] = []
    if p.num_rows:
        lo, hi = math.floor(p.num_rows * (1 - row_margin)), math.ceil(p.num_rows * (1 + row_margin))
        exps.append(expect.row_count(min=max(lo, 0), max=hi))
    for c in p.columns.values():
        exps.append(expect.column_exists(c.name, type=c.type))
        total = c.count + c.null_count + c.nan_count
        missing = (c.null_count + c.nan_count) / total if total else 0.0
        if missing == 0:
            exps.append(expect.not_null(c.name))
        elif missing < 1:
            share = min(1.0, math.ceil((2 * missing + 0.01) * 1e4) / 1e4)
            exps.append(expect.not_null(c.name, max_share=share))
        if c.kind == "numerical" and not (c.unique and _is_int_type(c)):  # a key is no measurement
            exps += _numerical(c, range_margin, stat_margin if statistics else None)
        elif c.kind == "categorical" and c.top_complete and c.top:
            exps.append(expect.in_set(c.name, sorted((v for v, _ in c.top), key=str)))
        elif c.kind == "string" and c.min_length is not None and c.max_length is not None:
            span = c.max_length - c.min_length
            lo_len = max(0, math.floor(c.min_length - range_margin * span))
            exps.append(expect.length(c.name, min=lo_len, max=math.ceil(c.max_length + range_margin * span)))
        if c.unique and (c.kind == "string" or _is_int_type(c)):
            exps.append(expect.unique(c.name))
    description = f"Inferred from a profile of {p.num_rows:,} rows; edit freely."
    return Suite(name, exps, description=description)


def _numerical(c: ColumnProfile, margin: float, stat_margin: float | None) -> list[Any]:
    out: list[Any] = []
    lo, hi = c.min, c.max
    if (
        isinstance(lo, int | float)
        and isinstance(hi, int | float)
        and math.isfinite(lo)
        and math.isfinite(hi)
    ):
        span = hi - lo
        low, high = lo - margin * span, hi + margin * span
        if lo >= 0:
            low = max(low, 0.0)
        if _is_int_type(c):
            out.append(expect.between(c.name, min=math.floor(low), max=math.ceil(high)))
        else:
            out.append(expect.between(c.name, min=_down(low), max=_up(high)))
    if stat_margin is None or c.mean is None or c.std is None or not math.isfinite(c.std):
        return out
    # An absolute floor keeps constant columns (std 0) passing despite float rounding.
    tol = max(stat_margin * c.std, 1e-9 * max(1.0, abs(c.mean)))
    out.append(expect.mean(c.name, min=_down(c.mean - tol), max=_up(c.mean + tol)))
    eps = 1e-9 * max(1.0, c.std)
    out.append(expect.std(c.name, min=_down(max(c.std * 0.5 - eps, 0.0)), max=_up(c.std * 1.5 + eps)))
    q = c.quantiles or {}
    if "p25" in q and "p75" in q and math.isfinite(q["p25"]) and math.isfinite(q["p75"]):
        out.append(expect.quantile(c.name, 0.5, min=_down(q["p25"]), max=_up(q["p75"])))
    return out
