from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from loopline.errors import InvalidInput
from loopline.metadata.filter import Clause, OrderBy, parse_filter, parse_order_by


def test_mlflow_filter_examples() -> None:
    got = parse_filter(
        "metrics.acc > 0.9 and params.`learning rate` = '0.1' AND tags.\"team\" LIKE 'ml-%' "
        "and attributes.status != 'FAILED' and run_id IN ('a', 'b') and datasets.name = 'iris' "
        "and metrics.loss <= -1e-3 and tags.x IS NOT NULL"
    )
    assert got == [
        Clause("metric", "acc", ">", 0.9),
        Clause("param", "learning rate", "=", "0.1"),
        Clause("tag", "team", "LIKE", "ml-%"),
        Clause("attribute", "status", "!=", "FAILED"),
        Clause("attribute", "run_id", "IN", ("a", "b")),
        Clause("dataset", "name", "=", "iris"),
        Clause("metric", "loss", "<=", -1e-3),
        Clause("tag", "x", "IS NOT NULL", None),
    ]
    assert parse_filter("") == [] and parse_filter(None) == []
    assert parse_filter("metrics.a <> 1") == [Clause("metric", "a", "!=", 1.0)]


def test_order_by() -> None:
    assert parse_order_by(["metrics.acc DESC", "start_time", "params.x asc"]) == [
        OrderBy("metric", "acc", False),
        OrderBy("attribute", "start_time", True),
        OrderBy("param", "x", True),
    ]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("metrics.acc >", "Expected a number"),
        ("metrics.acc = 'high'", "compares with a number"),
        ("params.lr = 0.1", "must be a quoted string"),
        ("params.lr > '1'", "not allowed"),
        ("runs.x = '1'", "Invalid entity type"),
        ("attributes.color = 'x'", "Invalid attribute key"),
        ("metrics.a > 1 OR metrics.b > 2", "Only AND"),
        ("metrics.a > 1 metrics.b > 2", "Expected AND"),
        ("metrics.a ~ 1", "Cannot parse"),
    ],
)
def test_bad_filters_name_the_problem(bad: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_filter(bad)


_key = st.text(
    st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_-. /"),
    min_size=1,
    max_size=12,
).filter(lambda k: k.strip() == k)


@given(
    _key,
    st.sampled_from(["=", "!=", ">", ">=", "<", "<="]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
def test_metric_clauses_round_trip(key: str, op: str, value: float) -> None:
    assert parse_filter(f"metrics.`{key}` {op} {value!r}") == [Clause("metric", key, op, value)]


@given(_key, st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="'\\"), max_size=12))
def test_param_clauses_round_trip(key: str, value: str) -> None:
    assert parse_filter(f"params.`{key}` = '{value}'") == [Clause("param", key, "=", value)]
