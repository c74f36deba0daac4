"""The feature store as its pages show it: definitions by kind, the sources views read, and the
materialisations that filled the online store.

Read from the feature registry of the request's context (``list_definitions``,
``list_materializations``); definitions are JSON specs, shown as they were applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopline.context import Context
from loopline.errors import InvalidInput
from loopline.features.types import Materialization, StoredDefinition

MATERIALIZATIONS = 50


@dataclass(frozen=True, slots=True)
class Source:
    """Where views read their rows: its kind, what names it, and the views that read it."""

    kind: str
    where: str
    timestamp_field: str
    views: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    entities: list[StoredDefinition]
    views: list[StoredDefinition]
    on_demand: list[StoredDefinition]
    services: list[StoredDefinition]
    sources: list[Source]
    last: dict[str, Materialization]  # view -> its newest materialisation
    materializations: list[Materialization]  # newest first


@dataclass(frozen=True, slots=True)
class ViewPage:
    definition: StoredDefinition
    materializations: list[Materialization]
    used_by: list[StoredDefinition]  # on-demand views and services that take features of it


def where(source: Mapping[str, Any]) -> str:
    """What names a source, as its spec says: a path, a dataset URI, a query or a table."""
    if source.get("kind") == "push":
        return f"push {source.get('name')} ← {where(source.get('batch_source') or {})}"
    for key in ("path", "uri", "table", "query"):
        if source.get(key):
            return str(source[key])
    return ""


def _registry(context: Context) -> Any:
    from loopline.features.registry_store import open_feature_registry_store

    return open_feature_registry_store(context)


def load(context: Context) -> Catalog:
    reg = _registry(context)
    defs: list[StoredDefinition] = reg.list_definitions()
    of = {
        k: [d for d in defs if d.kind == k]
        for k in ("entity", "feature_view", "on_demand_feature_view", "feature_service")
    }
    readers: dict[tuple[str, str, str], list[str]] = {}
    for v in of["feature_view"]:
        src = v.spec.get("source") or {}
        readers.setdefault(
            (str(src.get("kind", "")), where(src), str(src.get("timestamp_field", ""))), []
        ).append(v.name)
    sources = [Source(k, w, ts, tuple(views)) for (k, w, ts), views in sorted(readers.items())]
    runs: list[Materialization] = reg.list_materializations(None, MATERIALIZATIONS)
    last: dict[str, Materialization] = {}
    for m in runs:  # newest first
        last.setdefault(m.view, m)
    return Catalog(
        of["entity"],
        of["feature_view"],
        of["on_demand_feature_view"],
        of["feature_service"],
        sources,
        last,
        runs,
    )


def load_view(context: Context, name: str) -> ViewPage:
    """``NotFound`` (naming what exists) when there is no view, on-demand view or service ``name``."""
    reg = _registry(context)
    d: StoredDefinition = reg.get_definition(name)
    if d.kind == "entity":
        raise InvalidInput(f"{name!r} is an entity, not a view.")
    runs: list[Materialization] = (
        reg.list_materializations(name, MATERIALIZATIONS) if d.kind == "feature_view" else []
    )
    users = [x for x in reg.list_definitions() if any(str(ref).split(":")[0] == name for ref in _refs(x))]
    return ViewPage(d, runs, users)


def _refs(d: StoredDefinition) -> list[str]:
    if d.kind == "feature_service":
        return [str(f) for f in d.spec.get("features") or []]
    if d.kind == "on_demand_feature_view":
        return [f"{v}:" for v, _ in d.spec.get("inputs") or []]
    return []


__all__ = ["Catalog", "Source", "ViewPage", "load", "load_view", "where"]
