"""Validation results: per expectation, GX-style summary counts and every failing row's index.

``ValidationResult.to_dict()`` is the stable JSON form (``"schema": "loopline.validation/1"``)::

    {
      "schema": "loopline.validation/1",
      "suite": "customers", "target": "datasets:/customers/3", "success": false,
      "num_rows": 1000, "created_at": "2025-01-01T12:00:00+00:00", "duration_seconds": 0.04,
      "statistics": {"evaluated": 12, "successful": 11, "unsuccessful": 1, "warnings": 0,
                     "success_percent": 91.7},
      "results": [
        {"label": "between(age)", "expect": "between", "columns": ["age"], "severity": "error",
         "expectation": {"expect": "between", "column": "age", "min": 0, "max": 120},
         "description": "0 ≤ value ≤ 120", "success": false, "observed": {"min": -3, "max": 130},
         "summary": {"element_count": 1000, "missing_count": 10, "missing_percent": 1.0,
                     "unexpected_count": 2, "unexpected_percent": 0.202,
                     "unexpected_percent_total": 0.2, "unexpected_percent_nonmissing": 0.202},
         "failing_rows": [17, 512], "failing_rows_truncated": false,
         "failing_sample": [{"_row": 17, "age": -3}, {"_row": 512, "age": 130}],
         "error": null}
      ]
    }

``summary`` is null for table-level checks (column_exists, row_count, mean, std, quantile);
``unexpected_percent`` is of the non-missing values, as in Great Expectations; ``failing_rows``
are 0-based row positions in the validated table, all of them unless ``max_rows`` cut the list
(``failing_rows_truncated``); ``error`` says why a check could not run (its column is missing,
a custom check raised).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.data.profile import iso

if TYPE_CHECKING:
    import numpy as np

SCHEMA = "loopline.validation/1"


def _pct(part: int | None, whole: int | None) -> float | None:
    if part is None or whole is None:
        return None
    return 100.0 * part / whole if whole else 0.0


def json_safe(value: Any) -> Any:
    """Values as JSON holds them: datetimes as ISO strings, NaN/inf as strings, tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    v = iso(value)
    return v if isinstance(v, str | int | float) else str(v)


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one expectation."""

    expectation: Any
    label: str
    success: bool
    observed: Any = None
    element_count: int | None = None  # rows looked at (None: a table-level check)
    missing_count: int | None = None
    unexpected_count: int | None = None
    failing_rows: np.ndarray | None = None  # 0-based row positions, ascending
    failing_sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def severity(self) -> str:
        return str(self.expectation.severity)

    @property
    def passed_or_warning(self) -> bool:
        return self.success or self.severity == "warning"

    @property
    def unexpected_percent(self) -> float | None:
        """Of the non-missing values (GX's ``unexpected_percent``)."""
        if self.element_count is None or self.unexpected_count is None:
            return None
        return _pct(self.unexpected_count, self.element_count - (self.missing_count or 0))

    def summary(self) -> dict[str, Any] | None:
        """GX's summary counts, or None for a table-level check."""
        if self.element_count is None:
            return None
        n, missing, bad = self.element_count, self.missing_count or 0, self.unexpected_count or 0
        return {
            "element_count": n,
            "missing_count": missing,
            "missing_percent": _pct(missing, n),
            "unexpected_count": bad,
            "unexpected_percent": self.unexpected_percent,
            "unexpected_percent_total": _pct(bad, n),
            "unexpected_percent_nonmissing": self.unexpected_percent,
        }

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        rows = self.failing_rows
        listed = [] if rows is None else (rows if max_rows is None else rows[:max_rows]).tolist()
        return {
            "label": self.label,
            "expect": self.expectation.kind,
            "columns": list(self.expectation.columns()),
            "severity": self.severity,
            "expectation": json_safe(self.expectation.to_dict()),
            "description": self.expectation.describe(),
            "success": self.success,
            "observed": json_safe(self.observed),
            "summary": self.summary(),
            "failing_rows": listed,
            "failing_rows_truncated": rows is not None and len(listed) < len(rows),
            "failing_sample": json_safe(self.failing_sample),
            "error": self.error,
        }


@dataclass(frozen=True)
class ValidationResult:
    """All expectations of a suite checked against one table."""

    suite: str
    target: str
    num_rows: int
    results: list[ExpectationResult]
    created_at: str
    duration_seconds: float
    uri: str | None = None  # the dataset version validated, when it was one

    @property
    def success(self) -> bool:
        """True when every expectation of severity ``error`` passed."""
        return all(r.passed_or_warning for r in self.results)

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]

    def statistics(self) -> dict[str, Any]:
        ok = sum(r.success for r in self.results)
        warnings = sum(not r.success and r.severity == "warning" for r in self.results)
        n = len(self.results)
        return {
            "evaluated": n,
            "successful": ok,
            "unsuccessful": n - ok,
            "warnings": warnings,
            "success_percent": 100.0 * ok / n if n else 100.0,
        }

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        """The stable JSON form (see the module docstring); ``max_rows`` caps each failing-row list."""
        return {
            "schema": SCHEMA,
            "suite": self.suite,
            "target": self.target,
            "uri": self.uri,
            "success": self.success,
            "num_rows": self.num_rows,
            "created_at": self.created_at,
            "duration_seconds": round(self.duration_seconds, 6),
            "statistics": self.statistics(),
            "results": [r.to_dict(max_rows) for r in self.results],
        }

    def to_json(self, path: str | Path | None = None, *, max_rows: int | None = None) -> str:
        """The result as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(max_rows), ensure_ascii=False, allow_nan=False, indent=1)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text
