"""The one naming rule for Loopline's own objects: datasets and their aliases, monitors, pipelines,
schedules, deployments and feature definitions.

A name is 1-256 ASCII letters, digits, ``_``, ``-`` and ``.``, starting with a letter, a digit or ``_``:
safe in a URL path segment, a file name, a Prometheus label and a shell argument (no leading ``-`` or
``.``, so never a flag, ``.`` or ``..``). Kinds that need less say so here:

* feature definitions (fields, entities, join keys, views, services) are **identifiers** (letters,
  digits and ``_``, at most 128): their names become column names in training sets and SQL;
* a **workspace** name has at most 63 characters;
* an **alias** is a name that cannot be read as a version: not all digits, not ``v3``, not ``latest``.

Objects MLflow knows (experiments, runs, registered models and their aliases, tags) keep MLflow's rules
and messages, in ``tracking.validation`` and the registry store: MLflow's clients rely on them.
Standard library only: the lean ``loopline data add`` path checks names without SQLAlchemy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopline.errors import InvalidInput


@dataclass(frozen=True)
class NameRule:
    pattern: re.Pattern[str]
    hint: str


NAME = NameRule(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,255}"),
    "Use up to 256 letters, digits, '_', '-' and '.', starting with a letter, a digit or '_'.",
)
IDENTIFIER = NameRule(
    re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}"),
    "Use up to 128 letters, digits and '_', starting with a letter or '_' (it becomes a column name).",
)
WORKSPACE = NameRule(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}"),
    "Use up to 63 letters, digits, '_', '-' and '.', starting with a letter, a digit or '_'.",
)
_VERSION_LIKE = re.compile(r"[0-9]+|[vV][0-9]+|latest", re.IGNORECASE)


def check_name(kind: str, name: object, rule: NameRule = NAME) -> str:
    """``name`` if it follows ``rule``; else InvalidInput naming the ``kind`` ("dataset", "monitor"…)."""
    if not isinstance(name, str) or rule.pattern.fullmatch(name) is None:
        raise InvalidInput(f"Invalid {kind} name {name!r:.120}.", hint=rule.hint)
    return name


def check_alias(kind: str, alias: object) -> str:
    """An alias of a ``kind`` ("dataset"…): a name that cannot be mistaken for a version."""
    check_name(f"{kind} alias", alias)
    assert isinstance(alias, str)
    if _VERSION_LIKE.fullmatch(alias):
        raise InvalidInput(
            f"{alias!r} cannot be an alias: it reads as a version.", hint="Pick a name such as 'prod'."
        )
    return alias
