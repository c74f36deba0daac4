"""``drift()``: the JSON shape, inputs of every kind, edge cases and bad input, stored profiles, HTML."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import scipy.stats as ss
from hypothesis import HealthCheck, given, settings, strategies as st

from loopline.errors import InvalidInput, NotFound
from loopline.monitoring import ReferenceProfile, drift, render_html, stats

RNG = np.random.default_rng(11)
N = 3000


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = pd.DataFrame(
        {
            "age": RNG.normal(40, 10, N),
            "income": RNG.lognormal(10, 1, N),
            "plan": RNG.choice(["basic", "pro", "team"], N, p=[0.6, 0.3, 0.1]),
        }
    )
    cur = pd.DataFrame(
        {
            "age": RNG.normal(46, 10, N),  # shifted
            "income": RNG.lognormal(10, 1, N),
            "plan": RNG.choice(["basic", "pro", "team"], N, p=[0.6, 0.3, 0.1]),
        }
    )
    return ref, cur


def test_json_shape_and_verdicts() -> None:
    ref, cur = frames()
    out = drift(ref, cur).to_dict()
    assert set(out) >= {"dataset_drift", "drift_share", "columns"}
    assert isinstance(out["dataset_drift"], bool) and isinstance(out["drift_share"], float)
    for col in out["columns"].values():
        assert col["kind"] in ("numerical", "categorical")
        assert isinstance(col["test"], str) and isinstance(col["statistic"], float)
        assert col["p_value"] is None or isinstance(col["p_value"], float)
        assert isinstance(col["threshold"], float) and isinstance(col["drifted"], bool)
        assert col["reason"]
    assert [n for n, c in out["columns"].items() if c["drifted"]] == ["age"]
    assert out["drift_share"] == pytest.approx(1 / 3) and out["dataset_drift"] is False
    assert out["columns"]["age"]["test"] == "ks" and out["columns"]["plan"]["test"] == "chisquare"
    json.dumps(out, allow_nan=False)  # strict JSON


def test_statistics_match_scipy_through_the_public_api() -> None:
    ref, cur = frames()
    cols = drift(ref, cur).columns
    want = ss.ks_2samp(ref.age, cur.age)
    assert math.isclose(cols["age"].statistic, want.statistic, rel_tol=1e-9)
    assert math.isclose(cols["age"].p_value or 0, want.pvalue, rel_tol=1e-9)
    table = pd.crosstab(
        np.r_[np.zeros(N), np.ones(N)], np.r_[ref.plan.to_numpy(), cur.plan.to_numpy()]
    ).to_numpy()
    chi = ss.chi2_contingency(table, correction=False)
    assert math.isclose(cols["plan"].statistic, chi.statistic, rel_tol=1e-9)
    w = drift(ref, cur, tests={"age": "wasserstein"}).columns["age"]
    assert math.isclose(
        w.statistic, ss.wasserstein_distance(ref.age, cur.age) / np.std(ref.age), rel_tol=1e-9
    )


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "parquet", "csv", "mapping"])
def test_inputs_of_every_kind_give_the_same_report(kind: str, tmp_path: Path) -> None:
    ref, cur = frames()
    base = drift(ref, cur).to_dict()["columns"]

    def conv(df: pd.DataFrame, name: str) -> object:
        if kind == "polars":
            return pl.from_pandas(df)
        if kind == "arrow":
            return pa.Table.from_pandas(df)
        if kind == "mapping":
            return {c: df[c].to_numpy() for c in df.columns}
        if kind in ("parquet", "csv"):
            path = tmp_path / f"{name}.{kind}"
            df.to_parquet(path) if kind == "parquet" else df.to_csv(path, index=False)
            return str(path)
        return df

    got = drift(conv(ref, "ref"), conv(cur, "cur")).to_dict()["columns"]
    for name in base:
        assert got[name]["statistic"] == pytest.approx(base[name]["statistic"], rel=1e-9)
        assert got[name]["drifted"] == base[name]["drifted"]


def test_tests_thresholds_and_bins_are_overridable_per_column() -> None:
    ref, cur = frames()
    r = drift(ref, cur, tests={"income": "psi", "plan": "js"}, thresholds={"income": 0.5}, n_bins=20)
    assert r.columns["income"].test == "psi" and r.columns["income"].threshold == 0.5
    assert len(r.columns["income"].histogram["labels"]) == 20  # 20 quantile bins, as asked
    assert r.columns["plan"].test == "jensenshannon" and r.columns["plan"].p_value is None
    assert "chosen by the caller" in r.columns["income"].reason
    with pytest.raises(InvalidInput, match="'plan' is categorical"):
        drift(ref, cur, tests={"plan": "ks"})
    with pytest.raises(InvalidInput, match="Unknown drift test"):
        drift(ref, cur, numerical_test="magic")


def test_heavy_tail_shift_is_seen_by_quantile_bins() -> None:
    """Mass moving into the tail: quantile bins resolve it; ~22 equal-width bins (the peer's) do not."""
    rng = np.random.default_rng(13)
    x = rng.pareto(1.2, 20_000)
    y = rng.pareto(1.2, 20_000)
    lo, hi = np.quantile(x, [0.8, 0.95])
    bulk = np.flatnonzero(y < np.quantile(y, 0.5))[:3000]
    y[bulk] = rng.uniform(lo, hi, bulk.size)  # 15% of the rows move from the bulk into the tail
    r = drift({"x": x}, {"x": y}, tests={"x": "psi"}, n_bins=20).columns["x"]
    assert r.drifted and r.statistic > 0.1
    edges = np.linspace(min(x.min(), y.min()), max(x.max(), y.max()), 23)
    wide = stats.psi(np.histogram(x, edges)[0], np.histogram(y, edges)[0])
    assert wide < 0.01  # equal-width bins put both bulk and tail shift in the first bin


def test_edge_cases_are_defined() -> None:
    n = 50
    ref = pa.table(
        {
            "const": np.full(n, 7.0),
            "allnull": pa.nulls(n, pa.float64()),
            "nulls_cur": np.arange(n, dtype=float),
            "weird": np.r_[np.arange(n - 2, dtype=float), np.nan, np.inf],
            "cat": ["a"] * 25 + ["b"] * 25,
        }
    )
    cur = pa.table(
        {
            "const": np.full(n, 7.0),
            "allnull": pa.nulls(n, pa.float64()),
            "nulls_cur": pa.nulls(n, pa.float64()),
            "weird": np.r_[np.arange(n - 3, dtype=float), -np.inf, np.nan, np.inf],
            "cat": ["a"] * 25 + ["c"] * 25,  # b absent, c new
        }
    )
    r = drift(ref, cur).columns
    assert r["const"].statistic == 0.0 and r["const"].p_value == 1.0 and not r["const"].drifted
    assert r["allnull"].test == "no_data" and not r["allnull"].drifted
    assert r["nulls_cur"].test == "no_data" and r["nulls_cur"].drifted
    assert r["nulls_cur"].quality["missing_share"] == 1.0
    w = r["weird"]
    want = ss.ks_2samp(np.arange(n - 2.0), np.arange(n - 3.0))
    assert math.isclose(w.statistic, want.statistic, rel_tol=1e-9) and w.quality["infinite"] == 2
    assert r["cat"].drifted and r["cat"].quality["new_categories"] == ["c"]
    tiny = drift({"x": [1.0]}, {"x": [2.0]}).columns["x"]  # one row each: defined, no crash
    assert tiny.p_value == 1.0 and not tiny.drifted


def test_bad_input_names_the_column_or_file(tmp_path: Path) -> None:
    ref, cur = frames()
    with pytest.raises(InvalidInput, match="lacks the column 'plan'"):
        drift(ref, cur.drop(columns=["plan"]))
    with pytest.raises(InvalidInput, match="'age' is numerical in the reference but categorical"):
        drift(ref, cur.assign(age=cur.age.astype(str)))
    with pytest.raises(InvalidInput, match=r"current data .* has no rows"):
        drift(ref, cur.iloc[:0])
    with pytest.raises(NotFound, match=r"missing\.parquet"):
        drift(ref, str(tmp_path / "missing.parquet"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput, match=r"broken\.parquet"):
        drift(str(broken), cur)
    with pytest.raises(InvalidInput, match="reference has no column 'nope'"):
        drift(ref, cur, columns=["nope"])


def test_stored_profile_round_trips_and_gives_the_same_report(tmp_path: Path) -> None:
    ref, cur = frames()
    profile = ReferenceProfile.build(ref)
    profile.save(str(tmp_path / "ref.npz"))
    loaded = ReferenceProfile.load(str(tmp_path / "ref.npz"))
    assert drift(loaded, cur).to_dict()["columns"] == drift(ref, cur).to_dict()["columns"]


def test_large_reference_is_sketched_and_says_so() -> None:
    big = {"x": RNG.normal(size=120_000)}
    profile = ReferenceProfile.build(big, sketch_size=2048)
    col = drift(profile, {"x": RNG.normal(0.5, 1, 2000)}).columns["x"]
    assert not col.exact and "sketch of 2,048 points" in col.reason and col.drifted


def test_many_columns_are_corrected_for_multiple_testing() -> None:
    rng = np.random.default_rng(12)
    ref = {f"c{i}": rng.normal(size=300) for i in range(200)}
    cur = {f"c{i}": rng.normal(size=300) for i in range(200)}
    raw = drift(ref, cur, correction="none", min_effect=0.0)
    bh = drift(ref, cur, correction="bh", min_effect=0.0)
    assert len(raw.drifted_columns) >= 3  # ~5% of 200 by chance alone
    assert len(bh.drifted_columns) <= 1 and not bh.dataset_drift


def test_prediction_and_target_drift_are_reported_apart() -> None:
    ref, cur = frames()
    ref["label"] = (ref.age > 40).astype(int)
    cur["pred"] = (cur.age > 40).astype(int)
    r = drift(ref, cur, target="label", prediction="pred", categorical=["label"])
    assert "label" not in r.columns and "pred" not in r.columns
    assert r.prediction_drift is not None and r.prediction_drift.drifted
    assert r.to_dict()["prediction_drift"]["kind"] == "categorical"


def test_html_is_self_contained_with_an_overlay_per_column(tmp_path: Path) -> None:
    ref, cur = frames()
    page = render_html(drift(ref, cur), tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == page
    assert not re.search(r"https?://", page)
    assert page.count("<svg") == 3 and "Drift report" in page
    assert "<script" not in page and "age" in page


_num = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False, width=32),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.0, 1.0]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_num, min_size=1, max_size=40),
    st.lists(_num, min_size=1, max_size=40),
    st.lists(st.sampled_from("abcd"), min_size=1, max_size=40),
    st.lists(st.sampled_from("bcde"), min_size=1, max_size=40),
)
def test_drift_agrees_with_scipy_on_messy_data(
    ref_x: list[float], cur_x: list[float], ref_c: list[str], cur_c: list[str]
) -> None:
    """NaN/inf, constant and tiny columns, categories absent on one side: defined, and SciPy's figures."""
    n = max(len(ref_x), len(ref_c))
    m = max(len(cur_x), len(cur_c))
    ref = pa.table({"x": (ref_x * n)[:n], "c": (ref_c * n)[:n]})
    cur = pa.table({"x": (cur_x * m)[:m], "c": (cur_c * m)[:m]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cols = drift(ref, cur, workers=1).columns
    fr = np.array(ref.column("x").to_pylist(), float)
    fc = np.array(cur.column("x").to_pylist(), float)
    fr, fc = fr[np.isfinite(fr)], fc[np.isfinite(fc)]
    x = cols["x"]
    if fr.size and fc.size:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = ss.ks_2samp(fr, fc)
        assert x.test == "ks" and math.isclose(x.statistic, want.statistic, rel_tol=1e-9)
        assert math.isclose(x.p_value or 0.0, want.pvalue, rel_tol=1e-9, abs_tol=1e-300)
    else:
        assert x.test == "no_data" and x.drifted == (fr.size + fc.size > 0)
    assert x.quality["infinite"] == int(np.isinf(np.array(cur.column("x").to_pylist(), float)).sum())
    cats = sorted(set(ref.column("c").to_pylist()))
    rc = [ref.column("c").to_pylist().count(k) for k in cats]
    cc = [cur.column("c").to_pylist().count(k) for k in cats]
    new = sum(v not in cats for v in cur.column("c").to_pylist())
    if new:
        rc, cc = [*rc, 0], [*cc, new]
    table = stats.pooled_table(np.array(rc), np.array(cc))
    c = cols["c"]
    if table.shape[1] >= 2:
        want_c = ss.chi2_contingency(table, correction=False)
        assert math.isclose(c.statistic, want_c.statistic, rel_tol=1e-9, abs_tol=1e-12)
    else:
        assert c.statistic == 0.0 and c.p_value == 1.0
    assert 0.0 <= (c.p_value or 0.0) <= 1.0
    json.dumps(drift(ref, cur, workers=1).to_dict(), allow_nan=False)


def test_a_thousand_columns_work() -> None:
    rng = np.random.default_rng(14)
    ref = pa.table({f"c{i}": rng.normal(size=300) for i in range(1000)})
    cur = pa.table({f"c{i}": rng.normal(size=300) + (1.0 if i % 100 == 0 else 0.0) for i in range(1000)})
    report = drift(ReferenceProfile.build(ref), cur)
    shifted = {f"c{i}" for i in range(0, 1000, 100)}
    assert set(report.drifted_columns) >= shifted
    assert len(set(report.drifted_columns) - shifted) <= 2  # BH bounds the false share, not their count
    assert len(report.to_dict()["columns"]) == 1000
