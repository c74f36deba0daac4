"""The registered feature definitions as this process knows them, and the online plans built on them.

``FeatureStore`` and the computes that do its data work (``LocalCompute``, ``RestFeatureCompute``
and the training functions) all read definitions through one ``Catalog``: it reads the registry
store once and trusts that copy for ``ttl`` seconds, so a long-lived server sees a new ``apply``
without a restart while the online path pays no query per request. An online read resolves its
feature list once into an ``OnlinePlan`` kept here; a new registry generation empties them.

The computes are handed this catalog rather than the ``FeatureStore`` that owns them: a worker
gets its backends, not its owner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING

from loopline.errors import NotFound
from loopline.features.definitions import Definition, Entity, FeatureView, PushSource, from_spec
from loopline.features.online_read import OnlinePlan
from loopline.features.registry import digest

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.context import Context
    from loopline.features.registry_store import FeatureRegistryStore


class Catalog:
    """The workspace's definitions (read through its registry store) and the online plans on them."""

    def __init__(self, context: Context, *, ttl: float = 10.0) -> None:
        self.context = context
        self.ttl = ttl
        self._registry: FeatureRegistryStore | None = None
        self._defs: dict[str, Definition] = {}
        self._entities: dict[str, Entity] = {}
        self._loaded_at = -1e18
        self._generation = ""
        self._plans: dict[Hashable, OnlinePlan] = {}

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def registry(self) -> FeatureRegistryStore:
        """The definitions' store: SQL on a database, REST on a server."""
        if self._registry is None:
            from loopline.features.registry_store import open_feature_registry_store

            self._registry = open_feature_registry_store(self.context)
        return self._registry

    def definitions(self, *, fresh: bool = False) -> Mapping[str, Definition]:
        """Views, on-demand views and services by name: the copy read within ``ttl`` seconds, or a
        new read when ``fresh`` (or when it is older). Read-only: callers must not change it."""
        now = time.monotonic()
        if not fresh and now - self._loaded_at < self.ttl:
            return self._defs
        stored = self.registry.list_definitions()
        generation = digest({f"{d.kind}:{d.name}": d.digest for d in stored})
        if generation != self._generation:
            defs: dict[str, Definition] = {}
            entities: dict[str, Entity] = {}
            for d in stored:
                obj = from_spec(d.kind, d.name, d.spec)
                if isinstance(obj, Entity):
                    entities[d.name] = obj
                else:
                    defs[d.name] = obj
            self._defs, self._entities, self._generation = defs, entities, generation
            self._plans = {}
        self._loaded_at = now
        return self._defs

    def entities(self) -> list[Entity]:
        self.definitions(fresh=True)
        return list(self._entities.values())

    def expire(self) -> None:
        """Forget when the copy was read: the next read asks the registry (after an ``apply``)."""
        self._loaded_at = -1e18

    def online_plan(
        self, key: Hashable, build: Callable[[Mapping[str, Definition]], OnlinePlan]
    ) -> OnlinePlan:
        """The plan for one online request shape, built from the current definitions on first use."""
        defs = self.definitions()  # a new registry generation empties the plans
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = build(defs)
        return plan

    def plans(self) -> list[OnlinePlan]:
        """The online plans built so far (for tests and diagnosis)."""
        return list(self._plans.values())

    def push_views(self, name: str) -> list[FeatureView]:
        """The views fed by push source ``name`` (or the view ``name`` itself)."""
        views = [
            d
            for d in self.definitions(fresh=True).values()
            if isinstance(d, FeatureView)
            and (d.name == name or (isinstance(d.source, PushSource) and d.source.name == name))
        ]
        if not views:
            raise NotFound(
                f"No push source or feature view named {name!r}.", hint="Define a PushSource and apply it."
            )
        return views


__all__ = ["Catalog"]
