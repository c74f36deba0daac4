"""Column profiles: exact statistics in memory, merged statistics when streamed, JSON round trips, diffs."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from hypothesis import given, settings, strategies as st

from loopline.data.profile import TableProfile, diff_profiles, normalize_type, profile_table
from loopline.errors import InvalidInput


def frame(n: int = 1000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    x[::10] = np.nan  # 100 NaN
    return pl.DataFrame(
        {
            "id": np.arange(n),
            "x": x,
            "age": pl.Series(rng.integers(0, 100, n)).scatter(range(0, n, 20), None),  # 50 nulls
            "city": rng.choice(["berlin", "paris", "rome"], n, p=[0.5, 0.3, 0.2]),
            "email": [f"u{i}@x.org" for i in range(n)],
            "flag": rng.random(n) < 0.25,
            "ts": pl.datetime_range(
                dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1) + dt.timedelta(hours=n - 1), "1h", eager=True
            ),
            "tags": [[1, 2]] * n,
        }
    )


def test_in_memory_statistics_are_exact() -> None:
    df = frame()
    p = profile_table(df)
    assert p.num_rows == 1000 and list(p.columns) == df.columns and not p.sampled

    x = p.columns["x"]
    values = df["x"].to_numpy()
    values = values[~np.isnan(values)]
    assert (x.kind, x.type, x.count, x.null_count, x.nan_count) == ("numerical", "double", 900, 0, 100)
    assert x.min == values.min() and x.max == values.max()
    assert x.mean == pytest.approx(values.mean()) and x.std == pytest.approx(values.std(ddof=1))
    for key, q in (("p01", 0.01), ("p50", 0.5), ("p99", 0.99)):
        assert x.quantiles is not None and x.quantiles[key] == pytest.approx(np.quantile(values, q))

    age = p.columns["age"]
    assert (age.type, age.count, age.null_count) == ("int64", 950, 50)
    assert age.null_share == 0.05 and isinstance(age.min, int) and age.unique is False

    city = p.columns["city"]
    assert (city.kind, city.type, city.distinct, city.top_complete) == ("categorical", "string", 3, True)
    counts = df["city"].value_counts(sort=True)
    assert city.top == list(zip(counts["city"].to_list(), counts["count"].to_list(), strict=True))
    assert (city.min_length, city.max_length) == (4, 6)

    email = p.columns["email"]
    assert email.kind == "string" and email.unique is True
    assert email.top is not None and len(email.top) == 20 and not email.top_complete
    assert email.distinct == pytest.approx(1000, rel=0.03)
    assert p.columns["id"].unique is True

    flag = p.columns["flag"]
    assert flag.kind == "boolean" and flag.mean == pytest.approx(df["flag"].mean())
    assert dict(flag.top or []) == {True: int(df["flag"].sum()), False: 1000 - int(df["flag"].sum())}

    ts = p.columns["ts"]
    assert ts.kind == "datetime" and ts.type == "timestamp[us]"
    assert ts.min == "2024-01-01T00:00:00" and ts.max == "2024-02-11T15:00:00"
    assert p.columns["tags"].kind == "other" and p.columns["tags"].distinct is None


def test_pandas_and_arrow_input_profile_like_polars() -> None:
    df = frame(200).drop("tags")
    expected = profile_table(df).to_dict()
    assert profile_table(df.to_arrow()).to_dict() == expected
    from_pandas = profile_table(df.to_pandas()).to_dict()
    assert from_pandas["columns"]["age"]["null_count"] == 10
    assert from_pandas["columns"]["city"] == expected["columns"]["city"]


def test_a_dataset_is_streamed_and_merged(tmp_path: pytest.TempPathFactory) -> None:
    df = frame(5000, seed=3).drop("tags")
    whole = profile_table(df, sample_size=1000)
    path = f"{tmp_path}/data.parquet"
    df.write_parquet(path, row_group_size=700)
    streamed = profile_table(pads.dataset(path), batch_size=1000, sample_size=1000)

    assert streamed.num_rows == 5000 and streamed.sampled and whole.sampled
    for name, a in whole.columns.items():
        b = streamed.columns[name]
        assert (a.type, a.kind, a.count, a.null_count, a.nan_count) == (
            b.type,
            b.kind,
            b.count,
            b.null_count,
            b.nan_count,
        )
        assert (a.min, a.max, a.top, a.min_length, a.max_length) == (
            b.min,
            b.max,
            b.top,
            b.min_length,
            b.max_length,
        )
        if a.mean is not None:
            assert b.mean == pytest.approx(a.mean) and b.std == pytest.approx(a.std)
        if a.distinct is not None:
            assert b.distinct == pytest.approx(a.distinct, rel=0.03)
    assert streamed.columns["id"].unique is None  # not checked when streaming
    exact = np.nanquantile(df["x"].to_numpy(), 0.5)
    assert streamed.columns["x"].quantiles["p50"] == pytest.approx(exact, abs=0.3)  # type: ignore[index]


def test_small_dataset_is_profiled_like_a_table(tmp_path: pytest.TempPathFactory) -> None:
    df = frame(300).drop("tags")
    path = f"{tmp_path}/d.parquet"
    df.write_parquet(path, row_group_size=50)
    streamed, whole = profile_table(pads.dataset(path)).to_dict(), profile_table(df).to_dict()
    for name, col in whole["columns"].items():  # equal, but for the order of float summation
        for key, value in col.items():
            other = streamed["columns"][name][key]
            assert other == (pytest.approx(value) if key in ("mean", "std") and value is not None else value)
    assert streamed["columns"]["id"]["unique"] is True  # one chunk: checked exactly, as in memory


def test_json_round_trip_keeps_nan_and_infinities() -> None:
    df = pl.DataFrame({"v": [1.0, math.inf, -math.inf, None], "s": ["a", "b", "a", "a"]})
    p = profile_table(df)
    assert p.columns["v"].min == -math.inf and p.columns["v"].max == math.inf
    text = json.dumps(p.to_dict(), allow_nan=False)  # strict JSON
    back = TableProfile.from_dict(json.loads(text))
    assert back.columns["v"].max == math.inf and math.isnan(back.columns["v"].mean)  # type: ignore[arg-type]
    assert back.to_dict() == p.to_dict()
    assert back.columns["s"].top == [("a", 3), ("b", 1)]


def test_from_dict_rejects_what_is_not_a_profile() -> None:
    with pytest.raises(InvalidInput, match="Not a table profile"):
        TableProfile.from_dict({"columns": {"x": {"bogus": 1}}, "num_rows": 1})


def test_empty_table() -> None:
    p = profile_table(pl.DataFrame({"a": pl.Series([], dtype=pl.Int64)}))
    assert p.num_rows == 0 and p.columns["a"].count == 0 and p.columns["a"].mean is None


def test_normalize_type() -> None:
    assert (
        normalize_type("large_string") == "string"
        and normalize_type("large_list<item: int64>") == "list<item: int64>"
    )


def test_diff_reports_shifts() -> None:
    rng = np.random.default_rng(1)
    a = pl.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["u", "v"], 2000), "gone": np.ones(2000)})
    b = pl.DataFrame(
        {
            "x": pl.Series(rng.normal(0.5, 1, 2000)).scatter(range(200), None),
            "c": rng.choice(["u", "w"], 2000),
            "new": np.arange(2000),
        }
    )
    d = diff_profiles(profile_table(a).to_dict(), profile_table(b))
    assert d["added"] == ["new"] and d["removed"] == ["gone"]
    assert d["num_rows"] == {"a": 2000, "b": 2000, "change": 0.0}
    x = d["columns"]["x"]
    assert x["type"] is None and x["shifted"]
    assert x["null_share"]["change"] == pytest.approx(0.1)
    assert 0.4 < x["mean"]["change_in_std"] < 0.6
    assert x["quantiles"]["p50"]["change"] == pytest.approx(0.5, abs=0.15)
    assert d["columns"]["c"]["categories"] == {"added": ["w"], "removed": ["v"]}
    json.dumps(d, allow_nan=False)

    same = diff_profiles(profile_table(a), profile_table(a))
    assert not any(c["shifted"] for c in same["columns"].values())
    typed = diff_profiles(profile_table(a), profile_table(a.with_columns(pl.col("x").cast(pl.Float32))))
    assert typed["columns"]["x"]["type"] == {"a": "double", "b": "float"} and typed["columns"]["x"]["shifted"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-1000, 1000)), min_size=1, max_size=60))
def test_statistics_match_python(values: list[int | None]) -> None:
    p = profile_table(pa.table({"v": pa.array(values, type=pa.int64())})).columns["v"]
    present = [v for v in values if v is not None]
    assert (p.count, p.null_count) == (len(present), len(values) - len(present))
    if present:
        assert (p.min, p.max) == (min(present), max(present))
        assert p.mean == pytest.approx(sum(present) / len(present))
        assert p.unique is (len(set(present)) == len(present)) or p.unique is None
        assert p.quantiles is not None and p.quantiles["p50"] == pytest.approx(
            float(np.quantile(present, 0.5))
        )


def test_pandas_categorical_is_categorical() -> None:
    df = pd.DataFrame({"c": pd.Categorical(["a", "b", "a"])})
    c = profile_table(df).columns["c"]
    assert c.kind == "categorical" and c.top == [("a", 2), ("b", 1)] and c.type.startswith("dictionary")


@pytest.mark.parametrize(
    "dtype",
    [
        pl.Int8,
        pl.UInt64,
        pl.Float32,
        pl.Float64,
        pl.Boolean,
        pl.String,
        pl.Binary,
        pl.Date,
        pl.Time,
        pl.Null,
        pl.Datetime("us"),
        pl.Datetime("ns", "Europe/Berlin"),
        pl.Duration("ms"),
        pl.Categorical,
        pl.Enum(["a"]),
        pl.Decimal(10, 2),
        pl.List(pl.Int64),
        pl.Array(pl.Float32, 3),
        pl.Struct({"a": pl.Int64, "b": pl.List(pl.String)}),
    ],
)
def test_arrow_type_strings_match_pyarrow(dtype: pl.DataType) -> None:
    from loopline.data.profile import arrow_type_of

    assert arrow_type_of(dtype) == normalize_type(str(pl.Series([], dtype=dtype).to_arrow().type))
