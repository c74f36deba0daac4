"""Reading columns: Parquet files column by column from their buffers must give what the whole table gives."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from loopline.errors import InvalidInput
from loopline.monitoring import ReferenceProfile, drift
from loopline.monitoring.inputs import category_counts, numeric_values, open_columns

RNG = np.random.default_rng(5)
N = 4000


def messy(shift: float) -> pa.Table:
    """Every column kind the readers special-case: nulls, NaN, ±inf, narrow ints, dates, dictionaries."""
    x = RNG.normal(shift, 1, N)
    x[::97] = np.nan
    x[5::211] = np.inf
    x[7::307] = -np.inf
    null = np.zeros(N, bool)
    null[3::53] = True
    words = RNG.choice(["a", "b", "c", "dd", "eee"], N, p=[0.4, 0.3, 0.15, 0.1, 0.05]).astype(object)
    words[11::41] = None
    day = dt.date(2024, 1, 1)
    return pa.table(
        {
            "x": pa.array(x, mask=null),
            "i8": pa.array(RNG.integers(-100, 100, N), pa.int8()),
            "u16": pa.array(RNG.integers(0, 5000, N) + int(shift * 2000), pa.uint16(), mask=null),
            "f32": pa.array(RNG.normal(shift, 1, N).astype(np.float32)),
            "day": pa.array([day + dt.timedelta(days=int(d)) for d in RNG.integers(0, 90, N)]),
            "word": pa.array(words, pa.string()),
            "code": pa.array(words, pa.string()).dictionary_encode(),
            "empty": pa.nulls(N, pa.float64()),
        }
    )


def test_a_parquet_file_gives_the_same_report_as_its_table(tmp_path: Path) -> None:
    ref, cur = messy(0.0), messy(0.3)
    paths = []
    for name, table in (("ref", ref), ("cur", cur)):
        paths.append(tmp_path / f"{name}.parquet")
        pq.write_table(table, paths[-1], row_group_size=700)  # several chunks, a dictionary each
    from_files = drift(str(paths[0]), str(paths[1])).to_dict()
    from_tables = drift(ref, cur).to_dict()
    assert from_files["columns"] == from_tables["columns"]
    assert from_files["columns"]["u16"]["drifted"] and not from_files["columns"]["i8"]["drifted"]
    assert from_files["columns"]["x"]["quality"]["infinite"] > 0
    assert from_files["columns"]["empty"]["test"] == "no_data"
    profile = ReferenceProfile.build(str(paths[0]))
    assert set(profile.columns) == set(ref.column_names)
    assert drift(profile, str(paths[1])).to_dict()["columns"] == from_tables["columns"]


@pytest.mark.parametrize("offset", [0, 1, 13])
def test_numeric_values_read_off_the_buffers(offset: int) -> None:
    t = messy(0.0).slice(offset, N - 2 * offset)  # sliced: buffers start mid-way
    for name in ("x", "i8", "u16", "f32"):
        col = pa.chunked_array([t.column(name).chunk(0).slice(0, 1000), t.column(name).chunk(0).slice(1000)])
        got = numeric_values(col)
        raw = [math.nan if v is None else float(v) for v in col.to_pylist()]
        finite = sorted(v for v in raw if math.isfinite(v))
        assert got.values.tolist() == finite
        assert got.n_missing == sum(math.isnan(v) for v in raw)
        assert got.n_infinite == sum(math.isinf(v) for v in raw)
        assert got.n_rows == len(raw)


@pytest.mark.parametrize("offset", [0, 3])
def test_category_counts_of_dictionaries_match_plain_strings(offset: int) -> None:
    words = messy(0.0).column("word").slice(offset)
    chunks = [words.chunk(0).slice(0, 1500), words.chunk(0).slice(1500)]
    encoded = pa.chunked_array([c.dictionary_encode() for c in chunks])  # a dictionary per chunk
    want = category_counts(pa.chunked_array(chunks))
    got = category_counts(encoded)
    assert got[0] == want[0] and got[1].tolist() == want[1].tolist() and got[2] == want[2]
    values = [v for v in words.to_pylist() if v is not None]
    assert dict(zip(got[0], got[1].tolist(), strict=True)) == {v: values.count(v) for v in set(values)}
    assert got[2] == words.null_count


def test_an_unreadable_parquet_column_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    pq.write_table(messy(0.0), path)
    data = path.read_bytes()
    footer = int.from_bytes(data[-8:-4], "little") + 8
    path.write_bytes(data[:4] + bytes(len(data) - 4 - footer) + data[-footer:])  # footer kept, pages zeroed
    cols = open_columns(str(path), what="current")
    assert cols.num_rows == N and "x" in cols.column_names
    with pytest.raises(InvalidInput, match=r"cut\.parquet"):
        for name in cols.column_names:
            numeric_values(cols.column(name)) if name != "word" else category_counts(cols.column(name))
    empty = tmp_path / "empty.parquet"
    pq.write_table(messy(0.0).slice(0, 0), empty)
    with pytest.raises(InvalidInput, match=r"empty\.parquet.*has no rows"):
        drift(messy(0.0), str(empty))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    numbers=st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), min_size=1),
    words=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "", "é", "a b"])), min_size=1),
    row_group=st.integers(1, 50),
)
def test_parquet_readers_agree_with_plain_python(
    numbers: list[float | None], words: list[str | None], row_group: int, tmp_path: Path
) -> None:
    n = min(len(numbers), len(words))
    path = tmp_path / "h.parquet"
    pq.write_table(
        pa.table({"x": pa.array(numbers[:n], pa.float64()), "w": words[:n]}), path, row_group_size=row_group
    )
    cols = open_columns(str(path), what="current")
    got = numeric_values(cols.column("x"))
    raw = [math.nan if v is None else v for v in numbers[:n]]
    assert got.values.tolist() == sorted(v for v in raw if math.isfinite(v))
    assert (got.n_missing, got.n_infinite) == (sum(map(math.isnan, raw)), sum(map(math.isinf, raw)))
    cats, counts, missing = category_counts(cols.column("w"))
    present = [w for w in words[:n] if w is not None]
    assert dict(zip(cats, counts.tolist(), strict=True)) == {w: present.count(w) for w in set(present)}
    assert missing == n - len(present)
