"""One contract suite for every online store (SQLite and a real Redis), then the read path on top."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from loopline.errors import InvalidInput
from loopline.features.online import OnlineStore, open_online_store
from loopline.features.online.codec import RowCodec, encode_key

IMPLEMENTATIONS = ["sqlite", "redis"]


@pytest.fixture(params=IMPLEMENTATIONS)
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        store = open_online_store("sqlite", default_dir=tmp_path)
    else:
        from loopline.features.online.redis import RedisOnlineStore

        url = request.getfixturevalue("redis_url")
        store = RedisOnlineStore(url, prefix=request.getfixturevalue("redis_prefix"))
    yield store
    store.close()


def test_reads_what_was_written_in_key_order_with_none_for_missing(online: OnlineStore) -> None:
    online.write("v", [("1", 10, b"one"), ("2", 10, b"two"), ("a\x1fb", 10, b"composite")])
    assert online.read("v", ["2", "missing", "1", "a\x1fb"]) == [b"two", None, b"one", b"composite"]
    assert online.read("v", ["1"]) == [b"one"]
    assert online.read("never_written", ["1", "2"]) == [None, None]


def test_an_older_row_never_replaces_a_newer_one(online: OnlineStore) -> None:
    online.write("v", [("k", 100, b"new")])
    online.write("v", [("k", 50, b"old")])
    assert online.read("v", ["k"]) == [b"new"]
    online.write("v", [("k", 100, b"same-time")])  # equal times: the later write wins
    assert online.read("v", ["k"]) == [b"same-time"]
    online.write("v", [("k", -5, b"before-1970"), ("k", 200, b"newest"), ("k", 150, b"stale")])
    assert online.read("v", ["k"]) == [b"newest"]


def test_views_are_separate_and_drop_forgets_one(online: OnlineStore) -> None:
    online.write("a", [("1", 1, b"a1")])
    online.write("b", [("1", 1, b"b1")])
    online.drop("a")
    assert online.read("a", ["1"]) == [None]
    assert online.read("b", ["1"]) == [b"b1"]


def test_many_keys_in_one_read(online: OnlineStore) -> None:
    rows = [(str(i), i, str(i).encode()) for i in range(2500)]
    assert online.write("big", rows) == 2500
    keys = [str(i) for i in range(0, 2500, 3)] + ["nope"]
    assert online.read("big", keys) == [k.encode() for k in keys[:-1]] + [None]


def test_codec_round_trips_fixed_and_variable_rows() -> None:
    fixed = RowCodec(["float64", "float32", "int64", "int32", "bool", "timestamp"])
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    row = (1.5, 0.25, -(2**40), 7, True, when)
    assert fixed.decode(fixed.encode(row)) == row
    assert fixed.decode(fixed.encode((None, float("nan"), None, 1, None, None))) == (
        None,
        None,
        None,
        1,
        None,
        None,
    )
    assert len(fixed.encode(row)) == 1 + 8 + 4 + 8 + 4 + 1 + 8
    mixed = RowCodec(["string", "float64", "timestamp"])
    assert mixed.decode(mixed.encode(("x", None, when))) == ("x", None, when)
    assert encode_key([1.0]) == encode_key([1]) == "1"
    assert encode_key([7, "eu"]) == "7\x1feu"


def test_vectorised_encoding_equals_row_encoding() -> None:
    import pyarrow as pa

    codec = RowCodec(["float64", "int64", "bool", "timestamp"])
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cols = [
        pa.array([1.0, None, float("nan")]),
        pa.array([1, 2, None], pa.int64()),
        pa.array([True, None, False]),
        pa.array([when, None, when], pa.timestamp("us", tz="UTC")),
    ]
    rows = list(zip(*(c.to_pylist() for c in cols), strict=True))
    assert codec.encode_columns(cols) == [codec.encode(r) for r in rows]


# ---- the store's read path over each implementation ---------------------------------------------


@pytest.fixture(params=IMPLEMENTATIONS)
def materialized(request: pytest.FixtureRequest, settings: Any, defs_file: Path) -> Iterator[Any]:
    from loopline.features import FeatureStore

    online: Any = None
    if request.param == "redis":
        from loopline.features.online.redis import RedisOnlineStore

        online = RedisOnlineStore(
            request.getfixturevalue("redis_url"), prefix=request.getfixturevalue("redis_prefix")
        )
    fs = FeatureStore(settings, online_store=online)
    fs.apply(defs_file)
    fs.materialize(dt.datetime(2025, 12, 31), dt.datetime(2026, 1, 1, 12))  # hours 0..12
    yield fs
    fs.close()


def test_online_features_are_the_latest_in_the_window(materialized: Any) -> None:
    out = materialized.get_online_features(
        ["driver_stats:conv_rate", "driver_stats:trips"],
        [{"driver_id": 1}, {"driver_id": 3}, {"driver_id": 99}],
    ).to_dict()
    assert out == {"driver_id": [1, 3, 99], "conv_rate": [0.22, 0.42, None], "trips": [112, 312, None]}
    by_columns = materialized.get_online_features(["driver_stats:trips"], {"driver_id": [2, 2]}).to_dict()
    assert by_columns == {"driver_id": [2, 2], "trips": [212, 212]}
    full = materialized.get_online_features(
        ["driver_stats:trips"], [{"driver_id": 2}], full_feature_names=True
    )
    assert full.to_dict() == {"driver_id": [2], "driver_stats__trips": [212]}


def test_a_service_and_on_demand_features_online(materialized: Any) -> None:
    out = materialized.get_online_features("activity", [{"driver_id": 1, "bonus": 1.0}]).to_dict()
    assert out == {
        "driver_id": [1],
        "conv_rate": [0.22],
        "boosted": [pytest.approx(1.44)],
        "trips_k": [0.112],
    }


def test_push_updates_online_values_only_forward(materialized: Any) -> None:
    late = dt.datetime(2026, 1, 1, 13, tzinfo=dt.UTC)
    n = materialized.push(
        "driver_push", [{"driver_id": 1, "event_timestamp": late, "conv_rate": 0.9, "trips": 7}]
    )
    assert n == 1
    assert materialized.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1}])["conv_rate"] == [
        0.9
    ]
    early = dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC)
    materialized.push(
        "driver_stats", [{"driver_id": 1, "event_timestamp": early, "conv_rate": 0.0, "trips": 0}]
    )
    assert materialized.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1}])["conv_rate"] == [
        0.9
    ]


def test_the_single_key_fast_path_answers_as_the_general_one(materialized: Any) -> None:
    from loopline.features import online_read

    feats = ["driver_stats:trips", "driver_stats:conv_rate"]  # not the schema's order
    requests: list[Any] = [
        [{"driver_id": 3}],
        [{"driver_id": 99}],
        [{"driver_id": 1}, {"driver_id": 99}, {"driver_id": 2.0}, {"driver_id": "3"}],
        [{"driver_id": 1}, {"other": 5}],  # a row without the key: None, as in the general path
        {"driver_id": [3, 1], "bonus": [1.0, 2.0]},
        {"driver_id": (3, 1)},
    ]
    fast = [materialized.get_online_features(feats, r).to_dict() for r in requests]
    plan = materialized.catalog.plans()[0]
    assert plan.single is not None
    general = [
        online_read.read_online(replace(plan, single=None), materialized.online, r).to_dict()
        for r in requests
    ]
    assert fast == general
    assert fast[0] == {"driver_id": [3], "trips": [312], "conv_rate": [0.42]}
    assert fast[3] == {"driver_id": [1, None], "trips": [112, None], "conv_rate": [0.22, None]}
    with pytest.raises(InvalidInput):
        materialized.get_online_features(feats, [{"other": 5}])
    with pytest.raises(InvalidInput):
        materialized.get_online_features(feats, {"driver_id": [1, 2], "bonus": [1.0]})
