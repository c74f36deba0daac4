"""Reference profiles: everything drift tests need from the reference, computed once and stored.

A monitor compares each new window with the same reference, so the reference is summarised once per
dataset version and a run never rescans it:

- numerical column: its finite values sorted — all of them up to ``exact_max_rows`` (default 50,000),
  else a ``sketch_size``-point quantile sketch (default 8,192) — plus exact count, missing and infinite
  counts, mean, standard deviation, minimum, maximum, the quantile bin edges and the exact bin counts;
- categorical column: the counts of its ``max_categories`` most frequent values (default 1,000), the
  rest pooled as one "other" count, and the missing count.

**Where exactness holds.** PSI, Jensen-Shannon, chi-square, G-test, the moments and the data-quality
checks use exact counts whatever the size. KS and Wasserstein are exact (SciPy's figures) while the
reference has at most ``exact_max_rows`` values; above that they use the sketch, and the KS statistic
is within ``1/(sketch_size-1) + 1/n`` of the exact one (~1.2e-4 by default; the p-value uses the true n).

A profile is saved as one ``.npz`` (no pickle): a JSON header plus one array per column part.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopline.clock import now_ms
from loopline.errors import InvalidInput
from loopline.monitoring import binning
from loopline.monitoring.inputs import Kind, category_counts, kind_of, numeric_values, open_columns

FORMAT = 1
EXACT_MAX_ROWS = 50_000
SKETCH_SIZE = 8_192
MAX_CATEGORIES = 1_000
N_BINS = 10


@dataclass(frozen=True)
class NumericProfile:
    name: str
    n: int  # finite values
    n_rows: int
    n_missing: int
    n_infinite: int
    sample: NDArray[np.float64]  # sorted: every finite value, or a sketch when n > exact_max_rows
    mean: float
    std: float  # population standard deviation (ddof=0)
    min: float
    max: float
    edges: NDArray[np.float64]  # inner edges of the quantile bins
    counts: NDArray[np.int64]  # exact count per bin
    kind: Kind = "numerical"

    @property
    def exact(self) -> bool:
        return self.sample.size == self.n


@dataclass(frozen=True)
class CategoricalProfile:
    name: str
    n: int  # non-missing values
    n_rows: int
    n_missing: int
    categories: tuple[str, ...]  # most frequent first
    counts: NDArray[np.int64]
    other: int  # values beyond the kept categories, pooled
    kind: Kind = "categorical"


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference side of every drift test, column by column."""

    columns: dict[str, ColumnProfile]
    n_rows: int
    source: str = ""
    n_bins: int = N_BINS
    created_ms: int = field(default_factory=now_ms)

    @classmethod
    def build(
        cls,
        data: Any,
        *,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        n_bins: int = N_BINS,
        exact_max_rows: int = EXACT_MAX_ROWS,
        sketch_size: int = SKETCH_SIZE,
        max_categories: int = MAX_CATEGORIES,
        source: str = "",
        workers: int | None = None,
        settings: Any = None,
    ) -> ReferenceProfile:
        """Profile ``data`` (a file, URI or frame, see ``inputs``): one pass over each column.

        ``categorical`` forces numeric columns (codes, small integers) to be treated as categories;
        ``workers`` threads profile columns in parallel (default: up to 4).
        """
        if n_bins < 2:
            raise InvalidInput(f"n_bins must be at least 2; got {n_bins}.")
        if sketch_size < 16 or exact_max_rows < sketch_size:
            raise InvalidInput("sketch_size must be >= 16 and exact_max_rows >= sketch_size.")
        from loopline.monitoring.inputs import describe

        table = open_columns(data, what="reference", settings=settings)  # Parquet: column by column
        names = list(columns) if columns is not None else list(table.column_names)
        have = set(table.column_names)
        missing = [c for c in names if c not in have]
        if missing:
            raise InvalidInput(
                f"The reference has no column {', '.join(map(repr, missing))}.",
                hint=f"Its columns: {', '.join(table.column_names)}.",
            )
        force = set(categorical)

        def one(name: str) -> ColumnProfile:
            col = table.column(name)
            kind = "categorical" if name in force else (kind_of(table.types[name]) or "numerical")
            if kind == "numerical":
                return _numeric(name, col, n_bins, exact_max_rows, sketch_size)
            return _categorical(name, col, max_categories)

        n_workers = workers or min(4, os.cpu_count() or 1)
        if n_workers > 1 and len(names) > 1:
            with ThreadPoolExecutor(n_workers) as pool:  # sorting and Arrow kernels release the GIL
                profiles = list(pool.map(one, names))
        else:
            profiles = [one(n) for n in names]
        return cls(dict(zip(names, profiles, strict=True)), table.num_rows, source or describe(data), n_bins)

    # ---- persistence -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        header: dict[str, Any] = {
            "format": FORMAT,
            "n_rows": self.n_rows,
            "source": self.source,
            "n_bins": self.n_bins,
            "created_ms": self.created_ms,
            "columns": [],
        }
        arrays: dict[str, NDArray[Any]] = {}
        for i, (name, p) in enumerate(self.columns.items()):
            if isinstance(p, NumericProfile):
                meta = {k: getattr(p, k) for k in ("n", "n_rows", "n_missing", "n_infinite", "mean", "std")}
                meta |= {"min": p.min, "max": p.max}
                arrays |= {f"{i}_sample": p.sample, f"{i}_edges": p.edges, f"{i}_counts": p.counts}
            else:
                meta = {"n": p.n, "n_rows": p.n_rows, "n_missing": p.n_missing, "other": p.other}
                meta["categories"] = list(p.categories)
                arrays[f"{i}_counts"] = p.counts
            header["columns"].append({"name": name, "kind": p.kind, **meta})
        buf = io.BytesIO()
        header_bytes = json.dumps(header, allow_nan=True).encode()
        arrays["header"] = np.frombuffer(header_bytes, np.uint8)
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        try:
            npz = np.load(io.BytesIO(data), allow_pickle=False)
            header = json.loads(npz["header"].tobytes())
        except Exception as e:
            raise InvalidInput(f"Not a Loopline reference profile: {e}.") from None
        if header.get("format") != FORMAT:
            raise InvalidInput(f"Unsupported reference profile format {header.get('format')!r}.")
        cols: dict[str, ColumnProfile] = {}
        for i, c in enumerate(header["columns"]):
            if c["kind"] == "numerical":
                cols[c["name"]] = NumericProfile(
                    c["name"],
                    c["n"],
                    c["n_rows"],
                    c["n_missing"],
                    c["n_infinite"],
                    npz[f"{i}_sample"],
                    c["mean"],
                    c["std"],
                    c["min"],
                    c["max"],
                    npz[f"{i}_edges"],
                    npz[f"{i}_counts"],
                )
            else:
                cols[c["name"]] = CategoricalProfile(
                    c["name"],
                    c["n"],
                    c["n_rows"],
                    c["n_missing"],
                    tuple(c["categories"]),
                    npz[f"{i}_counts"],
                    c["other"],
                )
        return cls(cols, header["n_rows"], header["source"], header["n_bins"], header["created_ms"])

    def save(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(self.to_bytes())

    @classmethod
    def load(cls, path: str) -> ReferenceProfile:
        with open(path, "rb") as f:
            return cls.from_bytes(f.read())


def _numeric(name: str, col: Any, n_bins: int, exact_max_rows: int, sketch_size: int) -> NumericProfile:
    v = numeric_values(col)
    x = v.values
    n = x.size
    edges = binning.quantile_edges(x, n_bins)
    sample = x if n <= exact_max_rows else binning.sketch(x, sketch_size)
    nan = float("nan")
    return NumericProfile(
        name,
        n,
        v.n_rows,
        v.n_missing,
        v.n_infinite,
        sample,
        float(x.mean()) if n else nan,
        float(x.std()) if n else nan,
        float(x[0]) if n else nan,
        float(x[-1]) if n else nan,
        edges,
        binning.bin_counts(x, edges),
    )


def _categorical(name: str, col: Any, max_categories: int) -> CategoricalProfile:
    cats, counts, missing = category_counts(col)
    other = int(counts[max_categories:].sum())
    n = int(counts.sum())
    return CategoricalProfile(
        name, n, len(col), missing, tuple(cats[:max_categories]), counts[:max_categories], other
    )
