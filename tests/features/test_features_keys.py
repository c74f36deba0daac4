"""Join keys of every shape against a brute-force oracle: composite, text, null, int against float.

The in-memory join turns keys into dense integer codes (their own values for compact integers,
hashing otherwise); a null key matches nothing, an integer key matches the equal float. Both the
in-memory route and DuckDB's ASOF JOIN must give the oracle's answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TS = pa.timestamp("us", tz="UTC")

DEFS = """
from datetime import timedelta
from loopline.features import Entity, FeatureView, Field, FileSource, Float64, Int64
place = Entity(name="place", join_keys=["city", "zone"])
rider = Entity(name="rider", join_keys=["rider"])
pair = FeatureView(name="pair", entities=[place], ttl=timedelta(seconds=5),
    source=FileSource(path="{home}/pair.parquet", timestamp_field="ts"), schema=[Field("pair_n", Int64)])
sparse = FeatureView(name="sparse", entities=[rider], ttl=None,
    source=FileSource(path="{home}/sparse.parquet", timestamp_field="ts"), schema=[Field("sparse_n", Int64)])
"""
CITIES = st.sampled_from(["a", "b", "ü", None])
ZONES = st.sampled_from([0, 1, 7, None])
RIDERS = st.sampled_from([-(2**40), 0, 3, 2**40, 2**62])  # a range far too wide to be its own codes


@pytest.fixture(scope="module")
def key_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    from loopline.config import Settings
    from loopline.features import FeatureStore

    home = tmp_path_factory.mktemp("keys")
    _write(home, [], [])
    (home / "defs.py").write_text(DEFS.format(home=home))
    fs = FeatureStore(Settings.from_env({}, tracking_uri=f"sqlite:///{home / 'loopline.db'}", user="tester"))
    fs.apply(home / "defs.py")
    yield fs, home
    fs.close()


def _write(home: Path, pairs: list[tuple[Any, Any, int]], riders: list[tuple[int, int]]) -> None:
    pq.write_table(
        pa.table(
            {
                "city": pa.array([p[0] for p in pairs], pa.string()),
                "zone": pa.array([p[1] for p in pairs], pa.int32()),
                "ts": pa.array([T0 + dt.timedelta(seconds=p[2]) for p in pairs], TS),
                "pair_n": pa.array(range(len(pairs)), pa.int64()),
            }
        ),
        home / "pair.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "rider": pa.array([float(r[0]) for r in riders], pa.float64()),  # floats in the source
                "ts": pa.array([T0 + dt.timedelta(seconds=r[1]) for r in riders], TS),
                "sparse_n": pa.array(range(len(riders)), pa.int64()),
            }
        ),
        home / "sparse.parquet",
    )


def _oracle(rows: list[tuple[Any, int]], key: Any, t: int, ttl: int | None) -> set[Any]:
    if any(k is None for k in key):
        return {None}
    hits = [
        (ts, n) for n, (k, ts) in enumerate(rows) if k == key and ts <= t and (ttl is None or ts >= t - ttl)
    ]
    if not hits:
        return {None}
    best = max(h[0] for h in hits)
    return {n for ts, n in hits if ts == best}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(CITIES, ZONES, st.integers(0, 12)), max_size=30),
    riders=st.lists(st.tuples(RIDERS, st.integers(0, 12)), max_size=20),
    entities=st.lists(st.tuples(CITIES, ZONES, RIDERS, st.integers(-1, 14)), min_size=1, max_size=25),
)
@pytest.mark.parametrize("join", ["memory", "memory-ranked", "duckdb"])
def test_keys_of_every_shape_match_the_oracle(
    key_store: tuple[Any, Path],
    join: str,
    monkeypatch: pytest.MonkeyPatch,
    pairs: list[tuple[Any, Any, int]],
    riders: list[tuple[int, int]],
    entities: list[tuple[Any, Any, int, int]],
) -> None:
    fs, home = key_store
    if join == "duckdb":
        monkeypatch.setattr("loopline.features.training.in_memory_budget", lambda limit: 0)
    if join == "memory-ranked":  # as if codes x times overflowed: times by rank, codes renumbered
        monkeypatch.setattr("loopline.features.asof._MAX", 64)
    _write(home, pairs, riders)
    entity_df = pa.table(
        {
            "city": pa.array([e[0] for e in entities], pa.string()),
            "zone": pa.array([e[1] for e in entities], pa.int64()),  # int32 in the source
            "rider": pa.array([e[2] for e in entities], pa.int64()),  # float64 in the source
            "event_timestamp": pa.array([T0 + dt.timedelta(seconds=e[3]) for e in entities], TS),
        }
    )
    out = fs.get_historical_features(
        entity_df, ["pair:pair_n", "sparse:sparse_n"], format="arrow"
    ).to_pydict()
    for i, (city, zone, rider, t) in enumerate(entities):
        want = _oracle([((c, z), ts) for c, z, ts in pairs], (city, zone), t, 5)
        assert out["pair_n"][i] in want, f"pair row {i} {(city, zone, t)}: {out['pair_n'][i]} not in {want}"
        want = _oracle([((r,), ts) for r, ts in riders], (rider,), t, None)
        assert out["sparse_n"][i] in want, f"sparse row {i} {(rider, t)}: {out['sparse_n'][i]} not in {want}"


@settings(max_examples=60, deadline=None)
@given(
    left=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), st.sampled_from("xy")), max_size=12
    ),
    right=st.lists(st.tuples(st.one_of(st.none(), st.integers(-5, 5)), st.sampled_from("xyz")), max_size=12),
    wide=st.booleans(),
)
def test_key_codes_are_equal_exactly_when_keys_are(
    left: list[tuple[Any, str]], right: list[tuple[Any, str]], wide: bool
) -> None:
    from loopline.features import asof

    if wide:  # force the renumbering that keeps code products inside int64
        right = [*right, (2**62, "x"), (-(2**62), "y")]
    lcols = [
        pa.chunked_array([pa.array([k[i] for k in left], t)]) for i, t in enumerate((pa.int64(), pa.string()))
    ]
    rcols = [
        pa.chunked_array([pa.array([k[i] for k in right], t)])
        for i, t in enumerate((pa.int64(), pa.string()))
    ]
    with mock.patch.object(asof, "_MAX", 8 if wide else asof._MAX):  # small: renumber between columns
        lcodes, rcodes, n = asof.key_codes(lcols, rcols)
    for i, a in enumerate(left):
        for j, b in enumerate(right):
            same = None not in a and a == b
            assert (lcodes[i] >= 0 and lcodes[i] == rcodes[j]) == same, (a, b, lcodes[i], rcodes[j])
    assert all(c < n for c in [*lcodes, *rcodes])
    assert all(c == -1 for c, k in zip(lcodes, left, strict=True) if k[0] is None)  # a null never matches
