"""Data validation in five steps: profile a reference, infer a suite, edit it, validate new data, report.

    python examples/validation_quickstart.py

Runs in a few seconds on generated data and writes, in the current folder: suite.yaml (the edited
suite), result.json (every failing row) and report.html (a self-contained report). The same from
the shell:

    loopline data validate new.parquet --infer-from reference.parquet --write-suite suite.yaml
    loopline data validate new.parquet --suite suite.yaml --json-out result.json --html report.html
"""

from __future__ import annotations

import numpy as np
import polars as pl

from loopline.data.profile import diff_profiles, profile_table
from loopline.data.validation import Suite, expect, infer_suite, render_html, validate


def orders(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "order_id": np.arange(n),
            "customer": [f"C{i:05d}" for i in rng.integers(0, 5000, n)],
            "country": rng.choice(["DE", "FR", "IT", "ES"], n),
            "amount": rng.exponential(80, n).round(2),
            "email": [f"user{i}@example.com" for i in range(n)],
        }
    )


def main() -> None:
    reference = orders(10_000, seed=1)

    # 1. Profile the reference: types, nulls, ranges, quantiles, top categories, distinct counts.
    profile = profile_table(reference)
    amount = profile.columns["amount"]
    p99 = (amount.quantiles or {})["p99"]
    print(f"profiled {profile.num_rows:,} rows: amount mean {amount.mean:.1f}, p99 {p99:.1f}")

    # 2. Infer a suite the reference passes, then 3. edit it: a regex and a business rule of our own.
    suite = infer_suite(profile, name="orders").add(
        expect.matches("email", r"^[^@\s]+@[^@\s]+\.[a-z]+$"),
        expect.custom("amount_positive", sql="amount > 0", severity="warning"),
    )
    suite.to_yaml("suite.yaml")
    suite = Suite.from_yaml("suite.yaml")
    passes = validate(reference, suite).success
    print(f"suite.yaml: {len(suite.expectations)} expectations; the reference passes: {passes}")

    # 4. Validate a new batch with problems: a duplicated order, an unknown country, a bad e-mail.
    new = orders(10_000, seed=2).with_columns(
        pl.when(pl.col("order_id") == 42).then(41).otherwise(pl.col("order_id")).alias("order_id"),
        pl.when(pl.col("order_id") == 7).then(pl.lit("XX")).otherwise(pl.col("country")).alias("country"),
        pl.when(pl.col("order_id") == 9).then(pl.lit("nobody")).otherwise(pl.col("email")).alias("email"),
    )
    result = validate(new, suite, label="orders batch 2")
    for r in result.failed:
        rows = r.failing_rows.tolist() if r.failing_rows is not None else []
        print(f"FAILED {r.label}: {r.unexpected_count} rows {rows[:5]}, observed {r.observed}")
    passed = result.statistics()["successful"]
    print(f"{passed} of {len(result.results)} checks passed; success={result.success}")

    # 5. Reports: JSON with every failing row, a self-contained HTML page; and what changed.
    result.to_json("result.json")
    render_html(result, "report.html")
    shifted = [c for c, d in diff_profiles(profile, profile_table(new))["columns"].items() if d["shifted"]]
    print(f"wrote result.json and report.html; columns whose profile shifted: {shifted or 'none'}")


if __name__ == "__main__":
    main()
