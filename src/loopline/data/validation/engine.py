"""The engine: a whole suite checked in two vectorised polars passes.

1. **Plan** (schema only, no data read): ``column_exists`` checks are decided from the schema; a
   column another check names that is missing is an ``InvalidInput`` naming it, unless a
   ``column_exists`` expectation guards it, in which case its checks fail as *skipped*. Only the
   columns the suite reads are loaded.
2. **Masks**: one ``select`` builds a boolean column per row-level expectation, True on each
   failing row. Its sum is the unexpected count; ``arg_true`` gives every failing row's index.
3. **Aggregates**: one ``select`` computes missing counts, observed ranges, means, standard
   deviations and quantiles for every expectation at once.

Every expression is first tried on a one-row, all-null frame of the same schema, so that a check
that cannot apply to its column (a range on a string column, a bad regex) is reported by name
before any work is done.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopline.data.profile import arrow_type_of
from loopline.data.validation import suite as s
from loopline.data.validation.inputs import Source, open_source, reference_values
from loopline.data.validation.result import ExpectationResult, ValidationResult
from loopline.errors import InvalidInput, LooplineError, MissingExtra

try:  # the engine is imported only when validation is used: import its libraries up front
    import numpy as np
    import polars as pl
except ModuleNotFoundError as e:  # pragma: no cover - the "data" extra is not installed
    raise MissingExtra(e.name or "polars", "data") from None

_INTEGER = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLOAT = ("halffloat", "float", "double", "float16", "float32", "float64")
FAMILIES: dict[str, Callable[[str], bool]] = {
    "integer": lambda t: t in _INTEGER,
    "float": lambda t: t in _FLOAT,
    "numeric": lambda t: t in _INTEGER or t in _FLOAT or t.startswith("decimal"),
    "string": lambda t: t == "string",
    "boolean": lambda t: t == "bool",
    "datetime": lambda t: t.startswith(("timestamp", "date")),
    "categorical": lambda t: t.startswith("dictionary"),
}
_ALIASES = {
    "float64": "double",
    "float32": "float",
    "str": "string",
    "utf8": "string",
    "large_string": "string",
}
_ROW = (s.NotNull, s.Between, s.InSet, s.Unique, s.Matches, s.Length, s.References, s.Custom)
_UNEXPECTED_VALUES = 10  # distinct failing values shown as "observed"


def type_matches(actual: str, expected: str) -> bool:
    """Whether the Arrow type ``actual`` is ``expected``: a type string or a family name."""
    want = _ALIASES.get(expected.strip().lower(), expected.strip().lower())
    family = FAMILIES.get(want)
    return family(actual) if family is not None else actual == want


def validate(
    data: Any,
    suite: s.Suite | str | Path,
    *,
    sample_rows: int = 10,
    label: str | None = None,
    client: Any = None,
) -> ValidationResult:
    """Check ``data`` against ``suite``; never raises for failed expectations, only for bad input.

    Args:
        data: a Parquet/CSV/JSON file or folder, a dataset URI (``datasets:/customers@prod``), a
            polars or pandas DataFrame, or a pyarrow Table or Dataset.
        suite: a :class:`Suite` or the path of its YAML file.
        sample_rows: failing rows shown (with their values) per expectation; every failing row's
            index is kept regardless.
        label: how the report names the data (default: the path, URI or type).
        client: a ``loopline.data.DataClient`` for dataset URIs (default: the environment's).

    Raises:
        InvalidInput: the suite has no expectations, names a column the data does not have, or
            a check cannot apply to its column's type. Nothing was evaluated.

    Example:
        >>> result = validate("customers.parquet", "suite.yaml")   # doctest: +SKIP
        >>> result.success, [r.label for r in result.failed]
    """
    started = time.perf_counter()
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if not isinstance(suite, s.Suite):
        suite = s.Suite.from_yaml(suite)
    if not suite.expectations:  # "0 of 0 checks passed" would read as a pass
        raise InvalidInput(
            f"Suite {suite.name!r} has no expectations: there is nothing to check.",
            hint="Add expectations to it, or infer a suite from reference data (--infer-from).",
        )
    source = open_source(data, label=label, client=client)
    run = _Run(suite, source, sample_rows, client)
    results = run.evaluate()
    return ValidationResult(
        suite.name, source.label, run.height, results, created, time.perf_counter() - started, uri=source.uri
    )


def _missing(column: str, dtype: Any) -> Any:
    col = pl.col(column)
    return col.is_null() | col.is_nan() if dtype.is_float() else col.is_null()


def _values(column: str, dtype: Any) -> Any:
    """The column with NaN as null, so that aggregates skip both."""
    return pl.col(column).fill_nan(None) if dtype.is_float() else pl.col(column)


class _Run:
    """One suite against one source: plan, load, evaluate."""

    def __init__(self, suite: s.Suite, source: Source, sample_rows: int, client: Any) -> None:
        self.suite = suite
        self.client = client
        self.references: dict[tuple[str, str], Any] = {}  # (dataset, column) -> its distinct values
        self.labels = s.labels(suite.expectations)
        self.schema = source.schema
        self.sample_rows = sample_rows
        self.decided: dict[int, ExpectationResult] = {}
        self._plan()
        self.frame = source.load(self._columns_to_read())
        self.height: int = self.frame.height

    # ---- plan ---------------------------------------------------------------------------------

    def _plan(self) -> None:
        problems: dict[str, str] = {}
        for i, e in enumerate(self.suite.expectations):
            if isinstance(e, s.ColumnExists):
                actual = arrow_type_of(self.schema[e.column]) if e.column in self.schema else None
                if actual is None:
                    problems[e.column] = f"column {e.column!r} is missing"
                elif e.type and not type_matches(actual, e.type):
                    problems[e.column] = f"column {e.column!r} is {actual}, not {e.type}"
                ok = actual is not None and (not e.type or type_matches(actual, e.type))
                self.decided[i] = ExpectationResult(e, self.labels[i], ok, observed=actual)
        unguarded: dict[str, list[str]] = {}
        for i, e in enumerate(self.suite.expectations):
            if i in self.decided:
                continue
            blocked = [problems[c] for c in e.columns() if c in problems]
            if blocked:
                self.decided[i] = ExpectationResult(
                    e, self.labels[i], False, error="skipped: " + "; ".join(blocked)
                )
            for c in e.columns():
                if c not in self.schema and c not in problems:
                    unguarded.setdefault(c, []).append(self.labels[i])
        if unguarded:
            named = ", ".join(f"{c!r} (in {', '.join(ls)})" for c, ls in unguarded.items())
            plural = "s" if len(unguarded) > 1 else ""
            raise InvalidInput(
                f"The suite refers to column{plural} the data does not have: {named}.",
                hint=f"The data's columns are: {', '.join(self.schema) or '(none)'}. Fix the suite, or add "
                "column_exists for a column that may be absent: its checks then fail instead.",
            )

    def _columns_to_read(self) -> list[str] | None:
        todo = [e for i, e in enumerate(self.suite.expectations) if i not in self.decided]
        if any(isinstance(e, s.Custom) and e.reads_all_columns for e in todo):
            return None
        wanted = {c for e in todo for c in e.columns()}
        # At least one column, so that the frame knows its height (row_count alone reads no column).
        return [c for c in self.schema if c in wanted] or list(self.schema)[:1]

    # ---- expressions --------------------------------------------------------------------------

    def _bound(self, value: Any, column: str) -> Any:
        """A range bound as a literal of the column's type (ISO strings for dates and datetimes)."""
        dtype = self.schema[column]
        if isinstance(value, str) and isinstance(dtype, pl.Datetime):
            return pl.lit(value).str.to_datetime(time_unit=dtype.time_unit, time_zone=dtype.time_zone)
        if isinstance(value, str) and dtype == pl.Date:
            return pl.lit(value).str.to_date()
        return pl.lit(value)

    def _row_check(self, e: Any) -> tuple[Any, Any, dict[str, Any]]:
        """(fail mask, missing mask or None, observed aggregates) of a row-level expectation."""
        if isinstance(e, s.Custom):
            return self._custom(e)
        if isinstance(e, s.Unique):
            cols = list(e.columns())
            missing = pl.all_horizontal([_missing(c, self.schema[c]) for c in cols])
            return self._duplicated(cols, missing), missing, {}
        c = e.columns()[0]
        col, dtype = pl.col(c), self.schema[c]
        missing = _missing(c, dtype)
        observed: dict[str, Any] = {}
        if isinstance(e, s.NotNull):
            return missing, None, {}
        if isinstance(e, s.Between):
            bad = pl.lit(False)
            if e.min is not None:
                lo = self._bound(e.min, c)
                bad = bad | (col <= lo if e.strict_min else col < lo)
            if e.max is not None:
                hi = self._bound(e.max, c)
                bad = bad | (col >= hi if e.strict_max else col > hi)
            v = _values(c, dtype)
            observed = {"min": v.min(), "max": v.max()}
        elif isinstance(e, s.InSet):
            bad = ~col.is_in(self._as_values(e.values, dtype).implode())
        elif isinstance(e, s.Matches):
            bad = ~col.cast(pl.String).str.contains(e.pattern)
        elif isinstance(e, s.Length):
            n = col.cast(pl.String).str.len_chars()
            bad = pl.lit(False)
            if e.min is not None:
                bad = bad | (n < e.min)
            if e.max is not None:
                bad = bad | (n > e.max)
            observed = {"min_length": n.min(), "max_length": n.max()}
        elif isinstance(e, s.References):
            key = (e.dataset, e.dataset_column or c)
            if key not in self.references:
                self.references[key] = reference_values(*key, client=self.client)
            values = self.references[key]
            bad = ~col.is_in(self._as_values(values, dtype).implode())
        else:  # pragma: no cover - _ROW lists the kinds above
            raise AssertionError(e)
        return bad.fill_null(False) & ~missing, missing, observed

    def _as_values(self, values: Any, dtype: Any) -> Any:
        """``values`` (a list, or a Series of another dataset) as a Series of the column's type.

        YAML writes ``[01234, DE]`` as numbers and strings alike: values are converted to the
        column's type, and those that do not convert can match nothing.
        """
        series = values if isinstance(values, pl.Series) else pl.Series(values, strict=False)
        target = pl.String if isinstance(dtype, pl.Categorical | pl.Enum) else dtype
        try:
            return series.cast(target, strict=False).drop_nulls()
        except pl.exceptions.PolarsError:
            raise InvalidInput(
                f"Cannot compare values of type {series.dtype} with a column of type {arrow_type_of(dtype)}.",
                hint="Give values of the column's type.",
            ) from None

    def _duplicated(self, columns: list[str], missing: Any) -> Any:
        """True on every row whose key (not entirely missing) another row repeats: a boolean Series.

        Polars' ``is_duplicated`` builds a hash table of the values; sorting their 64-bit hashes is
        several times faster. Equal hashes only make candidates: their rows are then checked
        exactly, so a hash collision never makes a unique row fail.
        """
        key = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
        got = self.frame.select(key.hash(seed=0).alias("h"), missing.alias("m"))
        hashes, skip = got.get_column("h"), got.get_column("m").to_numpy()
        ordered = np.sort(hashes.to_numpy()[~skip])
        mask = np.zeros(self.frame.height, dtype=bool)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if len(repeated):
            distinct = repeated[np.r_[True, repeated[1:] != repeated[:-1]]]  # sorted: no np.unique needed
            candidates = hashes.is_in(pl.Series(distinct).implode()).to_numpy() & ~skip
            rows = np.flatnonzero(candidates)
            exact = self.frame.select(columns)[rows].select(key.is_duplicated()).to_series().to_numpy()
            mask[rows[exact]] = True
        return pl.Series(mask)

    def _custom(self, e: s.Custom) -> tuple[Any, Any, dict[str, Any]]:
        out = pl.sql_expr(e.sql) if e.sql is not None else e.resolve()(self.frame)
        if isinstance(out, pl.Series):
            if out.len() != self.frame.height or out.dtype != pl.Boolean:
                raise TypeError(
                    f"returned a {out.dtype} Series of {out.len()} rows, not {self.frame.height} booleans"
                )
            return (~out).fill_null(False), pl.lit(out.null_count()), {}
        if not isinstance(out, pl.Expr):
            raise TypeError(f"returned a {type(out).__name__}, not a boolean polars Series or Expr")
        return (~out).fill_null(False), out.is_null(), {}

    def _table_check(self, e: Any) -> Any:
        if isinstance(e, s.RowCount):
            return pl.len()
        dtype = self.schema[e.column]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise InvalidInput(
                f"{e.label}: column {e.column!r} is {arrow_type_of(dtype)}, not numeric.",
                hint=f"{e.kind} applies to numeric columns only.",
            )
        v = _values(e.column, dtype).cast(pl.Float64)
        if isinstance(e, s.Mean):
            return v.mean()
        if isinstance(e, s.Std):
            return v.std()
        return v.quantile(e.q, interpolation="linear")

    def _probe(self, exprs: dict[int, list[Any]]) -> None:
        """Try every expression on a one-row all-null frame: type errors surface here, named.

        One probe for all; only when it fails, one per expectation to find which.
        """
        probe = pl.DataFrame([pl.Series(c, [None], dtype=t) for c, t in self.frame.schema.items()])

        def attempt(items: dict[int, list[Any]]) -> None:
            probe.select([x.alias(f"_{i}_{k}") for i, xs in items.items() for k, x in enumerate(xs)])

        try:
            attempt(exprs)
            return
        except (pl.exceptions.PolarsError, TypeError, ValueError):
            pass
        for i, xs in exprs.items():
            try:
                attempt({i: xs})
            except (pl.exceptions.PolarsError, TypeError, ValueError) as err:
                first = str(err).strip().splitlines()[0]
                raise InvalidInput(
                    f"{self.labels[i]} cannot run on this data: {first}", hint=s._HINT
                ) from None

    def _plan_checks(self) -> tuple[dict[int, tuple[Any, Any, dict[str, Any]]], dict[int, Any]]:
        """The expressions of every expectation still to evaluate: row-level and table-level."""
        rows: dict[int, tuple[Any, Any, dict[str, Any]]] = {}
        tables: dict[int, Any] = {}
        for i, e in enumerate(self.suite.expectations):
            if i in self.decided:
                continue
            try:
                if isinstance(e, _ROW):
                    rows[i] = self._row_check(e)
                    if isinstance(e, s.Custom) and isinstance(rows[i][0], pl.Expr):
                        self._probe({i: [rows[i][0], rows[i][1]]})  # the user's own: a failure is reported
                else:
                    tables[i] = self._table_check(e)
            except Exception as err:
                if not isinstance(e, s.Custom):
                    raise
                rows.pop(i, None)  # a custom check of the user's own failed: report it, run the rest
                message = err.message if isinstance(err, LooplineError) else f"{type(err).__name__}: {err}"
                self.decided[i] = ExpectationResult(e, self.labels[i], False, error=message)
        exprs = {i: [r[0], *r[2].values()] for i, r in rows.items() if isinstance(r[0], pl.Expr)}
        self._probe({**exprs, **{i: [x] for i, x in tables.items()}})
        return rows, tables

    # ---- evaluate -----------------------------------------------------------------------------

    def evaluate(self) -> list[ExpectationResult]:
        rows, tables = self._plan_checks()
        lazy = {i: r[0] for i, r in rows.items() if isinstance(r[0], pl.Expr)}
        masks = self.frame.select([x.alias(f"m{i}") for i, x in lazy.items()])
        ready = [r[0].alias(f"m{i}") for i, r in rows.items() if i not in lazy]  # computed already
        if ready:
            masks = masks.hstack(ready) if lazy else pl.DataFrame(ready)
        aggs: list[Any] = []
        for i, (_, missing, observed) in rows.items():
            if missing is not None:
                aggs.append(missing.sum().alias(f"missing{i}"))
            aggs += [x.alias(f"o{i}:{k}") for k, x in observed.items()]
        aggs += [x.alias(f"t{i}") for i, x in tables.items()]
        got = self.frame.select(aggs).row(0, named=True) if aggs else {}
        counts = masks.sum().row(0, named=True) if rows else {}
        out = []
        for i, e in enumerate(self.suite.expectations):
            if i in self.decided:
                out.append(self.decided[i])
            elif i in rows:
                out.append(self._row_result(i, e, int(counts[f"m{i}"]), masks.get_column(f"m{i}"), got))
            else:
                out.append(self._table_result(i, e, got[f"t{i}"]))
        return out

    def _row_result(self, i: int, e: Any, bad: int, mask: Any, got: dict[str, Any]) -> ExpectationResult:
        n = self.frame.height
        missing = int(got.get(f"missing{i}") or 0)
        observed: Any = {k.split(":", 1)[1]: v for k, v in got.items() if k.startswith(f"o{i}:")}
        if isinstance(e, s.NotNull):
            success = bad <= e.max_share * n + 1e-9
            observed = bad / n if n else 0.0
        else:
            success = bad <= (1.0 - e.mostly) * (n - missing) + 1e-9
        rows = mask.arg_true().to_numpy().astype("int64") if bad else None
        sample: list[dict[str, Any]] = []
        if rows is not None:
            columns = list(e.columns()) or self.frame.columns[:8]
            picked = self.frame.select(columns)[rows[: self.sample_rows]]
            sample = [
                {"_row": int(r), **values}
                for r, values in zip(rows, picked.iter_rows(named=True), strict=False)
            ]
            if len(e.columns()) == 1 and not isinstance(e, s.NotNull):
                head = self.frame.get_column(e.columns()[0]).gather(rows[:1000])
                observed = {
                    **observed,
                    "unexpected_values": head.unique(maintain_order=True).head(_UNEXPECTED_VALUES).to_list(),
                }
        return ExpectationResult(
            e,
            self.labels[i],
            bool(success),
            observed,
            n,
            missing if not isinstance(e, s.NotNull) else 0,
            bad,
            rows,
            sample,
        )

    def _table_result(self, i: int, e: Any, value: Any) -> ExpectationResult:
        if value is None:
            return ExpectationResult(e, self.labels[i], False, None, error="no non-missing values")
        ok = (e.min is None or value >= e.min) and (e.max is None or value <= e.max)
        return ExpectationResult(e, self.labels[i], bool(ok), value)
