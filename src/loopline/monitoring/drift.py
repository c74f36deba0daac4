"""``drift(reference, current)``: which columns changed, by how much, how sure, and why this test.

Choosing a test (``test="auto"``, the default, or per column through ``tests={"col": "psi"}``):

- **numerical → two-sample KS**, at every sample size. A column drifts when its p-value (adjusted for
  testing many columns, below) is under ``alpha`` **and** D — the largest gap between the two CDFs — is
  at least ``min_effect`` (0.05). With few rows the p-value decides (a significant D is large anyway);
  with many rows the effect floor does, so that a trivial shift in a million rows is not "drift". The
  switch is smooth: the boundary is max(critical D(n, alpha), min_effect), and each column's ``reason``
  says which side of it the sizes fall on. There is no cliff at 1,000 rows or anywhere else.
- **categorical → two-sample chi-square** on the 2 x k table of counts (categories with an expected
  count under 5 pooled), with the same rule, the effect being the total variation distance.
- On request: ``wasserstein`` (normed by the reference's standard deviation), ``psi`` and
  ``jensenshannon`` (on quantile bins of the reference for numbers, ``n_bins`` of them), ``g_test``.
  Distances drift when they reach their threshold (0.1 each unless ``thresholds={"col": x}``).

Many columns at once: p-values are adjusted by Benjamini-Hochberg (``correction="bh"``; or
``"bonferroni"``, ``"none"``), so among the columns flagged the expected share of false alarms stays
under ``alpha``. The dataset drifts when the share of drifted columns reaches ``drift_share`` (0.5).

Edge cases, defined: ±inf and NaN are left out of the tests and reported in ``quality``; a column with
no values on one side only drifts (test ``no_data``), on neither side does not; a constant column is
compared like any other (KS and chi-square handle ties; Wasserstein falls back to an absolute distance).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from loopline.errors import InvalidInput
from loopline.monitoring import binning, stats
from loopline.monitoring.inputs import (
    NumericValues,
    category_counts,
    describe,
    kind_of,
    numeric_values,
    open_columns,
)
from loopline.monitoring.reference import CategoricalProfile, NumericProfile, ReferenceProfile
from loopline.monitoring.report import ColumnDrift, DriftReport

P_VALUE_TESTS = {"ks", "chisquare", "g_test"}
NUMERICAL_TESTS = ("ks", "wasserstein", "psi", "jensenshannon")
CATEGORICAL_TESTS = ("chisquare", "g_test", "psi", "jensenshannon")
ALIASES = {"js": "jensenshannon", "chi2": "chisquare", "chi-square": "chisquare", "g": "g_test", "kl": "psi"}
DEFAULT_THRESHOLDS = {"wasserstein": 0.1, "psi": 0.1, "jensenshannon": 0.1}
CORRECTIONS = ("bh", "bonferroni", "none")


@dataclass(frozen=True)
class Options:
    alpha: float = 0.05
    min_effect: float = 0.05
    drift_share: float = 0.5
    correction: str = "bh"
    numerical_test: str = "auto"
    categorical_test: str = "auto"
    tests: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)


def _canonical(test: str) -> str:
    t = test.strip().lower().replace("-", "_")
    return ALIASES.get(t, t)


def drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    prediction: str | None = None,
    target: str | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    numerical_test: str = "auto",
    categorical_test: str = "auto",
    alpha: float = 0.05,
    min_effect: float = 0.05,
    drift_share: float = 0.5,
    correction: str = "bh",
    n_bins: int = 10,
    workers: int | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    Both may be a file path, a ``datasets:/`` URI, a pandas/polars/Arrow table or a mapping of columns;
    ``reference`` may also be a stored :class:`ReferenceProfile` (then it is not rescanned).

    Example::

        report = drift("train.parquet", "last_hour.parquet", tests={"income": "psi"})
        report.dataset_drift, report.drifted_columns  # e.g. (False, ['income'])
    """
    opts = Options(
        alpha,
        min_effect,
        drift_share,
        correction,
        _canonical(numerical_test),
        _canonical(categorical_test),
        {k: _canonical(v) for k, v in (tests or {}).items()},
        dict(thresholds or {}),
    )
    _check_options(opts)
    special = [c for c in (prediction, target) if c]
    if isinstance(reference, ReferenceProfile):
        profile = reference
    else:
        profile = ReferenceProfile.build(
            reference,
            columns=None if columns is None else [*columns, *[c for c in special if c not in columns]],
            categorical=categorical,
            n_bins=n_bins,
        )
    table = open_columns(current, what="current")  # a Parquet file: read column by column, in the pool
    names = list(columns) if columns is not None else [c for c in profile.columns if c not in special]
    have = set(table.column_names)  # a property that builds a list: once, not per column
    _check_columns(names, profile, have, current)
    forced = set(categorical)

    def one(name: str, ref_name: str | None = None, force: bool | None = None) -> ColumnDrift:
        ref, col = profile.columns[ref_name or name], table.column(name)  # read here: in the pool
        return _column(ref, col, table.types[name], opts, name in forced if force is None else force)

    n_workers = workers or min(4, os.cpu_count() or 1)
    if n_workers > 1 and len(names) > 1:
        stats.import_scipy_stats()  # here, not in the pool: concurrent first imports can deadlock
        with ThreadPoolExecutor(n_workers) as pool:  # NumPy and Arrow release the GIL in the heavy parts
            results = list(pool.map(one, names))
    else:
        results = [one(c) for c in names]
    results = _adjust(results, opts)
    n_drifted = sum(r.drifted for r in results)
    share = n_drifted / len(results) if results else 0.0
    targ_drift = _adjust([one(target)], opts)[0] if target in profile.columns and target in have else None
    pred_drift = None
    # Predictions compare with the reference's own predictions, else with its labels (the target).
    ref_name = prediction if prediction in profile.columns else target
    if prediction in have and ref_name in profile.columns:
        r = one(prediction, ref_name, target in forced)
        pred_drift = _adjust([replace(r, name=prediction)], opts)[0]
    return DriftReport(
        dataset_drift=n_drifted > 0 and share >= drift_share,
        drift_share=share,
        columns={r.name: r for r in results},
        options={
            "alpha": alpha,
            "min_effect": min_effect,
            "drift_share": drift_share,
            "correction": correction,
            "n_bins": profile.n_bins,
            "numerical_test": opts.numerical_test,
            "categorical_test": opts.categorical_test,
        },
        reference=profile.source,
        current=describe(current),
        n_reference=profile.n_rows,
        n_current=table.num_rows,
        prediction_drift=pred_drift,
        target_drift=targ_drift,
    )


def _check_columns(names: Sequence[str], profile: ReferenceProfile, have: set[str], current: Any) -> None:
    """Every compared column is in the reference's profile and in the current data."""
    unknown = [c for c in names if c not in profile.columns]
    if unknown:
        raise InvalidInput(
            f"The reference has no column {', '.join(map(repr, unknown))}.",
            hint=f"Its columns: {', '.join(profile.columns)}.",
        )
    absent = [c for c in names if c not in have]
    if absent:
        raise InvalidInput(
            f"The current data ({describe(current)}) lacks the column{'s' if len(absent) > 1 else ''} "
            f"{', '.join(map(repr, absent))} of the reference ({profile.source}).",
            hint="Compare the same columns, or pass columns=[…] to choose them.",
        )


def _check_options(o: Options) -> None:
    if not 0 < o.alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1; got {o.alpha}.")
    if not 0 <= o.drift_share <= 1:
        raise InvalidInput(f"drift_share must be between 0 and 1; got {o.drift_share}.")
    if o.correction not in CORRECTIONS:
        raise InvalidInput(
            f"Unknown correction {o.correction!r}.", hint=f"Use one of {', '.join(CORRECTIONS)}."
        )
    known = set(NUMERICAL_TESTS) | set(CATEGORICAL_TESTS) | {"auto"}
    for where, t in [("numerical_test", o.numerical_test), ("categorical_test", o.categorical_test)] + [
        (f"tests[{k!r}]", v) for k, v in o.tests.items()
    ]:
        if t not in known:
            raise InvalidInput(
                f"Unknown drift test {t!r} in {where}.", hint=f"Use one of {', '.join(sorted(known))}."
            )


def _adjust(results: list[ColumnDrift], o: Options) -> list[ColumnDrift]:
    """Adjust the p-values of the p-value tests together, then decide each column."""
    idx = [i for i, r in enumerate(results) if r.p_value is not None]
    if not idx:
        return results
    raw = np.array([results[i].p_value for i in idx], np.float64)
    adj = {"bh": stats.benjamini_hochberg, "bonferroni": stats.bonferroni}.get(o.correction, lambda p: p)(raw)
    out = list(results)
    for i, q in zip(idx, adj, strict=True):
        r = results[i]
        floor = o.min_effect if r.effect is not None else 0.0
        drifted = bool(q < r.threshold) and (r.effect is None or r.effect >= floor)
        out[i] = replace(r, p_value_adjusted=float(q), drifted=drifted)
    return out


def _size(n: int) -> str:
    return f"{n:,}"


def _choose(kind: str, name: str, o: Options) -> tuple[str, str]:
    requested = o.tests.get(name) or (o.numerical_test if kind == "numerical" else o.categorical_test)
    allowed = NUMERICAL_TESTS if kind == "numerical" else CATEGORICAL_TESTS
    if requested != "auto":
        if requested not in allowed:
            raise InvalidInput(
                f"Column {name!r} is {kind}: the {requested} test does not apply.",
                hint=f"For {kind} columns use one of {', '.join(allowed)}.",
            )
        return requested, "chosen by the caller"
    return ("ks", "auto") if kind == "numerical" else ("chisquare", "auto")


def _sample_size_reason(test: str, n1: int, n2: int, o: Options) -> str:
    crit = stats.ks_critical(o.alpha, n1, n2)
    what = "D" if test == "ks" else "the total variation distance"
    gap = "a significant D" if test == "ks" else "a significant shift"
    side = (
        "the p-value decides"
        if crit >= o.min_effect
        else f"the effect floor decides ({what} >= {o.min_effect:g})"
    )
    return f"{_size(n1)} vs {_size(n2)} rows: {gap} is about {crit:.3g} or more, so {side}"


def _column(
    ref: NumericProfile | CategoricalProfile, col: Any, col_type: Any, o: Options, forced: bool
) -> ColumnDrift:
    cur_kind = kind_of(col_type)
    if (ref.kind == "numerical" and cur_kind == "categorical") or (
        ref.kind == "categorical" and cur_kind == "numerical" and not forced
    ):
        raise InvalidInput(
            f"Column {ref.name!r} is {ref.kind} in the reference but {cur_kind} ({col_type}) "
            "in the current data.",
            hint="Cast it to the same type on both sides (or mark it categorical on both).",
        )
    if isinstance(ref, NumericProfile):
        return _numeric(ref, numeric_values(col), o)
    return _categorical(ref, col, o)


def _no_data(ref: Any, n_cur: int, kind: str, quality: Mapping[str, Any]) -> ColumnDrift | None:
    if ref.n > 0 and n_cur > 0:
        return None
    one_sided = (ref.n > 0) != (n_cur > 0)
    side = "current" if ref.n > 0 else "reference"
    reason = f"no values in the {side} data" if one_sided else "no values on either side"
    return ColumnDrift(
        ref.name,
        kind,
        "no_data",
        1.0 if one_sided else 0.0,
        None,
        1.0,
        one_sided,
        reason,
        ref.n,
        n_cur,
        quality=quality,
    )


def _numeric(ref: NumericProfile, cur: NumericValues, o: Options) -> ColumnDrift:
    x = cur.values
    quality: dict[str, Any] = {
        "missing_share_reference": ref.n_missing / ref.n_rows if ref.n_rows else 0.0,
        "missing_share": cur.n_missing / cur.n_rows if cur.n_rows else 0.0,
        "infinite": cur.n_infinite,
    }
    if ref.n and x.size:
        outside = np.searchsorted(x, ref.min, "left") + (x.size - np.searchsorted(x, ref.max, "right"))
        quality["out_of_range_share"] = float(outside / x.size)
        quality["mean"] = float(x.mean())
        quality["mean_reference"] = ref.mean
    if (empty := _no_data(ref, x.size, "numerical", quality)) is not None:
        return empty
    test, why = _choose("numerical", ref.name, o)
    cur_counts = binning.bin_counts(x, ref.edges)
    histogram = {
        "labels": binning.bin_labels(ref.edges),
        "reference": stats.proportions(ref.counts).tolist(),
        "current": stats.proportions(cur_counts).tolist(),
    }
    exact = True
    effect: float | None = None
    p: float | None = None
    if test == "ks":
        statistic, p = stats.ks(ref.sample, x, n_ref=ref.n)
        effect = statistic
        exact = ref.exact
        detail = _sample_size_reason("ks", ref.n, x.size, o)
        method = "two-sample Kolmogorov-Smirnov (distribution-free)"
    elif test == "wasserstein":
        w = stats.wasserstein(ref.sample, x)
        statistic = w / ref.std if ref.std > 0 else w
        exact = ref.exact
        scale = "the reference's standard deviation" if ref.std > 0 else "1 (the reference is constant)"
        detail = f"Wasserstein distance divided by {scale}"
        method = "Wasserstein distance"
    else:
        fn = stats.psi if test == "psi" else stats.jensen_shannon
        statistic = fn(ref.counts, cur_counts)
        detail = f"on {len(ref.counts)} quantile bins of the reference"
        method = "PSI" if test == "psi" else "Jensen-Shannon distance"
    why = f"numerical column: {method}; {detail}" if why == "auto" else f"{method}, {why}; {detail}"
    if not exact:
        bound = binning.sketch_error(ref.sample.size, ref.n)
        why += f" (reference sketch of {ref.sample.size:,} points: D within {bound:.1g})"
    threshold = o.thresholds.get(ref.name, o.alpha if test in P_VALUE_TESTS else DEFAULT_THRESHOLDS[test])
    drifted = p is None and statistic >= threshold
    return ColumnDrift(
        ref.name,
        "numerical",
        test,
        float(statistic),
        p,
        float(threshold),
        drifted,
        why,
        ref.n,
        x.size,
        effect,
        None,
        exact,
        quality,
        histogram,
    )


def _categorical(ref: CategoricalProfile, col: Any, o: Options) -> ColumnDrift:
    cats, counts, missing = category_counts(col)
    n_cur = int(counts.sum())
    index = {c: i for i, c in enumerate(ref.categories)}
    aligned = np.zeros(len(ref.categories), np.int64)
    unseen = 0
    new: list[str] = []
    for c, k in zip(cats, counts.tolist(), strict=True):
        i = index.get(c)
        if i is None:
            unseen += k
            if len(new) < 10:
                new.append(c)
        else:
            aligned[i] = k
    ref_counts, cur_counts, labels = ref.counts, aligned, list(ref.categories)
    if ref.other or unseen:  # values outside the kept categories: one pooled bucket
        ref_counts = np.append(ref_counts, ref.other)
        cur_counts = np.append(cur_counts, unseen)
        labels.append("(other)" if ref.other else "(new)")
    quality: dict[str, Any] = {
        "missing_share_reference": ref.n_missing / ref.n_rows if ref.n_rows else 0.0,
        "missing_share": missing / len(col) if len(col) else 0.0,
    }
    if not ref.other:  # only then is "not among the reference's categories" the same as new
        quality["new_categories"] = new
        quality["new_category_share"] = unseen / n_cur if n_cur else 0.0
    if (empty := _no_data(ref, n_cur, "categorical", quality)) is not None:
        return empty
    test, why = _choose("categorical", ref.name, o)
    top = np.argsort(-(stats.proportions(ref_counts) + stats.proportions(cur_counts)), kind="stable")[:20]
    histogram = {
        "labels": [labels[i] for i in top],
        "reference": stats.proportions(ref_counts)[top].tolist(),
        "current": stats.proportions(cur_counts)[top].tolist(),
    }
    effect: float | None = None
    p: float | None = None
    if test in ("chisquare", "g_test"):
        table = stats.pooled_table(ref_counts, cur_counts)
        statistic, p, dof = stats.chi2_test(table, g_test=test == "g_test")
        effect = stats.total_variation(ref_counts, cur_counts)
        method = "two-sample chi-square" if test == "chisquare" else "two-sample G-test"
        detail = f"{table.shape[1]} categories after pooling rare ones (dof {dof}); " + _sample_size_reason(
            test, ref.n, n_cur, o
        )
    else:
        fn = stats.psi if test == "psi" else stats.jensen_shannon
        statistic = fn(ref_counts, cur_counts)
        method = "PSI" if test == "psi" else "Jensen-Shannon distance"
        detail = f"over {len(labels)} categories"
    why = f"categorical column: {method}; {detail}" if why == "auto" else f"{method}, {why}; {detail}"
    threshold = o.thresholds.get(ref.name, o.alpha if test in P_VALUE_TESTS else DEFAULT_THRESHOLDS[test])
    drifted = p is None and statistic >= threshold
    return ColumnDrift(
        ref.name,
        "categorical",
        test,
        float(statistic),
        p,
        float(threshold),
        drifted,
        why,
        ref.n,
        n_cur,
        effect,
        None,
        True,
        quality,
        histogram,
    )
