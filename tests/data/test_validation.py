"""Expectation suites and the engine: every kind passing and failing, inputs, errors, inference, reports."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from loopline.config import Settings
from loopline.data.profile import profile_table
from loopline.data.validation import KINDS, Suite, expect, infer_suite, render_html, type_matches, validate
from loopline.errors import InvalidInput, NotFound

DF = pl.DataFrame(
    {
        "id": [1, 2, 3, 3, 5, None],
        "age": [10, -1, 200, 30, None, 50],
        "score": [0.1, float("nan"), 0.5, 0.7, 0.9, 0.3],
        "email": ["a@x.com", "bad", "c@x.com", None, "d@y.org", "e@x.com"],
        "country": ["DE", "FR", "XX", "DE", "DE", None],
        "order": [1, 1, 2, 2, 3, 3],
        "line": [1, 1, 1, 2, 1, 2],
        "day": [dt.date(2024, 1, d) for d in (1, 2, 3, 4, 5, 31)],
    }
)


def check(e: Any, data: Any = DF) -> Any:
    """The one result of a one-expectation suite."""
    [r] = validate(data, Suite("t", [e])).results
    return r


def rows(r: Any) -> list[int]:
    return [] if r.failing_rows is None else r.failing_rows.tolist()


# ---- every kind, passing and failing ----------------------------------------------------------------

CASES: list[tuple[str, Any, Any, list[int] | None]] = [
    # (kind, passing expectation, failing expectation, its failing rows — None: a table-level check)
    (
        "column_exists",
        expect.column_exists("id", type="int64"),
        expect.column_exists("id", type="string"),
        None,
    ),
    ("not_null", expect.not_null("order"), expect.not_null("email"), [3]),
    ("between", expect.between("age", -1, 200), expect.between("age", 0, 120), [1, 2]),
    ("in_set", expect.in_set("country", ["DE", "FR", "XX"]), expect.in_set("country", ["DE", "FR"]), [2]),
    ("unique", expect.unique("age"), expect.unique("id"), [2, 3]),
    (
        "matches",
        expect.matches("email", r"^\w+(@\w+\.\w+)?$"),
        expect.matches("email", r"^[^@]+@[^@]+$"),
        [1],
    ),
    ("length", expect.length("email", 3, 7), expect.length("email", min=5), [1]),
    ("row_count", expect.row_count(6, 6), expect.row_count(max=5), None),
    ("mean", expect.mean("score", 0.49, 0.51), expect.mean("score", min=0.6), None),
    ("std", expect.std("score", 0.3, 0.33), expect.std("score", max=0.1), None),
    ("quantile", expect.quantile("score", 0.5, 0.5, 0.5), expect.quantile("score", 0.9, max=0.5), None),
    ("references", expect.references("country", "REF", "code"), expect.references("country", "REF"), [0, 0]),
    (
        "custom",
        expect.custom("pos", lambda d: pl.col("age") >= -1),
        expect.custom("adult", sql="age >= 18"),
        [0, 1],
    ),
]


@pytest.fixture
def ref(tmp_path: Path) -> str:
    path = tmp_path / "countries.parquet"
    pl.DataFrame({"code": ["DE", "FR", "XX", None], "country": ["DE", "FR", "IT", "ES"]}).write_parquet(path)
    return str(path)


def _with_ref(e: Any, ref: str) -> Any:
    return e.model_copy(update={"dataset": ref}) if getattr(e, "dataset", None) == "REF" else e


def test_the_cases_cover_every_kind() -> None:
    assert sorted(k for k, *_ in CASES) == sorted(KINDS)


@pytest.mark.parametrize(("kind", "good", "bad", "failing"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_passes_and_fails(
    kind: str, good: Any, bad: Any, failing: list[int] | None, ref: str
) -> None:
    ok = check(_with_ref(good, ref))
    assert ok.success and ok.error is None and rows(ok) == []
    r = check(_with_ref(bad, ref))
    assert not r.success and r.error is None
    if kind == "references":
        failing = [2]  # XX is not among IT, ES, DE, FR of the other file's "country"
        assert r.observed["unexpected_values"] == ["XX"]
    if failing is None:
        assert r.failing_rows is None and r.summary() is None and r.observed is not None
    else:
        assert rows(r) == failing and r.unexpected_count == len(failing)
        assert [s["_row"] for s in r.failing_sample] == failing
        assert r.summary()["element_count"] == 6  # type: ignore[index]


def test_observed_values() -> None:
    assert check(expect.column_exists("score", type="float")).observed == "double"
    assert check(expect.not_null("email")).observed == pytest.approx(1 / 6)
    between = check(expect.between("age", 0, 120)).observed
    assert between == {"min": -1, "max": 200, "unexpected_values": [-1, 200]}
    assert check(expect.row_count(1)).observed == 6
    assert check(expect.mean("score", 0, 1)).observed == pytest.approx(0.5)  # NaN skipped like a null
    r = check(expect.length("email", 1, 3))
    assert r.observed["min_length"] == 3 and r.observed["max_length"] == 7


def test_missing_values_are_skipped_and_counted() -> None:
    r = check(expect.between("score", 0, 0.8))  # one NaN, one value over
    assert rows(r) == [4] and r.missing_count == 1
    s = r.summary()
    assert (
        s is not None
        and s["unexpected_percent"] == pytest.approx(20.0)
        and s["missing_percent"] == pytest.approx(100 / 6)
    )
    assert s["unexpected_percent_total"] == pytest.approx(100 / 6)
    assert rows(check(expect.not_null("score"))) == [1]  # NaN counts as missing for not_null


def test_strict_bounds_mostly_and_severity() -> None:
    assert rows(check(expect.between("age", 10, 200, strict_min=True, strict_max=True))) == [0, 1, 2]
    assert check(expect.in_set("country", ["DE"], mostly=0.6)).success  # 3 of 5 non-missing are DE
    assert not check(expect.in_set("country", ["DE"], mostly=0.61)).success
    result = validate(DF, Suite("t", [expect.between("age", 0, 120, severity="warning")]))
    assert result.success and not result.results[0].success and result.statistics()["warnings"] == 1


def test_compound_unique_and_dates() -> None:
    assert rows(check(expect.unique(columns=["order", "line"]))) == [0, 1]
    assert check(expect.unique(columns=["line", "id"])).success
    assert rows(check(expect.between("day", "2024-01-02", "2024-01-05"))) == [0, 5]
    ts = pl.DataFrame({"t": [dt.datetime(2024, 1, 1, 12), dt.datetime(2025, 1, 1)]})
    assert rows(check(expect.between("t", max="2024-06-30T00:00:00"), ts)) == [1]


def test_custom_checks_in_every_form() -> None:
    series = check(expect.custom("s", lambda d: d["age"] < 100))
    assert rows(series) == [2] and series.missing_count == 1
    fn = check(expect.custom("f", function="numpy:isfinite"))  # not a polars result: reported, not raised
    assert not fn.success and "numpy.ndarray" not in (fn.error or "") and fn.error
    boom = check(expect.custom("boom", lambda d: 1 / 0))
    assert boom.error == "ZeroDivisionError: division by zero"
    missing = check(expect.custom("gone", function="no.such.module:fn"))
    assert "cannot import" in (missing.error or "")
    with pytest.raises(InvalidInput, match="give exactly one of sql, function or check"):
        expect.custom("both", lambda d: d, sql="a > 1")


def test_a_custom_function_by_name_round_trips_through_yaml(tmp_path: Path) -> None:
    (tmp_path / "mychecks.py").write_text(
        "import polars as pl\n\ndef adult(df):\n    return pl.col('age') >= 18\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        import mychecks  # type: ignore[import-not-found]

        suite = Suite("t", [expect.custom("adult", mychecks.adult)])
        loaded = Suite.from_yaml_text(suite.to_yaml())
        assert loaded.to_dict()["expectations"][0]["function"] == "mychecks:adult"
        assert rows(validate(DF, loaded).results[0]) == [0, 1]
    finally:
        sys.path.remove(str(tmp_path))
    with pytest.raises(InvalidInput, match="YAML cannot refer to"):
        Suite("t", [expect.custom("l", lambda d: pl.col("age") > 1)]).to_yaml()


# ---- errors -------------------------------------------------------------------------------------------


def test_a_missing_column_is_invalid_input_naming_it() -> None:
    suite = Suite("t", [expect.not_null("emial"), expect.between("agee", 0, 1), expect.not_null("id")])
    with pytest.raises(InvalidInput) as err:
        validate(DF, suite)
    assert "'emial' (in not_null(emial))" in err.value.message and "'agee'" in err.value.message
    assert "id, age, score" in err.value.hint


def test_a_guarded_missing_column_fails_its_checks_instead() -> None:
    suite = Suite(
        "t",
        [
            expect.column_exists("phone"),
            expect.not_null("phone"),
            expect.column_exists("age", type="string"),
            expect.between("age", 0, 1),
            expect.not_null("id", max_share=0.5),
        ],
    )
    r = validate(DF, suite).results
    assert [x.success for x in r] == [False, False, False, False, True]
    assert r[0].observed is None and r[1].error == "skipped: column 'phone' is missing"
    assert r[3].error == "skipped: column 'age' is int64, not string"


def test_checks_that_cannot_apply_are_named() -> None:
    with pytest.raises(InvalidInput, match=r"between\(email\) cannot run on this data"):
        validate(DF, Suite("t", [expect.between("email", 0, 1)]))
    with pytest.raises(InvalidInput, match=r"matches\(email\) cannot run.*regex"):
        validate(DF, Suite("t", [expect.matches("email", "a(")]))
    with pytest.raises(InvalidInput, match=r"mean\(email\): column 'email' is string, not numeric"):
        validate(DF, Suite("t", [expect.mean("email", 0, 1)]))


def test_bad_expectations_are_refused_at_once() -> None:
    with pytest.raises(InvalidInput, match="min \\(5\\) is greater than max \\(1\\)"):
        expect.between("a", 5, 1)
    with pytest.raises(InvalidInput, match="give min, max or both"):
        expect.length("a")
    with pytest.raises(InvalidInput, match="either column or columns"):
        expect.unique()
    with pytest.raises(InvalidInput, match="mostly"):
        expect.in_set("a", [1], mostly=2)


def test_unreadable_inputs(tmp_path: Path) -> None:
    suite = Suite("t", [expect.row_count(1)])
    with pytest.raises(NotFound):
        validate(tmp_path / "nope.parquet", suite)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match="Could not read"):
        validate(tmp_path / "bad.parquet", suite)
    with pytest.raises(InvalidInput, match="Cannot read a table from a dict"):
        validate({"a": 1}, suite)


# ---- inputs -------------------------------------------------------------------------------------------


def test_every_input_gives_the_same_result(tmp_path: Path) -> None:
    df = DF.drop("day", "score").with_columns(pl.col("country").fill_null("DE"))  # CSV has no null strings
    suite = Suite(
        "t", [expect.between("age", 0, 120), expect.unique("id"), expect.in_set("country", ["DE", "FR"])]
    )
    expected = [rows(r) for r in validate(df, suite).results]
    df.write_parquet(tmp_path / "d.parquet")
    df.write_csv(tmp_path / "d.csv")
    df.write_ndjson(tmp_path / "d.jsonl")
    (tmp_path / "dir").mkdir()
    df.head(3).write_parquet(tmp_path / "dir" / "a.parquet")
    df.tail(3).write_parquet(tmp_path / "dir" / "b.parquet")
    inputs = [
        df.lazy(),
        df.to_pandas(),
        df.to_arrow(),
        pads.dataset(df.to_arrow()),
        tmp_path / "d.parquet",
        str(tmp_path / "d.csv"),
        tmp_path / "d.jsonl",
        tmp_path / "dir",
    ]
    for data in inputs:
        result = validate(data, suite)
        assert [rows(r) for r in result.results] == expected, data
        assert result.num_rows == 6


def test_a_dataset_version_is_validated_and_labelled(tmp_path: Path) -> None:
    from loopline.data import DataClient

    (tmp_path / "db").mkdir()
    client = DataClient(
        Settings.from_env(
            {}, tracking_uri=f"sqlite:///{tmp_path / 'db' / 'l.db'}", artifacts_uri=str(tmp_path / "art")
        )
    )
    client.add(DF.drop("day").to_arrow(), "people")
    result = validate("datasets:/people", Suite("t", [expect.unique("id")]), client=client)
    assert result.uri == result.target == "datasets:/people/1" and rows(result.results[0]) == [2, 3]
    suite = Suite("t", [expect.references("country", "datasets:/people/1", "country")])
    assert validate(DF, suite, client=client).success


# ---- YAML ---------------------------------------------------------------------------------------------


def every_kind(ref: str = "countries.parquet") -> Suite:
    return Suite(
        "all",
        [
            expect.column_exists("id", type="integer"),
            expect.not_null("email", max_share=0.1, severity="warning"),
            expect.between("age", 0, 120.5, strict_max=True, mostly=0.9),
            expect.in_set("country", ["DE", 1, None]),
            expect.unique("id", name="pk"),
            expect.unique(columns=["order", "line"]),
            expect.matches("email", r"^\S+@\S+$"),
            expect.length("email", 3),
            expect.row_count(1, 10),
            expect.mean("score", 0, 1),
            expect.std("score", max=1),
            expect.quantile("score", 0.25, 0, 1),
            expect.references("country", ref, "code"),
            expect.custom("adult", sql="age >= 18", description="grown-ups only"),
        ],
        description="every kind",
    )


def test_yaml_round_trip(tmp_path: Path) -> None:
    suite = every_kind()
    assert {e.kind for e in suite.expectations} == set(KINDS)
    text = suite.to_yaml(tmp_path / "s.yaml")
    assert Suite.from_yaml(tmp_path / "s.yaml") == suite
    assert "- expect: between\n  column: age\n  min: 0\n  max: 120.5\n" in text
    assert "columns:\n  - order\n  - line" in text and "columns_" not in text


def test_yaml_mistakes_are_explained(tmp_path: Path) -> None:
    def load(text: str) -> Suite:
        return Suite.from_yaml_text(text, source="s.yaml")

    with pytest.raises(InvalidInput, match=r"unknown expect 'betwen'"):
        load("expectations:\n  - {expect: betwen, column: a}")
    with pytest.raises(InvalidInput, match=r"s.yaml: expectations\[1\] \(between\) maxx: Extra inputs"):
        load("expectations:\n  - {expect: row_count, min: 1}\n  - {expect: between, column: a, maxx: 1}")
    with pytest.raises(InvalidInput, match=r"expectations\[0\] \(between\): min \(3\) is greater"):
        load("expectations:\n  - {expect: between, column: a, min: 3, max: 1}")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load("expectations: [")
    with pytest.raises(InvalidInput, match="a suite is a mapping"):
        load("- 1")
    with pytest.raises(NotFound):
        Suite.from_yaml(tmp_path / "missing.yaml")
    assert load("name: x\n").expectations == []


# ---- inference ------------------------------------------------------------------------------------------


def test_an_inferred_suite_passes_its_reference_and_catches_drift() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    ref = pl.DataFrame(
        {
            "id": np.arange(n),
            "amount": rng.exponential(50, n),
            "temp": rng.normal(20, 4, n),
            "country": rng.choice(["DE", "FR", "IT"], n),
            "code": [f"C{i:05d}" for i in range(n)],
            "income": pl.Series(rng.normal(3000, 500, n)).scatter(range(0, n, 25), None),
            "flag": rng.random(n) < 0.5,
            "when": [dt.datetime(2024, 1, 1)] * n,
        }
    )
    suite = infer_suite(profile_table(ref).to_dict(), name="ref")
    kinds = {(e.kind, e.columns()[0] if e.columns() else "") for e in suite.expectations}
    assert {
        ("unique", "id"),
        ("unique", "code"),
        ("in_set", "country"),
        ("length", "code"),
        ("row_count", ""),
    } <= kinds
    assert (
        ("between", "amount") in kinds and ("quantile", "temp") in kinds and ("unique", "amount") not in kinds
    )
    amount = next(e for e in suite.expectations if e.kind == "between" and e.column == "amount")
    assert amount.min == 0  # never below zero for a column with no negative value
    assert (
        next(e for e in suite.expectations if e.kind == "not_null" and e.column == "income").max_share == 0.09
    )
    result = validate(ref, Suite.from_yaml_text(suite.to_yaml()))
    assert result.success, [(r.label, r.observed, r.error) for r in result.failed]

    drifted = ref.with_columns(
        pl.col("temp") + 10,
        pl.when(pl.col("id") == 7).then(pl.lit("ES")).otherwise("country").alias("country"),
    ).with_columns(pl.col("id").cast(pl.Float64))
    failed = {r.label for r in validate(drifted, suite).failed}
    assert {"mean(temp)", "in_set(country)", "column_exists(id)", "quantile(temp, q=0.5)"} <= failed
    assert "unique(id)" in failed  # skipped: its column changed type


# ---- results and reports ----------------------------------------------------------------------------------


def test_json_form_is_stable_and_strict(ref: str) -> None:
    result = validate(DF, every_kind(ref))
    d = json.loads(result.to_json())
    assert d["schema"] == "loopline.validation/1" and d["suite"] == "all" and d["num_rows"] == 6
    assert set(d) == {
        "schema",
        "suite",
        "target",
        "uri",
        "success",
        "num_rows",
        "created_at",
        "duration_seconds",
        "statistics",
        "results",
    }
    assert d["statistics"]["evaluated"] == 14
    between = next(r for r in d["results"] if r["expect"] == "between")
    assert set(between) == {
        "label",
        "expect",
        "columns",
        "severity",
        "expectation",
        "description",
        "success",
        "observed",
        "summary",
        "failing_rows",
        "failing_rows_truncated",
        "failing_sample",
        "error",
    }
    assert between["expectation"] == {
        "expect": "between",
        "column": "age",
        "min": 0,
        "max": 120.5,
        "strict_max": True,
        "mostly": 0.9,
    }
    assert between["failing_rows"] == [1, 2] and between["summary"]["unexpected_count"] == 2
    assert result.to_dict(max_rows=1)["results"][4]["failing_rows"] == [2]
    assert result.to_dict(max_rows=1)["results"][4]["failing_rows_truncated"] is True


def test_failing_rows_are_all_kept_and_the_sample_is_bounded() -> None:
    big = pl.DataFrame({"v": np.arange(10_000) % 7})
    r = validate(big, Suite("t", [expect.between("v", max=5)]), sample_rows=3).results[0]
    assert r.failing_rows is not None and r.failing_rows.tolist() == list(range(6, 10_000, 7))
    assert [s["_row"] for s in r.failing_sample] == [6, 13, 20]


def test_html_report_is_self_contained_and_escaped(tmp_path: Path, ref: str) -> None:
    df = DF.with_columns(
        pl.Series("email", ["<script>alert(1)</script>", "bad", "c@x.com", None, "d@y.org", "e@x"])
    )
    result = validate(df, every_kind(ref))
    text = render_html(result, tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == text
    assert text.startswith("<!doctype html>") and "<style>" in text
    assert not re.search(r"https?://|<script|<link|\bsrc=|url\(|@import", text, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for r in result.results:
        assert f"<code>{r.label}</code>" in text
    assert "failing rows</summary>" in text


def test_type_families() -> None:
    assert (
        type_matches("int32", "integer")
        and type_matches("double", "float64")
        and type_matches("double", "numeric")
    )
    assert type_matches("string", "str") and type_matches("timestamp[us, tz=UTC]", "datetime")
    assert not type_matches("int64", "float") and not type_matches("string", "int64")


def test_pandas_nan_is_missing() -> None:
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0]})
    r = check(expect.between("x", 0, 2), df)
    assert rows(r) == [2] and r.missing_count == 1


def test_arrow_dictionary_columns() -> None:
    t = pa.table({"c": pa.array(["a", "b", "a", "z"]).dictionary_encode()})
    assert rows(check(expect.in_set("c", ["a", "b"]), t)) == [3]
    assert check(expect.column_exists("c", type="categorical"), t).success
