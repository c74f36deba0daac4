"""Properties: the engine's failing rows are exactly those a plain Python loop finds, nulls included."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings, strategies as st

from loopline.data.validation import Suite, expect, validate

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ints = st.lists(st.one_of(st.none(), st.integers(-50, 50)), min_size=0, max_size=40)
floats = st.lists(st.one_of(st.none(), st.floats(-100, 100), st.just(math.nan)), min_size=0, max_size=40)
texts = st.lists(st.one_of(st.none(), st.text("ab@.x1", max_size=6)), min_size=0, max_size=40)


def failing(values: list[Any], e: Any, dtype: Any) -> list[int]:
    result = validate(pl.DataFrame({"v": pl.Series(values, dtype=dtype)}), Suite("p", [e]))
    [r] = result.results
    assert result.num_rows == len(values)
    rows = [] if r.failing_rows is None else r.failing_rows.tolist()
    assert r.unexpected_count == len(rows)
    return rows


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


@SETTINGS
@given(floats, st.floats(-100, 100), st.floats(-100, 100), st.booleans(), st.booleans())
def test_between(values: list[float | None], a: float, b: float, strict_min: bool, strict_max: bool) -> None:
    lo, hi = min(a, b), max(a, b)
    e = expect.between("v", lo, hi, strict_min=strict_min, strict_max=strict_max)
    expected = [
        i
        for i, v in enumerate(values)
        if not missing(v) and ((v <= lo if strict_min else v < lo) or (v >= hi if strict_max else v > hi))
    ]
    assert failing(values, e, pl.Float64) == expected


@SETTINGS
@given(ints, st.sets(st.integers(-50, 50), max_size=10))
def test_in_set(values: list[int | None], allowed: set[int]) -> None:
    expected = [i for i, v in enumerate(values) if v is not None and v not in allowed]
    assert failing(values, expect.in_set("v", sorted(allowed)), pl.Int64) == expected


@SETTINGS
@given(ints)
def test_unique(values: list[int | None]) -> None:
    counts = Counter(v for v in values if v is not None)
    expected = [i for i, v in enumerate(values) if v is not None and counts[v] > 1]
    assert failing(values, expect.unique("v"), pl.Int64) == expected


@SETTINGS
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.one_of(st.none(), st.sampled_from("xy"))),
        max_size=30,
    )
)
def test_compound_unique(pairs: list[tuple[int | None, str | None]]) -> None:
    df = pl.DataFrame(
        {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]}, schema={"a": pl.Int64, "b": pl.String}
    )
    counts = Counter(pairs)
    expected = [i for i, p in enumerate(pairs) if p != (None, None) and counts[p] > 1]
    [r] = validate(df, Suite("p", [expect.unique(columns=["a", "b"])])).results
    assert ([] if r.failing_rows is None else r.failing_rows.tolist()) == expected


@SETTINGS
@given(texts, st.integers(0, 4), st.integers(0, 4))
def test_length_and_regex(values: list[str | None], a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    expected = [i for i, v in enumerate(values) if v is not None and not lo <= len(v) <= hi]
    assert failing(values, expect.length("v", lo, hi), pl.String) == expected
    expected = [i for i, v in enumerate(values) if v is not None and "@" not in v]
    assert failing(values, expect.matches("v", "@"), pl.String) == expected


@SETTINGS
@given(floats, st.floats(0, 1))
def test_not_null(values: list[float | None], share: float) -> None:
    expected = [i for i, v in enumerate(values) if missing(v)]
    e = expect.not_null("v", max_share=share)
    assert failing(values, e, pl.Float64) == expected
    [r] = validate(pl.DataFrame({"v": pl.Series(values, dtype=pl.Float64)}), Suite("p", [e])).results
    assert r.success == (len(expected) <= share * len(values) + 1e-9)


@SETTINGS
@given(ints, st.integers(-50, 50))
def test_custom_expression(values: list[int | None], threshold: int) -> None:
    expected = [i for i, v in enumerate(values) if v is not None and not v > threshold]
    e = expect.custom("gt", lambda df: pl.col("v") > threshold)
    assert failing(values, e, pl.Int64) == expected
