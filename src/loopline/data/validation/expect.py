"""``expect.*``: one function per expectation kind, named as the YAML ``expect:`` key.

    from loopline.data.validation import expect

    expect.not_null("email", max_share=0.01)
    expect.unique(columns=["order_id", "line"])
    expect.custom("margin", sql="price >= cost")

Each returns a frozen expectation; invalid arguments raise ``InvalidInput`` right away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from loopline.data.validation import suite as s

Severity = Literal["error", "warning"]
Bound = int | float | str | None


def column_exists(
    column: str, *, type: str | None = None, name: str | None = None, severity: Severity = "error"
) -> s.ColumnExists:
    """``column`` is present (and has ``type``: an Arrow type string or a family such as ``integer``)."""
    return s._make(s.ColumnExists, column=column, type=type, name=name, severity=severity)


def not_null(
    column: str, *, max_share: float = 0.0, name: str | None = None, severity: Severity = "error"
) -> s.NotNull:
    """At most ``max_share`` of ``column`` is null or NaN (none by default)."""
    return s._make(s.NotNull, column=column, max_share=max_share, name=name, severity=severity)


def between(
    column: str,
    min: Bound = None,
    max: Bound = None,
    *,
    strict_min: bool = False,
    strict_max: bool = False,
    mostly: float = 1.0,
    name: str | None = None,
    severity: Severity = "error",
) -> s.Between:
    """Values of ``column`` lie in ``[min, max]`` (``strict_*``: open at that end)."""
    return s._make(
        s.Between,
        column=column,
        min=min,
        max=max,
        strict_min=strict_min,
        strict_max=strict_max,
        mostly=mostly,
        name=name,
        severity=severity,
    )


def in_set(
    column: str,
    values: Iterable[Any],
    *,
    mostly: float = 1.0,
    name: str | None = None,
    severity: Severity = "error",
) -> s.InSet:
    """Values of ``column`` are among ``values``."""
    return s._make(s.InSet, column=column, values=list(values), mostly=mostly, name=name, severity=severity)


def unique(
    column: str | None = None,
    *,
    columns: Sequence[str] | None = None,
    mostly: float = 1.0,
    name: str | None = None,
    severity: Severity = "error",
) -> s.Unique:
    """No value of ``column`` (or combination of ``columns``) repeats."""
    cols = list(columns) if columns is not None else None
    return s._make(s.Unique, column=column, columns=cols, mostly=mostly, name=name, severity=severity)


def matches(
    column: str, pattern: str, *, mostly: float = 1.0, name: str | None = None, severity: Severity = "error"
) -> s.Matches:
    """Values of ``column`` contain a match of ``pattern`` (anchor it with ``^…$`` for a full match)."""
    return s._make(s.Matches, column=column, pattern=pattern, mostly=mostly, name=name, severity=severity)


def length(
    column: str,
    min: int | None = None,
    max: int | None = None,
    *,
    mostly: float = 1.0,
    name: str | None = None,
    severity: Severity = "error",
) -> s.Length:
    """String lengths of ``column`` lie in ``[min, max]``."""
    return s._make(s.Length, column=column, min=min, max=max, mostly=mostly, name=name, severity=severity)


def row_count(
    min: int | None = None, max: int | None = None, *, name: str | None = None, severity: Severity = "error"
) -> s.RowCount:
    """The table has between ``min`` and ``max`` rows."""
    return s._make(s.RowCount, min=min, max=max, name=name, severity=severity)


def mean(
    column: str,
    min: float | None = None,
    max: float | None = None,
    *,
    name: str | None = None,
    severity: Severity = "error",
) -> s.Mean:
    """The mean of ``column`` lies in ``[min, max]``."""
    return s._make(s.Mean, column=column, min=min, max=max, name=name, severity=severity)


def std(
    column: str,
    min: float | None = None,
    max: float | None = None,
    *,
    name: str | None = None,
    severity: Severity = "error",
) -> s.Std:
    """The standard deviation of ``column`` lies in ``[min, max]``."""
    return s._make(s.Std, column=column, min=min, max=max, name=name, severity=severity)


def quantile(
    column: str,
    q: float,
    min: float | None = None,
    max: float | None = None,
    *,
    name: str | None = None,
    severity: Severity = "error",
) -> s.Quantile:
    """The ``q``-quantile of ``column`` lies in ``[min, max]``."""
    return s._make(s.Quantile, column=column, q=q, min=min, max=max, name=name, severity=severity)


def references(
    column: str,
    dataset: str,
    dataset_column: str | None = None,
    *,
    mostly: float = 1.0,
    name: str | None = None,
    severity: Severity = "error",
) -> s.References:
    """Every value of ``column`` is found in ``dataset_column`` of ``dataset`` (a file or a dataset URI)."""
    return s._make(
        s.References,
        column=column,
        dataset=str(dataset),
        dataset_column=dataset_column,
        mostly=mostly,
        name=name,
        severity=severity,
    )


def custom(
    name: str,
    check: Callable[[Any], Any] | None = None,
    *,
    sql: str | None = None,
    function: str | None = None,
    columns: Sequence[str] | None = None,
    mostly: float = 1.0,
    description: str = "",
    severity: Severity = "error",
) -> s.Custom:
    """A check of your own: ``check(df) -> pl.Series | pl.Expr`` (True passes), or ``sql``, or ``function``.

    Example:
        >>> expect.custom("margin", lambda df: pl.col("price") >= pl.col("cost"))  # doctest: +SKIP
    """
    return s._make(
        s.Custom,
        name=name,
        check=check,
        sql=sql,
        function=function,
        columns=list(columns) if columns is not None else None,
        mostly=mostly,
        description=description,
        severity=severity,
    )
