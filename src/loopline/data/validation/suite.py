"""Expectation suites: what data must look like, written in Python or YAML with the same names.

    from loopline.data.validation import Suite, expect

    suite = Suite("customers", [
        expect.column_exists("id", type="int64"),
        expect.unique("id"),
        expect.between("age", min=0, max=120),
        expect.in_set("country", ["DE", "FR", "US"]),
    ])
    suite.to_yaml()

The same suite in YAML (``Suite.from_yaml("suite.yaml")``)::

    name: customers
    expectations:
      - {expect: column_exists, column: id, type: int64}
      - {expect: unique, column: id}
      - {expect: between, column: age, min: 0, max: 120}
      - {expect: in_set, column: country, values: [DE, FR, US]}

Every expectation has an optional ``name`` (how reports label it), a ``severity`` (``error``, the
default, fails the validation; ``warning`` is reported only) and a ``description``. Row-level
expectations also take ``mostly`` (GX's meaning: pass when at least that share of the non-missing
values pass). Null and NaN values are *missing*: row-level checks skip them (``not_null`` is the
check that counts them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopline.errors import InvalidInput, NotFound

Scalar = int | float | str


class _Base(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str | None = None
    severity: Literal["error", "warning"] = "error"
    description: str = ""

    @property
    def kind(self) -> str:
        return str(getattr(self, "expect"))  # noqa: B009 - every subclass declares it

    def columns(self) -> tuple[str, ...]:
        """The columns of the data this expectation reads."""
        column = getattr(self, "column", None)
        return (column,) if column else ()

    @property
    def label(self) -> str:
        """How reports name this expectation: ``name`` or ``kind(columns)``."""
        cols = self.columns()
        return self.name or (f"{self.kind}({', '.join(cols)})" if cols else self.kind)

    def describe(self) -> str:
        """The expectation in words, for report tables."""
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (``expect`` first, defaults left out), as YAML holds it."""
        return _ordered(self.kind, self.model_dump(exclude_defaults=True, exclude={"expect"}, by_alias=True))


_ORDER = (
    "name",
    "column",
    "columns",
    "q",
    "type",
    "values",
    "pattern",
    "dataset",
    "dataset_column",
    "min",
    "max",
)


def _ordered(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Keys in reading order: what is checked first, then bounds, then options."""
    first = {k: body[k] for k in _ORDER if k in body}
    return {"expect": kind, **first, **{k: v for k, v in body.items() if k not in first}}


class _RowCheck(_Base):
    """An expectation on each row: failing rows are counted and listed."""

    mostly: float = Field(1.0, ge=0.0, le=1.0)


def _bounds(lo: Any, hi: Any, unit: str = "") -> str:
    if lo is not None and hi is not None:
        return f"{lo}{unit} … {hi}{unit}"
    return f"≥ {lo}{unit}" if lo is not None else f"≤ {hi}{unit}"


def _check_bounds(lo: Any, hi: Any, what: str) -> None:
    if lo is None and hi is None:
        raise ValueError(f"give min, max or both for {what}")
    if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
        raise ValueError(f"min ({lo}) is greater than max ({hi})")


class ColumnExists(_Base):
    """The column is present and, when ``type`` is given, has that type.

    ``type`` is an Arrow type string (``int64``, ``double``, ``string``, ``timestamp[us]``, …) or a
    family: ``integer``, ``float``, ``numeric``, ``string``, ``boolean``, ``datetime``, ``categorical``.
    """

    expect: Literal["column_exists"] = "column_exists"
    column: str
    type: str | None = None

    def describe(self) -> str:
        return f"present, {self.type}" if self.type else "present"


class NotNull(_Base):
    """At most ``max_share`` of the rows are null (or NaN); 0, the default, means none."""

    expect: Literal["not_null"] = "not_null"
    column: str
    max_share: float = Field(0.0, ge=0.0, le=1.0)

    def describe(self) -> str:
        return "no nulls" if self.max_share == 0 else f"nulls ≤ {self.max_share:.2%}"


class Between(_RowCheck):
    """Values lie in ``[min, max]`` (``strict_min``/``strict_max``: open at that end).

    Bounds are numbers, or ISO strings for date and datetime columns; one may be left out.
    """

    expect: Literal["between"] = "between"
    column: str
    min: Scalar | None = None
    max: Scalar | None = None
    strict_min: bool = False
    strict_max: bool = False

    @model_validator(mode="after")
    def _valid(self) -> Between:
        _check_bounds(self.min, self.max, "between")
        return self

    def describe(self) -> str:
        lo = "" if self.min is None else f"{self.min} {'<' if self.strict_min else '≤'} "
        hi = "" if self.max is None else f" {'<' if self.strict_max else '≤'} {self.max}"
        return f"{lo}value{hi}"


class InSet(_RowCheck):
    """Values are among ``values``."""

    expect: Literal["in_set"] = "in_set"
    column: str
    values: list[Any]

    def describe(self) -> str:
        shown = ", ".join(map(str, self.values[:8]))
        return f"in {{{shown}{', …' if len(self.values) > 8 else ''}}}"


class Unique(_RowCheck):
    """No value (``column``) or combination of values (``columns``, a compound key) repeats.

    Every row of a repeated group fails. Rows whose key is entirely missing are skipped.
    """

    expect: Literal["unique"] = "unique"
    column: str | None = None
    columns_: list[str] | None = Field(None, alias="columns")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _valid(self) -> Unique:
        if (self.column is None) == (self.columns_ is None) or self.columns_ == []:
            raise ValueError("give either column or columns (a non-empty list)")
        return self

    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column else tuple(self.columns_ or ())

    def describe(self) -> str:
        return "unique" if self.column else "unique together"


class Matches(_RowCheck):
    """Values (as strings) contain a match of the regular expression ``pattern``.

    Anchor it (``^…$``) to match the whole value. The syntax is Rust's ``regex`` (no look-around
    or back-references).
    """

    expect: Literal["matches"] = "matches"
    column: str
    pattern: str

    def describe(self) -> str:
        return f"matches {self.pattern}"


class Length(_RowCheck):
    """String lengths (in characters) lie in ``[min, max]``."""

    expect: Literal["length"] = "length"
    column: str
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _valid(self) -> Length:
        _check_bounds(self.min, self.max, "length")
        return self

    def describe(self) -> str:
        return f"length {_bounds(self.min, self.max)}"


class RowCount(_Base):
    """The table has between ``min`` and ``max`` rows."""

    expect: Literal["row_count"] = "row_count"
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _valid(self) -> RowCount:
        _check_bounds(self.min, self.max, "row_count")
        return self

    def describe(self) -> str:
        return f"rows {_bounds(self.min, self.max)}"


class _Stat(_Base):
    column: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _valid(self) -> _Stat:
        _check_bounds(self.min, self.max, self.kind)
        return self

    def describe(self) -> str:
        return f"{self.kind} {_bounds(self.min, self.max)}"


class Mean(_Stat):
    """The mean of the non-missing values lies in ``[min, max]``."""

    expect: Literal["mean"] = "mean"


class Std(_Stat):
    """The (sample) standard deviation of the non-missing values lies in ``[min, max]``."""

    expect: Literal["std"] = "std"


class Quantile(_Stat):
    """The ``q``-quantile (linear interpolation) of the non-missing values lies in ``[min, max]``."""

    expect: Literal["quantile"] = "quantile"
    q: float = Field(ge=0.0, le=1.0)

    @property
    def label(self) -> str:
        return self.name or f"quantile({self.column}, q={self.q:g})"

    def describe(self) -> str:
        return f"q{self.q:g} {_bounds(self.min, self.max)}"


class References(_RowCheck):
    """Every value is found in column ``dataset_column`` (default: the same name) of ``dataset``.

    ``dataset`` is a file (Parquet, CSV, JSON) or a dataset URI (``datasets:/customers@prod``).
    """

    expect: Literal["references"] = "references"
    column: str
    dataset: str
    dataset_column: str | None = None

    def describe(self) -> str:
        return f"found in {self.dataset}:{self.dataset_column or self.column}"


class Custom(_RowCheck):
    """A vectorised check of your own: True marks a passing row, False a failing one (null: skipped).

    Give exactly one of ``sql`` (a SQL expression polars evaluates, e.g. ``price >= cost``),
    ``function`` (``"package.module:function"``, imported when the suite runs) or, in Python only,
    ``check``: a callable taking the polars DataFrame and returning a boolean ``pl.Series`` or
    ``pl.Expr``. List the columns a ``function``/``check`` reads in ``columns`` to let the engine
    read only those (otherwise it reads them all).
    """

    expect: Literal["custom"] = "custom"
    name: str  # required here: a custom check has no other label
    sql: str | None = None
    function: str | None = None
    check: Callable[..., Any] | None = Field(None, exclude=True)
    columns_: list[str] | None = Field(None, alias="columns")

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True
    )

    @model_validator(mode="after")
    def _valid(self) -> Custom:
        if sum(x is not None for x in (self.sql, self.function, self.check)) != 1:
            raise ValueError("give exactly one of sql, function or check")
        if self.sql is not None:  # a typo fails when the suite is read, not halfway through a run
            import polars as pl

            try:
                pl.sql_expr(self.sql)
            except pl.exceptions.PolarsError as e:
                raise ValueError(f"sql {self.sql!r} is not a SQL expression polars can parse: {e}") from e
        return self

    def columns(self) -> tuple[str, ...]:
        if self.columns_ is not None:
            return tuple(self.columns_)
        if self.sql is not None:
            import polars as pl

            return tuple(pl.sql_expr(self.sql).meta.root_names())
        return ()

    @property
    def reads_all_columns(self) -> bool:
        return self.sql is None and self.columns_ is None

    def resolve(self) -> Callable[..., Any]:
        """The callable this check runs (``function`` imported on first use)."""
        if self.check is not None:
            return self.check
        module, _, attr = (self.function or "").partition(":")
        try:
            found: object = importlib.import_module(module)
            for part in attr.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError, ValueError) as e:
            raise InvalidInput(
                f"Custom check {self.name!r}: cannot import {self.function!r}: {e}",
                hint="Write function as 'package.module:function', importable where the suite runs.",
            ) from None
        if not callable(found):
            raise InvalidInput(f"Custom check {self.name!r}: {self.function!r} is not a function.")
        return found

    def to_dict(self) -> dict[str, Any]:
        body = self.model_dump(exclude_defaults=True, exclude={"expect", "check"}, by_alias=True)
        if self.check is not None:
            qualname = getattr(self.check, "__qualname__", "<lambda>")
            if "<" in qualname:  # a lambda or a nested function: YAML cannot name it
                raise InvalidInput(
                    f"Custom check {self.name!r} is a Python callable that YAML cannot refer to.",
                    hint="Define it as a module-level function, or write it as sql: '…'.",
                )
            body["function"] = f"{self.check.__module__}:{qualname}"
        return _ordered(self.kind, body)

    def describe(self) -> str:
        return self.sql or self.function or str(getattr(self.check, "__name__", "custom check"))


Expectation = Annotated[
    ColumnExists
    | NotNull
    | Between
    | InSet
    | Unique
    | Matches
    | Length
    | RowCount
    | Mean
    | Std
    | Quantile
    | References
    | Custom,
    Field(discriminator="expect"),
]
KINDS = (
    "column_exists",
    "not_null",
    "between",
    "in_set",
    "unique",
    "matches",
    "length",
    "row_count",
    "mean",
    "std",
    "quantile",
    "references",
    "custom",
)


class Suite(BaseModel):
    """A named list of expectations, checked together in one pass over the data."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str = "suite"
    description: str = ""
    expectations: list[Expectation] = Field(default_factory=list)

    def __init__(
        self,
        name: str = "suite",
        expectations: Iterable[Any] = (),
        *,
        description: str = "",
        source: str | None = None,
    ) -> None:
        try:
            super().__init__(name=name, description=description, expectations=list(expectations))
        except ValidationError as e:
            raise InvalidInput(f"{source or f'Invalid suite {name!r}'}: {_explain(e)}", hint=_HINT) from None

    @field_validator("expectations", mode="before")
    @classmethod
    def _known_kinds(cls, value: Any) -> Any:
        for i, item in enumerate(value if isinstance(value, list) else []):
            if isinstance(item, dict) and item.get("expect") not in KINDS:
                raise ValueError(
                    f"expectations[{i}]: unknown expect {item.get('expect')!r}; one of {', '.join(KINDS)}"
                )
        return value

    def add(self, *expectations: Any) -> Suite:
        """Append expectations (made with ``expect.*``); returns the suite for chaining."""
        return Suite(self.name, [*self.expectations, *expectations], description=self.description)

    def columns(self) -> set[str]:
        """Every column some expectation reads."""
        return {c for e in self.expectations for c in e.columns()}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["expectations"] = [e.to_dict() for e in self.expectations]
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "suite") -> Suite:
        """A suite from the dict ``to_dict`` (or the YAML) gives."""
        if not isinstance(data, dict) or not isinstance(data.get("expectations", []), list):
            raise InvalidInput(f"{source}: a suite is a mapping with an 'expectations' list.", hint=_HINT)
        unknown = set(data) - {"name", "description", "expectations"}
        if unknown:
            raise InvalidInput(f"{source}: unknown keys {sorted(unknown)}.", hint=_HINT)
        return cls(
            str(data.get("name", Path(source).stem)),
            data.get("expectations") or [],
            description=str(data.get("description", "")),
            source=source,
        )

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The suite as YAML; also written to ``path`` when given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> Suite:
        """Read a suite from a YAML file."""
        p = Path(path)
        if not p.is_file():
            raise NotFound(f"No suite file at {p}.", hint="Write one, or infer it with --infer-from.")
        return cls.from_yaml_text(p.read_text(encoding="utf-8"), source=str(p))

    @classmethod
    def from_yaml_text(cls, text: str, *, source: str = "suite") -> Suite:
        """Read a suite from YAML text."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InvalidInput(f"{source} is not valid YAML: {e}", hint=_HINT) from None
        return cls.from_dict(data, source=source)


_HINT = "See docs/data-validation.md for the expectation kinds and their fields."


def _explain(error: ValidationError) -> str:
    """Pydantic's errors as one line each: ``expectations[2] (between): min … max``."""
    lines = []
    for err in error.errors():
        loc = [str(x) for x in err["loc"]]
        where = ""
        if len(loc) >= 2 and loc[0] == "expectations":
            where = f"expectations[{loc[1]}]"
            if len(loc) >= 3:
                where += f" ({loc[2]})"
            rest = loc[3:]
            if rest:
                where += " " + ".".join(rest)
        elif loc != ["expectations"]:
            where = ".".join(loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {msg}" if where else msg)
    return "; ".join(lines)


_E = TypeVar("_E", bound=_Base)


def _make(cls: type[_E], **fields: Any) -> _E:
    try:
        return cls(**fields)
    except ValidationError as e:
        raise InvalidInput(f"{cls.__name__}: {_explain(e)}", hint=_HINT) from None


def labels(expectations: Sequence[_Base]) -> list[str]:
    """Report labels, made unique by a ``#n`` suffix where two expectations would share one."""
    seen: dict[str, int] = {}
    out = []
    for e in expectations:
        base = e.label
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return out
