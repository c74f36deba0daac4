"""MLflow's run-search grammar: ``filter_string`` and ``order_by``, parsed into plain clauses.

    metrics.acc > 0.9 AND params.lr = '0.1' AND tags.`team name` LIKE 'ml-%'
    attributes.status = 'FINISHED' AND run_id IN ('a1', 'b2') AND datasets.name = 'iris'

Clauses are joined by AND only (as in MLflow). A bare identifier is an attribute. Keys may be
quoted with backticks or double quotes. Parsing is separate from SQL so that every store
(and the server's input validation) shares one grammar.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from loopline.errors import InvalidInput

Kind = Literal["metric", "param", "tag", "attribute", "dataset"]
Value = float | str | tuple[str, ...] | None

_PREFIXES: dict[str, Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
STRING_ATTRIBUTES = {"status", "run_name", "user_id", "artifact_uri", "lifecycle_stage", "run_id"}
NUMERIC_ATTRIBUTES = {"start_time", "end_time", "created", "duration"}


@dataclass(frozen=True, slots=True)
class Attributes:
    """Which bare attribute names a grammar accepts, split by how they compare."""

    strings: frozenset[str]
    numbers: frozenset[str]


RUN_ATTRIBUTES = Attributes(frozenset(STRING_ATTRIBUTES), frozenset(NUMERIC_ATTRIBUTES))
EXPERIMENT_ATTRIBUTES = Attributes(
    frozenset({"name"}), frozenset({"creation_time", "last_update_time", "experiment_id"})
)
DATASET_FIELDS = {"name", "digest", "context"}
_ATTRIBUTE_ALIASES = {"created": "start_time", "run_uuid": "run_id", "runname": "run_name"}

NUMERIC_OPS = {"=", "!=", ">", ">=", "<", "<="}
STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>!=|<>|>=|<=|=|>|<)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<comma>,)
      | (?P<ident>(?:[A-Za-z_][\w]*)(?:\.(?:`[^`]+`|"[^"]+"|[^\s=!<>(),]+))?)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Clause:
    """One comparison: ``<kind>.<key> <op> <value>``."""

    kind: Kind
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class OrderBy:
    kind: Kind
    key: str
    ascending: bool = True


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInput(
                f"Cannot parse the filter near {text[pos : pos + 30]!r}.",
                hint="Write clauses like metrics.acc > 0.9 AND params.lr = '0.1'.",
            )
        assert m.lastgroup is not None
        out.append((m.lastgroup, m[m.lastgroup]))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"`":
        return re.sub(r"\\(.)", r"\1", s[1:-1])
    return s


def parse_identifier(ident: str, attrs: Attributes = RUN_ATTRIBUTES) -> tuple[Kind, str]:
    """``metrics.acc`` → ("metric", "acc"); a bare name is an attribute."""
    prefix, dot, key = ident.partition(".")
    if not dot:
        kind: Kind = "attribute"
        key = prefix
    elif prefix.lower() in _PREFIXES:
        kind = _PREFIXES[prefix.lower()]
    else:
        raise InvalidInput(
            f"Invalid entity type {prefix!r} in {ident!r}.",
            hint="Use metrics., params., tags., attributes. or datasets.",
        )
    key = _unquote(key)
    if not key:
        raise InvalidInput(f"Missing key in {ident!r}.", hint="Write e.g. metrics.acc.")
    if kind == "attribute":
        key = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
        if key not in attrs.strings | attrs.numbers:
            valid = sorted(attrs.strings | attrs.numbers)
            raise InvalidInput(
                f"Invalid attribute key {key!r}.", hint=f"Valid attributes: {', '.join(valid)}."
            )
    if kind == "dataset" and key not in DATASET_FIELDS:
        raise InvalidInput(
            f"Invalid dataset key {key!r}.", hint="Use datasets.name, datasets.digest or datasets.context."
        )
    return kind, key


def _is_numeric(kind: Kind, key: str, attrs: Attributes) -> bool:
    return kind == "metric" or (kind == "attribute" and key in attrs.numbers)


def parse_filter(text: str | None, attrs: Attributes = RUN_ATTRIBUTES) -> list[Clause]:
    """Parse an MLflow ``filter_string`` into clauses (empty for no filter)."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    clauses: list[Clause] = []
    i = 0

    def expect(kinds: set[str], what: str) -> tuple[str, str]:
        nonlocal i
        if i >= len(toks) or toks[i][0] not in kinds:
            got = toks[i][1] if i < len(toks) else "end of filter"
            raise InvalidInput(
                f"Expected {what} in the filter, got {got!r}.",
                hint="Write clauses like metrics.acc > 0.9 AND params.lr = '0.1'.",
            )
        i += 1
        return toks[i - 1]

    while True:
        _, ident = expect({"ident"}, "an identifier such as metrics.acc")
        kind, key = parse_identifier(ident, attrs)
        op = _read_op(toks, i)
        i += len(op.split())
        value: Value
        if op in ("IS NULL", "IS NOT NULL"):
            value = None
        elif op in ("IN", "NOT IN"):
            expect({"lparen"}, "'(' after IN")
            items = [_unquote(expect({"str"}, "a quoted string")[1])]
            while i < len(toks) and toks[i][0] == "comma":
                i += 1
                items.append(_unquote(expect({"str"}, "a quoted string")[1]))
            expect({"rparen"}, "')'")
            value = tuple(items)
        elif _is_numeric(kind, key, attrs):
            tok, raw = expect({"num", "str"}, "a number")
            try:
                value = float(_unquote(raw))
            except ValueError:
                raise InvalidInput(
                    f"{kind}s.{key} compares with a number, not {raw}.", hint="Drop the quotes."
                ) from None
        else:
            tok, raw = expect({"str", "num"}, "a quoted string")
            if tok != "str":
                raise InvalidInput(
                    f"The value for {kind}s.{key} must be a quoted string, not {raw}.",
                    hint=f"Write {kind}s.{key} = '{raw}'.",
                )
            value = _unquote(raw)
        allowed = NUMERIC_OPS if _is_numeric(kind, key, attrs) else STRING_OPS
        if kind == "attribute" and key == "run_id":
            allowed = {"=", "!=", "IN", "NOT IN"}
        if op not in allowed:
            raise InvalidInput(
                f"Operator {op!r} is not allowed for {kind} {key!r}.",
                hint=f"Use one of {', '.join(sorted(allowed))}.",
            )
        clauses.append(Clause(kind, key, op, value))
        if i >= len(toks):
            return clauses
        _, word = expect({"ident"}, "AND")
        if word.upper() != "AND":
            raise InvalidInput(
                f"Expected AND between clauses, got {word!r}.",
                hint="Only AND is supported; run two searches for OR.",
            )


def _read_op(toks: list[tuple[str, str]], i: int) -> str:
    words = [t[1].upper() for t in toks[i : i + 3]]
    if words and toks[i][0] == "op":
        return "!=" if words[0] == "<>" else words[0]
    for candidate in ("IS NOT NULL", "IS NULL", "NOT IN", "NOT LIKE", "IN", "LIKE", "ILIKE"):
        n = len(candidate.split())
        if words[:n] == candidate.split():
            if candidate == "NOT LIKE":
                break
            return candidate
    got = toks[i][1] if i < len(toks) else "end of filter"
    raise InvalidInput(
        f"Expected a comparison operator, got {got!r}.",
        hint="Use =, !=, >, >=, <, <=, LIKE, ILIKE, IN or NOT IN.",
    )


def parse_order_by(items: Sequence[str] | None, attrs: Attributes = RUN_ATTRIBUTES) -> list[OrderBy]:
    """Parse ``["metrics.acc DESC", "start_time"]``."""
    out: list[OrderBy] = []
    for item in items or []:
        m = re.fullmatch(r"\s*(.+?)(?:\s+(ASC|DESC))?\s*", item, re.IGNORECASE)
        if not m:
            raise InvalidInput(f"Invalid order_by clause {item!r}.", hint="Write 'metrics.acc DESC'.")
        kind, key = parse_identifier(m[1].strip(), attrs)
        out.append(OrderBy(kind, key, (m[2] or "ASC").upper() == "ASC"))
    return out
