"""Point-in-time correctness against a brute-force oracle, on data hypothesis makes up.

Three views with different TTLs (none, 3 s, 10 s), one breaking event-time ties by a created
timestamp; times are whole seconds in a narrow range, so entity times equal to feature times,
rows exactly on the TTL edge, rows before any value, duplicate event times and null values
all come up often. The oracle searches every feature row for every entity row.

Every route a training set can take is checked: Parquet files read by Arrow or sources read by
DuckDB (a SQL query), joined in memory or by DuckDB's ASOF JOIN (the route past the memory budget).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
VIEWS = {"nottl": None, "short": 3, "long": 10}  # view -> ttl seconds
CREATED = {"long"}  # views whose ties are broken by a created timestamp

DEFS = """
from datetime import timedelta
from loopline.features import Entity, FeatureView, Field, FileSource, Float64, Int64, SqlSource
rider = Entity(name="rider", join_keys=["rider_id"])
{views}
"""
VIEW = """
{name} = FeatureView(name="{name}", entities=[rider], ttl={ttl},
    source={source},
    schema=[Field("{name}_value", Float64), Field("{name}_n", Int64)])
"""
FILE = 'FileSource(path="{path}", timestamp_field="ts"{created})'
SQL = 'SqlSource(query="SELECT * FROM read_parquet(\'{path}\')", timestamp_field="ts"{created})'


@pytest.fixture(scope="module", params=["parquet", "sql"])
def oracle_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Path]]:
    """Views on Parquet files (read by Arrow) or on SQL over them (read by DuckDB)."""
    from loopline.config import Settings
    from loopline.features import FeatureStore

    home = tmp_path_factory.mktemp("oracle")
    views = "".join(
        VIEW.format(
            name=name,
            ttl=f"timedelta(seconds={ttl})" if ttl is not None else "None",
            source=(FILE if request.param == "parquet" else SQL).format(
                path=home / f"{name}.parquet",
                created=', created_timestamp_column="created"' if name in CREATED else "",
            ),
        )
        for name, ttl in VIEWS.items()
    )
    for name in VIEWS:
        _write(home / f"{name}.parquet", [])
    (home / "defs.py").write_text(DEFS.format(views=views))
    fs = FeatureStore(Settings.from_env({}, tracking_uri=f"sqlite:///{home / 'loopline.db'}", user="tester"))
    fs.apply(home / "defs.py")
    yield fs, home
    fs.close()


def _write(path: Path, rows: list[tuple[int, int, float | None, int]]) -> None:
    name = path.stem
    pq.write_table(
        pa.table(
            {
                "rider_id": pa.array([r[0] for r in rows], pa.int64()),
                "ts": pa.array([T0 + dt.timedelta(seconds=r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
                "created": pa.array(
                    [T0 + dt.timedelta(seconds=r[3]) for r in rows], pa.timestamp("us", tz="UTC")
                ),
                f"{name}_value": pa.array([r[2] for r in rows], pa.float64()),
                f"{name}_n": pa.array(list(range(len(rows))), pa.int64()),
            }
        ),
        path,
    )


def expected(
    rows: list[tuple[int, int, float | None, int]], rider: int, t: int, ttl: int | None, by_created: bool
) -> set[Any]:
    """Every acceptable (value, n) for one entity row: more than one only when the latest rows tie."""
    hits = [
        (r[1], r[3], r[2], n)
        for n, r in enumerate(rows)
        if r[0] == rider and r[1] <= t and (ttl is None or r[1] >= t - ttl)
    ]
    if not hits:
        return {(None, None)}
    best = max(h[0] for h in hits)
    tied = [h for h in hits if h[0] == best]
    if by_created:
        newest = max(h[1] for h in tied)
        tied = [h for h in tied if h[1] == newest]
    return {(h[2], h[3]) for h in tied}


feature_rows = st.lists(
    st.tuples(
        st.integers(0, 3),  # rider
        st.integers(0, 20),  # event time (s)
        st.one_of(st.none(), st.floats(-5, 5, allow_nan=False)),  # value, sometimes null
        st.integers(0, 3),  # created time (s)
    ),
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.fixed_dictionaries({name: feature_rows for name in VIEWS}),
    entities=st.lists(st.tuples(st.integers(0, 4), st.integers(-2, 24)), min_size=1, max_size=30),
)
@pytest.mark.parametrize("join", ["memory", "memory-ranked", "duckdb", "over-budget"])
def test_matches_a_brute_force_oracle(
    oracle_store: tuple[Any, Path],
    join: str,
    monkeypatch: pytest.MonkeyPatch,
    data: dict[str, Any],
    entities: list[tuple[int, int]],
) -> None:
    fs, home = oracle_store
    if join == "duckdb":  # no memory budget: every view goes through DuckDB's ASOF JOIN
        monkeypatch.setattr("loopline.features.training.in_memory_budget", lambda limit: 0)
    if join == "memory-ranked":  # as if codes x times overflowed: times by rank, codes renumbered
        monkeypatch.setattr("loopline.features.asof._MAX", 64)
    if join == "over-budget":  # tried in memory, the rows outgrow 64 bytes: DuckDB takes over
        monkeypatch.setattr("loopline.features.training.in_memory_budget", lambda limit: 64)
    for name, rows in data.items():
        _write(home / f"{name}.parquet", rows)
    entity_df = pa.table(
        {
            "rider_id": pa.array([e[0] for e in entities], pa.int64()),
            "event_timestamp": pa.array(
                [T0 + dt.timedelta(seconds=e[1]) for e in entities], pa.timestamp("us", tz="UTC")
            ),
            "label": pa.array(range(len(entities)), pa.int64()),
        }
    )
    refs = [f"{name}:{name}_{col}" for name in VIEWS for col in ("value", "n")]
    out = fs.get_historical_features(entity_df, refs, format="arrow").to_pydict()
    assert out["label"] == list(range(len(entities)))  # every row, in the entity frame's order
    assert out["rider_id"] == [e[0] for e in entities]
    for name, ttl in VIEWS.items():
        for i, (rider, t) in enumerate(entities):
            got = (out[f"{name}_value"][i], out[f"{name}_n"][i])
            ok = expected(data[name], rider, t, ttl, name in CREATED)
            assert got in ok, f"{name} row {i} (rider {rider}, t={t}): got {got}, expected one of {ok}"
