"""Column profiles: what a table looks like, in one JSON-safe dict stored with every dataset version.

    profile = profile_table(table)            # pyarrow Table or Dataset, polars or pandas frame
    profile.columns["age"].quantiles["p50"]
    diff_profiles(old.to_dict(), new.to_dict())["columns"]["age"]["mean"]

Per column: the Arrow type, a *kind* (numerical, categorical, boolean, datetime, string, other),
counts of values, nulls and NaNs, min/max/mean/std, quantiles, the top categories with their counts,
a distinct-count estimate and, for strings, the length range. In-memory input is profiled in one
vectorised polars pass. A ``pyarrow.dataset.Dataset`` is streamed batch by batch and never loaded
whole: every statistic is merged across batches (means and variances exactly, distinct counts with a
HyperLogLog sketch, quantiles from a uniform bottom-k row sample).

Exactness, so that readers know what they may rely on: counts, min, max, mean and std are exact;
quantiles are exact up to ``sample_size`` rows and estimated from a uniform sample of that many rows
beyond (``TableProfile.sampled``); ``distinct`` is exact for in-memory input of up to 100,000 rows
and otherwise an estimate (about 1% error) unless ``top`` is complete; ``top`` is complete when it
lists every value (``top_complete``); ``unique`` is known exactly for integer and string columns of
in-memory input and is ``None`` otherwise.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInput, require

if TYPE_CHECKING:
    import numpy as np

QUANTILES: dict[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
TOP_K = 20  # categories kept per column
EXACT_DISTINCT_ROWS = 100_000  # batches up to this size count distinct values exactly
TRACK_LIMIT = 10_000  # value counts are tracked for columns with at most this many distinct values
CATEGORICAL_MAX = 50  # a string column with at most this many distinct values is "categorical"
SAMPLE_SIZE = 100_000  # quantiles are exact up to this many rows
HLL_P = 14  # 16,384 registers: ~0.8% standard error
KINDS = ("numerical", "categorical", "boolean", "datetime", "string", "other")
_INTEGER = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


@dataclass(frozen=True)
class ColumnProfile:
    """The statistics of one column. Fields a kind has no use for are ``None``."""

    name: str
    type: str  # Arrow type string, normalised (``string``, not ``large_string``)
    kind: str
    count: int  # non-null values
    null_count: int
    nan_count: int = 0
    min: Any = None  # a number, or an ISO string for datetimes
    max: Any = None
    mean: float | None = None  # booleans: the share of true
    std: float | None = None
    quantiles: dict[str, float] | None = None
    top: list[tuple[Any, int]] | None = None  # (value, count), most frequent first
    top_complete: bool = False  # top lists every distinct value
    distinct: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    unique: bool | None = None  # no value repeats (nulls aside); None when not checked

    @property
    def null_share(self) -> float:
        total = self.count + self.null_count
        return self.null_count / total if total else 0.0


@dataclass(frozen=True)
class TableProfile:
    """A table's row count and one :class:`ColumnProfile` per column, in column order."""

    num_rows: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    sampled: bool = False  # quantiles come from a sample of SAMPLE_SIZE rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and ±inf become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``)."""
        cols = {}
        for name, c in self.columns.items():
            d = asdict(c)
            del d["name"]
            for key in ("min", "max", "mean", "std"):
                d[key] = _enc(d[key])
            if c.quantiles is not None:
                d["quantiles"] = {k: _enc(v) for k, v in c.quantiles.items()}
            if c.top is not None:
                d["top"] = [[_enc(v), n] for v, n in c.top]
            cols[name] = d
        return {"version": 1, "num_rows": self.num_rows, "sampled": self.sampled, "columns": cols}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableProfile:
        """The inverse of :meth:`to_dict`."""
        try:
            cols = {}
            for name, d in data["columns"].items():
                d = dict(d)
                for key in ("min", "max", "mean", "std"):
                    d[key] = _dec(d.get(key))
                if d.get("quantiles") is not None:
                    d["quantiles"] = {k: _dec(v) for k, v in d["quantiles"].items()}
                if d.get("top") is not None:
                    d["top"] = [(_dec(v), int(n)) for v, n in d["top"]]
                cols[name] = ColumnProfile(name=name, **d)
            return cls(int(data["num_rows"]), cols, bool(data.get("sampled", False)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidInput(
                f"Not a table profile: {e!r}.", hint="Pass a dict made by TableProfile.to_dict()."
            ) from None


def _enc(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _dec(v: Any) -> Any:
    return (
        {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v) if isinstance(v, str) else v
    )


# ---- types -----------------------------------------------------------------------------------


def normalize_type(arrow_type: str) -> str:
    """Spell equal types one way: ``large_string``/``string_view``/``utf8`` → ``string``, and so on."""
    t = arrow_type.replace("large_string", "string").replace("string_view", "string")
    t = t.replace("large_binary", "binary").replace("binary_view", "binary").replace("large_list", "list")
    return t.replace("utf8", "string")


_SIMPLE = {
    "Int8": "int8",
    "Int16": "int16",
    "Int32": "int32",
    "Int64": "int64",
    "UInt8": "uint8",
    "UInt16": "uint16",
    "UInt32": "uint32",
    "UInt64": "uint64",
    "Float16": "halffloat",
    "Float32": "float",
    "Float64": "double",
    "Boolean": "bool",
    "String": "string",
    "Binary": "binary",
    "Date": "date32[day]",
    "Time": "time64[ns]",
    "Null": "null",
    "Categorical": "dictionary<values=string, indices=uint32, ordered=0>",
}


def arrow_type_of(dtype: Any) -> str:
    """The normalised Arrow type string of a polars dtype (as pyarrow spells it, without importing it)."""
    import polars as pl

    name = type(dtype).__name__ if not isinstance(dtype, type) else dtype.__name__
    if name in _SIMPLE:
        return _SIMPLE[name]
    if isinstance(dtype, pl.Datetime):
        zone = f", tz={dtype.time_zone}" if dtype.time_zone else ""
        return f"timestamp[{dtype.time_unit}{zone}]"
    if isinstance(dtype, pl.Duration):
        return f"duration[{dtype.time_unit}]"
    if isinstance(dtype, pl.Decimal):
        return f"decimal128({dtype.precision}, {dtype.scale})"
    if isinstance(dtype, pl.Enum):
        n = len(dtype.categories)
        index = "uint8" if n <= 1 << 8 else "uint16" if n <= 1 << 16 else "uint32"
        return f"dictionary<values=string, indices={index}, ordered=1>"
    if isinstance(dtype, pl.List):
        return f"list<item: {arrow_type_of(dtype.inner)}>"
    if isinstance(dtype, pl.Array):
        return f"fixed_size_list<item: {arrow_type_of(dtype.inner)}>[{dtype.size}]"
    if isinstance(dtype, pl.Struct):
        return "struct<" + ", ".join(f"{f.name}: {arrow_type_of(f.dtype)}" for f in dtype.fields) + ">"
    try:  # anything rarer: ask pyarrow
        return normalize_type(str(pl.Series([], dtype=dtype).to_arrow().type))
    except Exception:
        return str(dtype).lower()


def base_kind(dtype: Any) -> str:
    """The kind a dtype implies before looking at the data (strings may turn out categorical)."""
    import polars as pl

    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numerical"
    if dtype in (pl.Date,) or isinstance(dtype, pl.Datetime):
        return "datetime"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "categorical"
    if dtype == pl.String:
        return "string"
    return "other"


def to_polars(data: Any) -> Any:
    """A polars DataFrame of an in-memory table: polars (eager or lazy), pandas or pyarrow."""
    require("polars", "data")
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__
    try:
        if module.startswith("pyarrow"):
            import pyarrow as pa

            if isinstance(data, pa.RecordBatch):
                data = pa.Table.from_batches([data])
            return pl.from_arrow(data)
        if module.startswith("pandas"):
            return pl.from_pandas(data)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as e:  # e.g. a pandas column of mixed types
        raise InvalidInput(
            f"Cannot read this {type(data).__name__}: {e}", hint="Give each column a single type."
        ) from None
    raise InvalidInput(
        f"Cannot read a table from a {type(data).__name__}.",
        hint="Pass a pyarrow Table or Dataset, or a polars or pandas DataFrame.",
    )


# ---- profiling -------------------------------------------------------------------------------


def profile_table(
    data: Any, *, sample_size: int = SAMPLE_SIZE, batch_size: int = 1 << 20, seed: int = 0
) -> TableProfile:
    """Profile a table: every column's statistics in one vectorised pass.

    Args:
        data: a ``pyarrow.Table``, a ``pyarrow.dataset.Dataset`` (streamed in batches of
            ``batch_size`` rows, never loaded whole), or a polars/pandas DataFrame.
        sample_size: quantiles are exact up to this many rows, else estimated from a uniform
            sample of this many rows.
        seed: the sample's seed: the same data gives the same profile.

    Example:
        >>> p = profile_table(pyarrow.table({"x": [1, 2, None]}))
        >>> p.columns["x"].null_count
        1
    """
    require("polars", "data")
    import polars as pl

    if not _is_dataset(data):
        frame = to_polars(data)
        acc = _Accumulator(frame.schema, sample_size, seed, streaming=False)
        acc.add(frame)
        return acc.finish()
    import pyarrow as pa

    empty = pl.from_arrow(data.schema.empty_table())
    assert isinstance(empty, pl.DataFrame)  # a Table converts to a frame (a Series only from an array)
    schema = empty.schema
    streamed: _Accumulator | None = None
    buffered: list[Any] = []
    rows = 0
    # Batches are coalesced to ``batch_size`` rows: fewer, bigger passes. A dataset that fits in
    # one is profiled like an in-memory table (exact uniqueness, polars' own distinct estimate).
    for batch in data.to_batches(batch_size=batch_size):
        buffered.append(batch)
        rows += batch.num_rows
        if rows >= batch_size:
            streamed = streamed or _Accumulator(schema, sample_size, seed, streaming=True)
            streamed.add(pl.from_arrow(pa.Table.from_batches(buffered, data.schema)))
            buffered, rows = [], 0
    acc = streamed or _Accumulator(schema, sample_size, seed, streaming=False)
    if buffered or streamed is None:
        acc.add(pl.from_arrow(pa.Table.from_batches(buffered, data.schema)))
    return acc.finish()


@dataclass
class _Column:
    """One column's running statistics, mergeable batch by batch."""

    count: int = 0
    nulls: int = 0
    nans: int = 0
    min: Any = None
    max: Any = None
    n: int = 0  # values behind mean and m2 (Chan et al.'s parallel update)
    mean: float = 0.0
    m2: float = 0.0
    min_len: int | None = None
    max_len: int | None = None
    counts: dict[Any, int] | None = field(default_factory=dict)  # None: too many distinct values
    approx: int = 0  # polars' distinct estimate (one batch)
    hll: np.ndarray | None = None  # registers (streaming)
    unique: bool | None = None


class _Accumulator:
    """Statistics merged over the batches of one table; ``finish`` makes the profile."""

    def __init__(self, schema: Mapping[str, Any], sample_size: int, seed: int, *, streaming: bool) -> None:
        import numpy as np

        self.dtypes = dict(schema)
        self.types = {c: arrow_type_of(t) for c, t in self.dtypes.items()}
        self.kinds = {c: base_kind(t) for c, t in self.dtypes.items()}
        self.cols = {c: _Column() for c in self.dtypes}
        self.rows = 0
        self.streaming = streaming
        self.sample_size = max(int(sample_size), 1)
        self.rng = np.random.default_rng(seed)
        self.sample: Any = None  # polars frame: "__key__" + the numerical columns

    def _numeric(self, c: str) -> Any:
        import polars as pl

        x = pl.col(c)
        if self.dtypes[c].is_decimal():
            x = x.cast(pl.Float64)
        return x.fill_nan(None) if self.dtypes[c].is_float() else x

    def _pass1(self, frame: Any) -> dict[str, Any]:
        """Counts, extremes, moments, lengths and distinct estimates of every column: one select."""
        import polars as pl

        exprs = []
        for i, (c, kind) in enumerate(self.kinds.items()):
            col = pl.col(c)
            if kind == "numerical":
                x = self._numeric(c)
                exprs += [x.count().alias(f"{i}n"), x.min().alias(f"{i}lo"), x.max().alias(f"{i}hi")]
                exprs += [x.mean().alias(f"{i}mean"), x.var(ddof=0).alias(f"{i}var")]
                if self.dtypes[c].is_float():
                    exprs.append(col.is_nan().sum().alias(f"{i}nan"))
            elif kind == "boolean":
                b = col.cast(pl.Float64)
                exprs += [
                    b.count().alias(f"{i}n"),
                    b.mean().alias(f"{i}mean"),
                    b.var(ddof=0).alias(f"{i}var"),
                ]
            elif kind == "datetime":
                exprs += [col.min().alias(f"{i}lo"), col.max().alias(f"{i}hi")]
            elif kind == "string":
                length = col.str.len_chars()
                exprs += [length.min().alias(f"{i}minlen"), length.max().alias(f"{i}maxlen")]
            if kind != "other":
                # Exact on small batches: the sketch is not (it counted [409, 410] as one value).
                present = col.drop_nulls()
                n_unique = (
                    present.n_unique() if frame.height <= EXACT_DISTINCT_ROWS else present.approx_n_unique()
                )
                exprs.append(n_unique.alias(f"{i}d"))
        return frame.select(exprs).row(0, named=True) if exprs else {}

    def add(self, frame: Any) -> None:
        """Fold one batch (a polars DataFrame with the table's schema) into the statistics."""

        n = frame.height
        nulls = frame.null_count().row(0, named=True)
        got = self._pass1(frame)
        tracked: list[str] = []
        keys: list[str] = []
        for i, (c, kind) in enumerate(self.kinds.items()):
            acc = self.cols[c]
            acc.nulls += nulls[c]
            acc.nans += int(got.get(f"{i}nan") or 0)
            count = n - nulls[c] - int(got.get(f"{i}nan") or 0)
            acc.count += count
            acc.approx = int(got.get(f"{i}d") or 0)
            if kind in ("numerical", "datetime"):
                acc.min = _pick(min, acc.min, got[f"{i}lo"])
                acc.max = _pick(max, acc.max, got[f"{i}hi"])
            if f"{i}mean" in got and got[f"{i}mean"] is not None:
                _merge_moments(acc, count, float(got[f"{i}mean"]), float(got[f"{i}var"] or 0.0))
            if kind == "string" and got[f"{i}minlen"] is not None:
                acc.min_len = _pick(min, acc.min_len, int(got[f"{i}minlen"]))
                acc.max_len = _pick(max, acc.max_len, int(got[f"{i}maxlen"]))
            if self.streaming and kind != "other":
                acc.hll = _hll_merge(acc.hll, frame.get_column(c))
            if kind in ("string", "categorical", "boolean") and acc.counts is not None:
                if acc.approx <= TRACK_LIMIT:
                    tracked.append(c)
                else:
                    acc.counts = None
            if not self.streaming and count and self._maybe_key(c, kind):
                if acc.approx >= 0.9 * count:
                    keys.append(c)  # looks all-distinct: check exactly
                else:
                    acc.unique = False  # far fewer distinct values than values, whatever the estimate's error
        self._check_unique(frame, keys)
        self._count_values(frame, tracked)
        self._add_sample(frame)
        self.rows += n

    def _maybe_key(self, c: str, kind: str) -> bool:
        """Integer and string columns may be keys: their uniqueness is worth knowing."""
        return (kind == "numerical" and self.types[c] in _INTEGER) or kind == "string"

    def _check_unique(self, frame: Any, columns: list[str]) -> None:
        """Exact: a column is unique when its distinct non-null values are as many as its values.

        Strings are compared by their 64-bit hashes, which is cheaper; a collision can only make a
        unique column look non-unique (never the reverse), with odds of about n²/2⁶⁵.
        """
        import polars as pl

        if not columns:
            return
        exprs = []
        for c in columns:
            x = pl.col(c).drop_nulls()
            exprs.append((x.hash(seed=0) if self.kinds[c] == "string" else x).n_unique().alias(c))
        for c, distinct in frame.select(exprs).row(0, named=True).items():
            self.cols[c].unique = distinct == frame.height - frame.get_column(c).null_count()

    def _count_values(self, frame: Any, columns: list[str]) -> None:
        import polars as pl

        if not columns:
            return
        lf = frame.lazy()
        results = pl.collect_all([lf.group_by(c).len().drop_nulls(c) for c in columns])
        for c, vc in zip(columns, results, strict=True):
            counts = self.cols[c].counts
            assert counts is not None
            for value, k in vc.iter_rows():
                counts[value] = counts.get(value, 0) + k
            if len(counts) > TRACK_LIMIT:
                self.cols[c].counts = None

    def _add_sample(self, frame: Any) -> None:
        """Keep the ``sample_size`` rows with the smallest random keys: a uniform sample of all batches."""
        import numpy as np
        import polars as pl

        numeric = [c for c, k in self.kinds.items() if k == "numerical"]
        if not numeric:
            return
        keys = self.rng.random(frame.height)
        k = self.sample_size
        idx = np.argpartition(keys, k - 1)[:k] if frame.height > k else np.arange(frame.height)
        part = frame.select([self._numeric(c).cast(pl.Float64).alias(c) for c in numeric])[idx]
        part = part.with_columns(pl.Series("__key__", keys[idx]))
        self.sample = part if self.sample is None else pl.concat([self.sample, part])
        if self.sample.height > k:
            self.sample = self.sample.bottom_k(k, by="__key__")

    def finish(self) -> TableProfile:
        """The profile of everything added so far."""
        quantiles = self._quantiles()
        columns = {}
        for c, kind in self.kinds.items():
            acc = self.cols[c]
            distinct: int | None = acc.approx if kind != "other" else None
            if acc.hll is not None:
                distinct = _hll_estimate(acc.hll)
            top, complete = None, False
            if acc.counts is not None and kind in ("string", "categorical", "boolean"):
                ranked = sorted(acc.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
                top, complete = ranked[:TOP_K], len(ranked) <= TOP_K
                if len(ranked) <= TRACK_LIMIT:
                    distinct = len(ranked)  # exact
            if distinct is not None:
                distinct = min(distinct, acc.count)
            if kind == "string" and distinct is not None and distinct <= CATEGORICAL_MAX:
                kind = "categorical" if 2 * distinct <= acc.count else kind
            moments = kind in ("numerical", "boolean") and acc.n > 0
            columns[c] = ColumnProfile(
                name=c,
                type=self.types[c],
                kind=kind,
                count=acc.count,
                null_count=acc.nulls,
                nan_count=acc.nans,
                min=_scalar(acc.min),
                max=_scalar(acc.max),
                mean=acc.mean if moments else None,
                std=math.sqrt(acc.m2 / (acc.n - 1)) if moments and acc.n > 1 else None,
                quantiles=quantiles.get(c),
                top=[(_scalar(v), k) for v, k in top] if top is not None else None,
                top_complete=complete,
                distinct=distinct,
                min_length=acc.min_len,
                max_length=acc.max_len,
                unique=acc.unique,
            )
        return TableProfile(self.rows, columns, sampled=self.rows > self.sample_size)

    def _quantiles(self) -> dict[str, dict[str, float]]:
        import polars as pl

        if self.sample is None:
            return {}
        names = [c for c in self.sample.columns if c != "__key__"]
        qs = list(QUANTILES.values())
        row = self.sample.select([pl.col(c).quantile(qs, interpolation="linear") for c in names]).row(0)
        return {
            c: dict(zip(QUANTILES, map(float, values), strict=True))
            for c, values in zip(names, row, strict=True)
            if values is not None and all(v is not None for v in values)
        }


def _pick(fn: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else fn(a, b)


def _scalar(v: Any) -> Any:
    import decimal

    if isinstance(v, decimal.Decimal):
        return float(v)
    return iso(v)


def _merge_moments(acc: _Column, n: int, mean: float, var: float) -> None:
    """Chan et al.: combine (n, mean, M2) of the running total with one batch's."""
    if n <= 0:
        return
    total = acc.n + n
    delta = mean - acc.mean
    acc.m2 += var * n + delta * delta * acc.n * n / total
    acc.mean += delta * n / total
    acc.n = total


def _hll_merge(registers: np.ndarray | None, series: Any) -> np.ndarray:
    """HyperLogLog registers of ``series`` merged into ``registers`` (element-wise max)."""
    import numpy as np

    h = series.drop_nulls().hash(seed=0).to_numpy()
    bucket = (h >> np.uint64(64 - HLL_P)).astype(np.intp)
    rest = h & np.uint64((1 << (64 - HLL_P)) - 1)
    # The 1-based position of the leftmost 1 bit in the remaining (64 - P)-bit word: 64 - P minus
    # floor(log2(rest)), read off the exponent bits of ``rest`` as a double (ten times faster than
    # np.log2; rounding can only matter within 2^-52 of a power of two).
    exponent = (np.maximum(rest, 1).astype(np.float64).view(np.int64) >> 52) - 1023
    rho = (64 - HLL_P) - exponent
    rho[rest == 0] = 64 - HLL_P + 1
    out = np.zeros(1 << HLL_P, np.uint8) if registers is None else registers
    np.maximum.at(out, bucket, rho.astype(np.uint8))
    return out


def _hll_estimate(registers: np.ndarray) -> int:
    import numpy as np

    m = float(len(registers))
    raw = 0.7213 / (1 + 1.079 / m) * m * m / float(np.sum(np.exp2(-registers.astype(np.float64))))
    empty = int((registers == 0).sum())
    if raw <= 2.5 * m and empty:
        raw = m * math.log(m / empty)  # linear counting: near exact for small cardinalities
    return round(raw)


def _is_dataset(data: Any) -> bool:
    return (
        type(data).__module__.startswith("pyarrow")
        and hasattr(data, "to_batches")
        and hasattr(data, "count_rows")
    )


# ---- diff ------------------------------------------------------------------------------------


def diff_profiles(a: Mapping[str, Any] | TableProfile, b: Mapping[str, Any] | TableProfile) -> dict[str, Any]:
    """How table ``b`` differs from table ``a``, column by column (both as profiles or their dicts).

    Returns a JSON-safe dict: ``num_rows`` ({a, b, change}), ``added`` and ``removed`` column names,
    and per common column ``type`` ({a, b} when it changed, else None), ``null_share``, ``mean``
    (with ``change_in_std``: the shift in units of ``a``'s standard deviation), ``std``,
    ``quantiles`` (per pNN), ``distinct``, ``categories`` ({added, removed} among the top values)
    and ``shifted``: True when the type changed, the null share moved by more than 1 point, the
    mean by more than 0.1 standard deviations, or top categories appeared or vanished.
    """
    pa_ = a if isinstance(a, TableProfile) else TableProfile.from_dict(a)
    pb = b if isinstance(b, TableProfile) else TableProfile.from_dict(b)
    out: dict[str, Any] = {
        "num_rows": _change(pa_.num_rows, pb.num_rows),
        "added": [c for c in pb.columns if c not in pa_.columns],
        "removed": [c for c in pa_.columns if c not in pb.columns],
        "columns": {},
    }
    for name, ca in pa_.columns.items():
        cb = pb.columns.get(name)
        if cb is not None:
            out["columns"][name] = _diff_column(ca, cb)
    return out


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _change(a: Any, b: Any) -> dict[str, Any]:
    fa, fb = _num(a), _num(b)
    change = fb - fa if fa is not None and fb is not None else None
    return {"a": _enc(a), "b": _enc(b), "change": _enc(change)}


def _diff_column(a: ColumnProfile, b: ColumnProfile) -> dict[str, Any]:
    mean = _change(a.mean, b.mean)
    shift = None
    if a.mean is not None and b.mean is not None and a.std and math.isfinite(a.std):
        shift = (b.mean - a.mean) / a.std
    mean["change_in_std"] = _enc(shift)
    quantiles = {
        k: _change((a.quantiles or {}).get(k), (b.quantiles or {}).get(k))
        for k in QUANTILES
        if a.quantiles is not None or b.quantiles is not None
    }
    # A value missing from an incomplete top list may only have dropped in rank: report a category
    # as new (or gone) only when the other side lists every value it has.
    top_a = {str(v) for v, _ in a.top or []}
    top_b = {str(v) for v, _ in b.top or []}
    categories = {
        "added": sorted(top_b - top_a) if a.top_complete else [],
        "removed": sorted(top_a - top_b) if b.top_complete else [],
    }
    null = _change(a.null_share, b.null_share)
    type_change = None if a.type == b.type else {"a": a.type, "b": b.type}
    shifted = (
        type_change is not None
        or abs(null["change"] or 0) > 0.01
        or (shift is not None and math.isfinite(shift) and abs(shift) > 0.1)
        or bool(categories["added"] or categories["removed"])
    )
    return {
        "type": type_change,
        "kind": {"a": a.kind, "b": b.kind},
        "null_share": null,
        "mean": mean,
        "std": _change(a.std, b.std),
        "quantiles": quantiles,
        "distinct": _change(a.distinct, b.distinct),
        "categories": categories,
        "shifted": shifted,
    }


def iso(value: Any) -> Any:
    """A JSON-safe scalar: datetimes and dates as ISO strings, everything else unchanged."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value
