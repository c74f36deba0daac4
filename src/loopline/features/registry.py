"""Declarative registration: load a definitions file, diff it against the registry, apply the plan.

``apply`` is idempotent: a second apply of the same file plans nothing. What the file no longer
defines is removed (the file is the whole truth, as with ``feast apply``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import runpy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput, NotFound
from loopline.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    Projection,
    kind_of,
)

VIEW_KINDS = ("feature_view", "on_demand_feature_view", "feature_service")


def digest(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    """One line of a plan: ``op`` is ``add``, ``change`` or ``remove``."""

    op: str
    kind: str
    name: str
    spec: Mapping[str, Any] | None = None
    fields: tuple[str, ...] = ()  # for a change: which top-level spec keys differ


@dataclass(frozen=True)
class Plan:
    """What ``apply`` would do, object by object."""

    changes: tuple[Change, ...] = ()
    unchanged: tuple[tuple[str, str], ...] = ()
    definitions: Sequence[Definition] = field(default_factory=tuple)

    @property
    def added(self) -> list[Change]:
        return [c for c in self.changes if c.op == "add"]

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.op == "change"]

    @property
    def removed(self) -> list[Change]:
        return [c for c in self.changes if c.op == "remove"]

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> str:
        if self.empty:
            return f"No changes ({len(self.unchanged)} objects up to date)."
        return f"{len(self.added)} to add, {len(self.changed)} to change, {len(self.removed)} to remove."

    def lines(self) -> list[str]:
        sign = {"add": "+", "change": "~", "remove": "-"}
        out = []
        for c in self.changes:
            detail = f" ({', '.join(c.fields)})" if c.fields else ""
            out.append(f"{sign[c.op]} {c.kind.replace('_', ' ')} {c.name}{detail}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [[c.kind, c.name] for c in self.added],
            "changed": [[c.kind, c.name, list(c.fields)] for c in self.changed],
            "removed": [[c.kind, c.name] for c in self.removed],
            "unchanged": [list(u) for u in self.unchanged],
        }


def load_definitions(path: str | Path) -> list[Definition]:
    """Run a definitions file and collect the entities, views and services it defines at top level."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"No definitions file at {str(p)!r}.", hint="Give the path of a .py file.")
    try:
        namespace = runpy.run_path(str(p), run_name="loopline_feature_definitions")
    except Exception as e:
        if isinstance(e, InvalidInput):
            raise
        raise InvalidInput(f"{p} failed to run: {type(e).__name__}: {e}.") from e
    found = [
        v
        for v in namespace.values()
        if isinstance(v, (Entity, FeatureView, OnDemandFeatureView, FeatureService))
    ]
    if not found:
        raise InvalidInput(f"{p} defines no Entity, FeatureView or FeatureService at top level.")
    return found


def validate(definitions: Iterable[Definition]) -> list[Definition]:
    """Check names are unique and references resolve; fill entity names into views."""
    defs = list(definitions)
    seen: set[tuple[str, str]] = set()
    entities = {d.name: d for d in defs if isinstance(d, Entity)}
    for d in defs:
        kind = kind_of(d)
        group = "entity" if kind == "entity" else "view"  # views, on-demand views and services share URIs
        if (group, d.name) in seen:
            raise InvalidInput(f"Two definitions are named {d.name!r}.", hint="Names must be unique.")
        seen.add((group, d.name))
    for i, d in enumerate(defs):
        if isinstance(d, FeatureView):
            keys: list[str] = []
            for e in d.entities:
                name = e.name if isinstance(e, Entity) else e
                if name not in entities:
                    raise InvalidInput(
                        f"Feature view {d.name!r} uses entity {name!r}, which is not defined.",
                        hint="Define the Entity in the same file.",
                    )
                keys.extend(entities[name].join_keys)
            if tuple(keys) != d.join_keys:  # entities named by string: their join keys come from here
                defs[i] = dataclasses.replace(d, join_keys=tuple(keys))
    views = {d.name: d for d in defs if isinstance(d, (FeatureView, OnDemandFeatureView))}
    for d in defs:
        if isinstance(d, OnDemandFeatureView):
            for view, feats in d.inputs():
                _check_ref(d.name, view, feats, views)
        elif isinstance(d, FeatureService):
            for f in d.features:
                if isinstance(f, Projection):
                    _check_ref(d.name, f.view, f.features, views)
                elif f.name not in views:
                    raise InvalidInput(f"Feature service {d.name!r} uses {f.name!r}, which is not defined.")
    return defs


def _check_ref(owner: str, view: str, feats: Sequence[str], views: Mapping[str, Any]) -> None:
    v = views.get(view)
    if v is None:
        raise InvalidInput(f"{owner!r} uses view {view!r}, which is not defined.")
    missing = [f for f in feats if f not in v.features]
    if missing:
        raise InvalidInput(f"{owner!r} uses {missing} of {view!r}, which has no such features.")


def plan(definitions: Iterable[Definition], current: Mapping[tuple[str, str], Mapping[str, Any]]) -> Plan:
    """Diff ``definitions`` against ``current`` ({(kind, name): spec}) into a plan."""
    defs = validate(definitions)
    changes: list[Change] = []
    unchanged: list[tuple[str, str]] = []
    wanted: set[tuple[str, str]] = set()
    for d in defs:
        key = (kind_of(d), d.name)
        wanted.add(key)
        spec = d.spec()
        old = current.get(key)
        if old is None:
            changes.append(Change("add", key[0], key[1], spec))
        elif digest(old) != digest(spec):
            diff = tuple(
                sorted(k for k in {*old, *spec} if digest({k: old.get(k)}) != digest({k: spec.get(k)}))
            )
            changes.append(Change("change", key[0], key[1], spec, diff))
        else:
            unchanged.append(key)
    for key in sorted(set(current) - wanted):
        changes.append(Change("remove", key[0], key[1]))
    order = {"entity": 0, "feature_view": 1, "on_demand_feature_view": 2, "feature_service": 3}
    changes.sort(key=lambda c: (c.op == "remove", order[c.kind], c.name))
    return Plan(tuple(changes), tuple(unchanged), tuple(defs))
