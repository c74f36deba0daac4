"""Data validation: expectation suites in Python or YAML, checked by a vectorised polars engine.

    from loopline.data.validation import Suite, expect, render_html, validate

    suite = Suite("customers", [expect.unique("id"), expect.between("age", 0, 120)])
    result = validate("customers.parquet", suite)        # or a DataFrame, or datasets:/customers@prod
    result.success, result.failed[0].failing_rows         # every failing row's index
    render_html(result, "report.html")

``infer_suite(profile)`` writes an editable suite from a reference dataset's profile; results
serialise to a stable JSON form and a self-contained HTML report. See docs/data-validation.md.
"""

from loopline.data.validation import expect
from loopline.data.validation.engine import type_matches, validate
from loopline.data.validation.infer import infer_suite
from loopline.data.validation.report import render_html
from loopline.data.validation.result import ExpectationResult, ValidationResult
from loopline.data.validation.suite import KINDS, Expectation, Suite

__all__ = [
    "KINDS",
    "Expectation",
    "ExpectationResult",
    "Suite",
    "ValidationResult",
    "expect",
    "infer_suite",
    "render_html",
    "type_matches",
    "validate",
]
