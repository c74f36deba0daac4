"""Validation, side by side: 1,000,000 rows x 22 columns, 50 expectations of 10 kinds.

Loopline (``loopline.data.validation.validate`` on a polars frame) against Great Expectations 1.24
(its pandas datasource, ``result_format="SUMMARY"``) and pandera on polars (``DataFrameSchema``,
``validate(lazy=True)``). The data is seeded and written once as one Parquet file with known faults:
100 rows in duplicated ids, 60 in duplicated (order_id, line) keys, 200 ages out of range, 100
negative amounts, 150 unknown countries, 120 malformed e-mails, 80 four-digit zip codes, 2% null
incomes (allowed), and a temperature whose mean is off. The 50 expectations (``SPEC``):
column types (10), not-null (8, one with a 5% allowance), ranges (10), allowed sets (4), unique
columns (2), a compound key (1), regexes (3), string lengths (3), the row count (1), and mean/std/
median bounds (8).

Each system runs in fresh processes of its own interpreter (GX and pandera in
``.venv-bench-validation``: GX needs ``pandas<3``), three processes each (one with ``--quick``):

* **validate**: the suite/schema checked against the frame already in memory: the first call of
  the process (what a CI job pays); pandera and Loopline then run a second, warm call (GX's takes
  as long as its first, so it is skipped to spare the shared CPU);
* **read + build + validate**: reading the Parquet file into the system's own frame (pandas for
  GX, polars for pandera and Loopline) and building the suite, plus the first validation.

Every worker reports, per expectation, pass/fail and the failing-row count it found; the benchmark
checks all three against the faults it planted (``meta.agreement``). Loopline also lists every
failing row's index; GX's SUMMARY lists 20 per expectation, and ``COMPLETE`` (every index, timed
once in ``meta.gx_complete``) is slower still. The ratio table's peer column is GX; the pandera
row holds pandera's figure there.

Run alone: ``python -m benchmarks.validation [--quick]`` (``--quick``: 200,000 rows).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    ForeignLoad,
    Options,
    Report,
    Row,
    WorkerError,
    clean_env,
    log,
    module_main,
    peer_python,
    run_worker,
)

NAME = "validation"
TITLE = (
    "Validation: 1,000,000 rows x 22 columns, 50 expectations — Great Expectations, pandera-polars, loopline"
)
WORKLOADS = ("validate_1m",)
GX_VERSION = "1.24.1"

Params = dict[str, Any]
Spec = tuple[str, str, dict[str, Any]]  # (label, kind, arguments)

STRINGS = ("country", "status", "channel", "segment", "email", "zip", "phone", "name")
COUNTRIES = ["DE", "FR", "US", "GB", "IT", "ES", "NL", "SE", "PL", "JP"]
STATUSES = ["new", "paid", "shipped", "returned", "cancelled"]
CHANNELS = ["web", "app", "store"]
SEGMENTS = ["a", "b", "c", "d"]
EMAIL = r"^[a-z0-9.]+@[a-z0-9]+\.[a-z]+$"


def spec(rows: int) -> list[Spec]:
    """The 50 expectations, in one neutral form each system translates."""
    types = {
        "id": "int64",
        "order_id": "int64",
        "line": "int64",
        "age": "int64",
        "income": "float64",
        "score": "float64",
        "amount": "float64",
        "country": "string",
        "email": "string",
        "is_active": "bool",
    }
    out: list[Spec] = [(f"type({c})", "type", {"column": c, "type": t}) for c, t in types.items()]
    for c in ("id", "order_id", "line", "age", "country", "email", "created"):
        out.append((f"not_null({c})", "not_null", {"column": c, "max_share": 0.0}))
    out.append(("not_null(income)", "not_null", {"column": "income", "max_share": 0.05}))
    ranges = {
        "customer_id": (1, 100_000),
        "age": (0, 120),
        "income": (0, 1e7),
        "score": (0, 1),
        "amount": (0, 1e6),
        "price": (1, 500),
        "discount": (0, 0.5),
        "weight": (0, 300),
        "temp": (-50, 60),
        "line": (0, 3),
    }
    out += [
        (f"between({c})", "between", {"column": c, "min": lo, "max": hi}) for c, (lo, hi) in ranges.items()
    ]
    sets = {"country": COUNTRIES, "status": STATUSES, "channel": CHANNELS, "segment": SEGMENTS}
    out += [(f"in_set({c})", "in_set", {"column": c, "values": v}) for c, v in sets.items()]
    out += [(f"unique({c})", "unique", {"column": c}) for c in ("id", "email")]
    out.append(("unique(order_id, line)", "compound_unique", {"columns": ["order_id", "line"]}))
    regexes = {"email": EMAIL, "zip": r"^[0-9]{5}$", "phone": r"^\+[0-9]{11,13}$"}
    out += [(f"matches({c})", "matches", {"column": c, "pattern": p}) for c, p in regexes.items()]
    lengths = {"zip": (5, 5), "phone": (12, 16), "name": (1, 50)}
    out += [
        (f"length({c})", "length", {"column": c, "min": lo, "max": hi}) for c, (lo, hi) in lengths.items()
    ]
    out.append(("row_count", "row_count", {"min": int(rows * 0.9), "max": int(rows * 1.1)}))
    stats = [
        ("mean", "score", 0.45, 0.55),
        ("mean", "amount", 90, 110),
        ("mean", "temp", 0, 10),
        ("std", "score", 0.25, 0.33),
        ("std", "weight", 10, 20),
    ]
    out += [(f"{k}({c})", k, {"column": c, "min": lo, "max": hi}) for k, c, lo, hi in stats]
    for c, lo, hi in (("score", 0.45, 0.55), ("weight", 65, 75), ("income", 25_000, 35_000)):
        out.append((f"median({c})", "median", {"column": c, "min": lo, "max": hi}))
    return out


def expected_failures(rows: int) -> dict[str, int]:
    """The failing-row count each row-level expectation must report (every other: 0)."""
    return {
        "unique(id)": 100,
        "unique(order_id, line)": 60,
        "between(age)": 200,
        "between(amount)": 100,
        "in_set(country)": 150,
        "matches(email)": 120,
        "matches(zip)": 80,
        "length(zip)": 80,
        "not_null(income)": rows // 50,
    }


EXPECTED_FAILED = {
    "unique(id)",
    "unique(order_id, line)",
    "between(age)",
    "between(amount)",
    "in_set(country)",
    "matches(email)",
    "matches(zip)",
    "length(zip)",
    "mean(temp)",
}


def make_data(path: Path, rows: int, seed: int = 11) -> None:
    """Write the 22-column table with the planted faults to ``path``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n = rows
    idx = np.arange(n)
    spots = rng.choice(np.arange(8, n - 8, 8), 50 + 30 + 200 + 100 + 150 + 120 + 80, replace=False)
    parts = np.split(spots, np.cumsum([50, 30, 200, 100, 150, 120]))
    dup_id, dup_key, bad_age, neg_amount, bad_country, bad_email, short_zip = parts
    ids = idx.copy()
    ids[dup_id] = ids[dup_id - 1]  # 50 pairs: 100 rows
    order_id, line = idx // 4, idx % 4
    line[dup_key + 2] = line[dup_key + 1]  # 30 pairs within one order: 60 rows
    age = rng.integers(18, 91, n)
    age[bad_age] = np.where(rng.random(len(bad_age)) < 0.5, -1, 150)
    income = rng.lognormal(0, 0.5, n) * 30_000
    income_mask = np.zeros(n, bool)
    income_mask[rng.choice(n, n // 50, replace=False)] = True  # 2% null
    amount = rng.exponential(100, n)
    amount[neg_amount] = -amount[neg_amount] - 1
    country = np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n)]
    country[bad_country] = "XX"
    email = np.char.add(np.char.add("user", idx.astype(str)), "@example.com")
    email[bad_email] = np.char.add(np.char.add("user", bad_email.astype(str)), ".example.com")
    zips = np.char.zfill(rng.integers(0, 100_000, n).astype(str), 5)
    zips[short_zip] = np.char.zfill(rng.integers(0, 10_000, len(short_zip)).astype(str), 4)
    price = rng.uniform(1, 500, n)
    table = pa.table(
        {
            "id": ids,
            "order_id": order_id,
            "line": line,
            "customer_id": rng.integers(1, 100_001, n),
            "age": age,
            "income": pa.array(income, mask=income_mask),
            "score": rng.uniform(0, 1, n),
            "amount": amount,
            "price": price,
            "discount": rng.uniform(0, 0.5, n),
            "weight": rng.normal(70, 15, n).clip(1, 250),
            "temp": rng.normal(20, 5, n),
            "country": country,
            "status": np.array(STATUSES)[rng.integers(0, 5, n)],
            "channel": np.array(CHANNELS)[rng.integers(0, 3, n)],
            "segment": np.array(SEGMENTS)[rng.integers(0, 4, n)],
            "email": email,
            "zip": zips,
            "phone": np.char.add("+49", np.char.zfill(rng.integers(0, 10**10, n).astype(str), 10)),
            "name": np.char.add("name", (idx % 5000).astype(str)),
            "created": pa.array(
                np.datetime64("2024-01-01", "us") + rng.integers(0, 10**13, n).astype("timedelta64[us]")
            ),
            "is_active": rng.random(n) < 0.7,
        }
    )
    pq.write_table(table, path)


# ==== workers: each in a fresh interpreter ========================================================


def _timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def loopline_suite(specs: list[Spec]) -> Any:
    from loopline.data.validation import Suite, expect

    exps = []
    for label, kind, a in specs:
        c = a.get("column")
        if kind == "type":
            exps.append(
                expect.column_exists(c, type={"float64": "double"}.get(a["type"], a["type"]), name=label)
            )
        elif kind == "not_null":
            exps.append(expect.not_null(c, max_share=a["max_share"], name=label))
        elif kind == "between":
            exps.append(expect.between(c, a["min"], a["max"], name=label))
        elif kind == "in_set":
            exps.append(expect.in_set(c, a["values"], name=label))
        elif kind == "unique":
            exps.append(expect.unique(c, name=label))
        elif kind == "compound_unique":
            exps.append(expect.unique(columns=a["columns"], name=label))
        elif kind == "matches":
            exps.append(expect.matches(c, a["pattern"], name=label))
        elif kind == "length":
            exps.append(expect.length(c, a["min"], a["max"], name=label))
        elif kind == "row_count":
            exps.append(expect.row_count(a["min"], a["max"], name=label))
        elif kind in ("mean", "std"):
            exps.append(getattr(expect, kind)(c, a["min"], a["max"], name=label))
        elif kind == "median":
            exps.append(expect.quantile(c, 0.5, a["min"], a["max"], name=label))
    return Suite("bench", exps)


def loopline_validate(p: Params) -> dict[str, Any]:
    t0 = time.perf_counter()
    import polars as pl

    from loopline._version import __version__
    from loopline.data.validation import validate

    t1 = time.perf_counter()
    df, read_s = _timed(lambda: pl.read_parquet(p["path"]))
    suite, build_s = _timed(lambda: loopline_suite(spec(p["rows"])))
    result, first_s = _timed(lambda: validate(df, suite))
    _, warm_s = _timed(lambda: validate(df, suite))
    indices = sum(len(r.failing_rows) for r in result.results if r.failing_rows is not None)
    return {
        "import_s": t1 - t0,
        "read_s": read_s,
        "build_s": build_s,
        "validate_s": first_s,
        "warm_s": warm_s,
        "outcomes": {r.label: [bool(r.success), r.unexpected_count] for r in result.results},
        "indices_listed": indices,
        "versions": {"loopline": __version__, "polars": pl.__version__},
    }


def _gx_expectation(gxe: Any, label: str, kind: str, a: dict[str, Any]) -> Any:
    c, meta = a.get("column"), {"label": label}
    if kind == "type":
        gx_type = {"string": "object"}.get(a["type"], a["type"])
        return gxe.ExpectColumnValuesToBeOfType(column=c, type_=gx_type, meta=meta)
    if kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=1.0 - a["max_share"], meta=meta)
    if kind == "between":
        return gxe.ExpectColumnValuesToBeBetween(column=c, min_value=a["min"], max_value=a["max"], meta=meta)
    if kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=c, value_set=a["values"], meta=meta)
    if kind == "unique":
        return gxe.ExpectColumnValuesToBeUnique(column=c, meta=meta)
    if kind == "compound_unique":
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=a["columns"], meta=meta)
    if kind == "matches":
        return gxe.ExpectColumnValuesToMatchRegex(column=c, regex=a["pattern"], meta=meta)
    if kind == "length":
        return gxe.ExpectColumnValueLengthsToBeBetween(
            column=c, min_value=a["min"], max_value=a["max"], meta=meta
        )
    if kind == "row_count":
        return gxe.ExpectTableRowCountToBeBetween(min_value=a["min"], max_value=a["max"], meta=meta)
    if kind == "mean":
        return gxe.ExpectColumnMeanToBeBetween(column=c, min_value=a["min"], max_value=a["max"], meta=meta)
    if kind == "std":
        return gxe.ExpectColumnStdevToBeBetween(column=c, min_value=a["min"], max_value=a["max"], meta=meta)
    return gxe.ExpectColumnMedianToBeBetween(column=c, min_value=a["min"], max_value=a["max"], meta=meta)


def gx_validate(p: Params) -> dict[str, Any]:
    t0 = time.perf_counter()
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    t1 = time.perf_counter()
    df, read_s = _timed(lambda: pd.read_parquet(p["path"]))

    def build() -> tuple[Any, Any]:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False}
        batch_def = (
            context.data_sources.add_pandas("bench")
            .add_dataframe_asset("t")
            .add_batch_definition_whole_dataframe("all")
        )
        suite = context.suites.add(gx.ExpectationSuite(name="bench"))
        for label, kind, a in spec(p["rows"]):
            suite.add_expectation(_gx_expectation(gxe, label, kind, a))
        return batch_def.get_batch(batch_parameters={"dataframe": df}), suite

    (batch, suite), build_s = _timed(build)
    fmt = p.get("result_format", "SUMMARY")
    result, first_s = _timed(lambda: batch.validate(suite, result_format=fmt))
    warm_s = None
    if p.get("warm", False):  # a second GX run takes as long again, and is not what a CI job pays
        _, warm_s = _timed(lambda: batch.validate(suite, result_format=fmt))
    outcomes = {}
    indices = 0
    for r in result.results:
        res = r.result or {}
        outcomes[r.expectation_config.meta["label"]] = [bool(r.success), res.get("unexpected_count")]
        indices += len(res.get("unexpected_index_list") or res.get("partial_unexpected_index_list") or [])
    return {
        "import_s": t1 - t0,
        "read_s": read_s,
        "build_s": build_s,
        "validate_s": first_s,
        "warm_s": warm_s,
        "outcomes": outcomes,
        "indices_listed": indices,
        "versions": {"great_expectations": gx.__version__, "pandas": pd.__version__},
    }


def _pandera_schema(pa: Any, pl: Any, specs: list[Spec]) -> Any:
    """Column checks per column; the compound key, row count and statistics at frame level."""
    dtypes = {"int64": pl.Int64, "float64": pl.Float64, "string": pl.String, "bool": pl.Boolean}
    by_col: dict[str, dict[str, Any]] = {}
    frame_checks, unique_together = [], None

    def col(c: str) -> dict[str, Any]:
        return by_col.setdefault(c, {"dtype": None, "checks": [], "nullable": True, "unique": False})

    def stat(fn: Any, c: str, lo: float, hi: float, label: str) -> Any:
        return pa.Check(lambda d: d.lazyframe.select(fn(pl.col(c)).is_between(lo, hi)), name=label)

    for label, kind, a in specs:
        c = a.get("column")
        if kind == "type":
            col(c)["dtype"] = dtypes[a["type"]]
        elif kind == "not_null" and a["max_share"] == 0:
            col(c)["nullable"] = False
        elif kind == "not_null":
            share = a["max_share"]
            col(c)["checks"].append(
                pa.Check(
                    lambda d, share=share: d.lazyframe.select(pl.col(d.key).null_count() / pl.len() <= share),
                    name=label,
                )
            )
        elif kind == "between":
            col(c)["checks"].append(pa.Check.in_range(a["min"], a["max"], name=label))
        elif kind == "in_set":
            col(c)["checks"].append(pa.Check.isin(a["values"], name=label))
        elif kind == "unique":
            col(c)["unique"] = True
        elif kind == "compound_unique":
            unique_together = a["columns"]
        elif kind == "matches":
            col(c)["checks"].append(pa.Check.str_matches(a["pattern"], name=label))
        elif kind == "length":
            col(c)["checks"].append(pa.Check.str_length(a["min"], a["max"], name=label))
        elif kind == "row_count":
            lo, hi = a["min"], a["max"]
            frame_checks.append(
                pa.Check(lambda d, lo=lo, hi=hi: d.lazyframe.select(pl.len().is_between(lo, hi)), name=label)
            )
        else:
            fn = {"mean": lambda x: x.mean(), "std": lambda x: x.std(), "median": lambda x: x.median()}[kind]
            frame_checks.append(stat(fn, c, a["min"], a["max"], label))
    columns = {
        c: pa.Column(v["dtype"], checks=v["checks"], nullable=v["nullable"], unique=v["unique"])
        for c, v in by_col.items()
    }
    return pa.DataFrameSchema(columns, checks=frame_checks, unique=unique_together)


def _pandera_label(column: Any, check: str, specs: list[Spec]) -> str | None:
    labels = {label for label, _, _ in specs}
    if check in labels:
        return check
    if check == "not_nullable":
        return f"not_null({column})"
    if check == "field_uniqueness":
        return f"unique({column})"
    if check == "multiple_fields_uniqueness":
        return "unique(order_id, line)"
    if check.startswith("dtype"):
        return f"type({column})"
    builtin = {"in_range": "between", "isin": "in_set", "str_length": "length", "str_matches": "matches"}
    kind = builtin.get(check.split("(", 1)[0])
    return f"{kind}({column})" if kind else None


def pandera_validate(p: Params) -> dict[str, Any]:
    t0 = time.perf_counter()
    import pandera
    import pandera.polars as pa
    import polars as pl

    t1 = time.perf_counter()
    specs = spec(p["rows"])
    df, read_s = _timed(lambda: pl.read_parquet(p["path"]))
    schema, build_s = _timed(lambda: _pandera_schema(pa, pl, specs))

    def check() -> Any:
        try:
            schema.validate(df, lazy=True)
        except pa.errors.SchemaErrors as e:
            return e.failure_cases
        return None

    cases, first_s = _timed(check)
    _, warm_s = _timed(check)
    outcomes = {label: [True, 0] for label, _, _ in specs}
    indices = 0
    if cases is not None:
        for row in cases.group_by(["column", "check"]).agg(pl.len(), pl.col("index").count()).iter_rows():
            column, name, n, with_index = row
            label = _pandera_label(column, str(name), specs) or f"?{column}:{name}"
            outcomes[label] = [False, int(n)]
            indices += int(with_index)
    return {
        "import_s": t1 - t0,
        "read_s": read_s,
        "build_s": build_s,
        "validate_s": first_s,
        "warm_s": warm_s,
        "outcomes": outcomes,
        "indices_listed": indices,
        "versions": {"pandera": pandera.__version__, "polars": pl.__version__},
    }


WORKERS = {
    "loopline_validate": loopline_validate,
    "gx_validate": gx_validate,
    "pandera_validate": pandera_validate,
}


# ==== the benchmark ===============================================================================

SYSTEMS = {"gx": "gx_validate", "pandera": "pandera_validate", "loopline": "loopline_validate"}


def agreement(outcomes: dict[str, list[Any]], rows: int) -> dict[str, Any]:
    """Whether a system failed exactly the planted faults, with the planted failing-row counts."""
    failed = {label for label, (ok, _) in outcomes.items() if not ok}
    counts = expected_failures(rows)
    wrong = {
        label: outcomes.get(label, [None, None])[1]
        for label in EXPECTED_FAILED & set(counts)
        if outcomes.get(label, [None, None])[1] != counts[label]
    }
    return {
        "ok": failed == EXPECTED_FAILED and not wrong,
        "missed": sorted(EXPECTED_FAILED - failed),
        "extra": sorted(failed - EXPECTED_FAILED),
        "wrong_counts": wrong,
    }


def run(opts: Options) -> Report:
    report = Report(NAME, TITLE, peer_name=f"great-expectations {GX_VERSION}")
    if not opts.wants("validate_1m"):
        return report
    rows = 200_000 if opts.quick else 1_000_000
    processes = 1 if opts.quick else 3
    env = clean_env({"GX_ANALYTICS_ENABLED": "false"})
    samples: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
    errors: dict[str, str] = {}
    noise: dict[str, float] = {}
    gx_complete: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        path = Path(tmp) / "data.parquet"
        log(f"validation: writing {rows:,} x 22 Parquet file")
        make_data(path, rows)
        params = {"path": str(path), "rows": rows}
        for system, worker in SYSTEMS.items():
            python = None if system == "loopline" else peer_python(NAME)
            with ForeignLoad() as load:
                for i in range(processes):
                    log(f"validation: {system} process {i + 1}/{processes}")
                    try:
                        samples[system].append(
                            run_worker(NAME, worker, params, env, timeout=1800, python=python)
                        )
                    except (WorkerError, SystemExit) as e:
                        errors[system] = str(e)[:300]
                        log(f"validation: {system} failed: {e}")
                        break
            noise[system] = round(load.cores, 2)
        if not opts.quick and "gx" not in errors:
            log("validation: gx with result_format=COMPLETE (every failing index), one process")
            try:
                gx_complete = run_worker(
                    NAME,
                    "gx_validate",
                    {**params, "result_format": "COMPLETE"},
                    env,
                    timeout=1800,
                    python=peer_python(NAME),
                )
            except (WorkerError, SystemExit) as e:
                errors["gx_complete"] = str(e)[:300]

    def fig(system: str, key: str) -> float | None:
        values = [s[key] for s in samples[system] if s.get(key) is not None]
        if not values:
            return None
        return statistics.median(values)

    def total(system: str) -> float | None:
        values = [s["read_s"] + s["build_s"] + s["validate_s"] for s in samples[system]]
        return statistics.median(values) if values else None

    err_gx = errors.get("gx") or errors.get("loopline")
    err_pa = errors.get("pandera") or errors.get("loopline")
    note = f"{rows:,} rows x 22 cols, 50 expectations; median of {processes} fresh processes"
    report.rows = [
        Row(
            "validate_1m.validate",
            "validate, first call in a fresh process",
            "s",
            fig("gx", "validate_s"),
            fig("loopline", "validate_s"),
            False,
            goal_ratio=10.0,
            note=note,
            error=err_gx,
        ),
        Row(
            "validate_1m.validate_pandera",
            "  vs pandera-polars (peer column: pandera)",
            "s",
            fig("pandera", "validate_s"),
            fig("loopline", "validate_s"),
            False,
            goal_ratio=1.0,
            note="lazy=True: every failure case, with its row index",
            error=err_pa,
        ),
        Row(
            "validate_1m.warm_pandera",
            "validate, second call: pandera-polars (peer column) vs loopline",
            "s",
            fig("pandera", "warm_s"),
            fig("loopline", "warm_s"),
            False,
            error=err_pa,
        ),
        Row(
            "validate_1m.end_to_end",
            "read Parquet + build suite + validate",
            "s",
            total("gx"),
            total("loopline"),
            False,
            note="GX reads into pandas; pandera and loopline into polars",
            error=err_gx,
        ),
        Row(
            "validate_1m.end_to_end_pandera",
            "  vs pandera-polars (peer column: pandera)",
            "s",
            total("pandera"),
            total("loopline"),
            False,
            error=err_pa,
        ),
        Row(
            "validate_1m.indices",
            "failing-row indices reported",
            "rows",
            fig("gx", "indices_listed"),
            fig("loopline", "indices_listed"),
            True,
            note="GX SUMMARY lists 20 per expectation; loopline every one",
            error=err_gx,
        ),
    ]
    first = {s: v[0] for s, v in samples.items() if v}
    report.meta = {
        "rows": rows,
        "processes": processes,
        "agreement": {s: agreement(v["outcomes"], rows) for s, v in first.items()},
        "planted_failures": expected_failures(rows),
        "outcomes": {s: v["outcomes"] for s, v in first.items()},
        "samples": {
            s: [{k: x[k] for k in ("import_s", "read_s", "build_s", "validate_s", "warm_s")} for x in v]
            for s, v in samples.items()
        },
        "versions": {s: v.get("versions") for s, v in first.items()},
        "gx_complete": {k: gx_complete[k] for k in ("validate_s", "indices_listed")} if gx_complete else None,
        "foreign_cpu_cores": noise,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "errors": errors,
    }
    for system, a in report.meta["agreement"].items():
        if not a["ok"]:
            log(f"validation: {system} disagrees with the planted faults: {a}")
    return report


if __name__ == "__main__":
    module_main(run, WORKERS, sys.argv[1:])
