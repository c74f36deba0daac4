"""What a feature registry store does, and which one a context gets.

``SqlFeatureRegistry`` keeps definitions in the metadata database; ``RestFeatureRegistry`` asks
``loopline server`` for the same (``/api/2.0/loopline/features/...``). Both pass one contract suite
(tests/features/test_feature_registry_contract.py). Definitions travel as JSON specs: the registry
knows nothing of the definition classes above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from loopline.features.types import (
    VIEW_URI_KINDS,
    DefinitionChange,
    LineageEdge,
    Materialization,
    StoredDefinition,
)

if TYPE_CHECKING:
    from loopline.context import Context


class FeatureRegistryStore(Protocol):
    """Registered feature definitions, their lineage and their materialisation jobs."""

    def list_definitions(self, kind: str | None = None) -> list[StoredDefinition]:
        """Every definition (of ``kind``), ordered by kind then name."""
        ...

    def get_definition(self, name: str, kinds: Sequence[str] = VIEW_URI_KINDS) -> StoredDefinition:
        """One definition by name; NotFound (listing what exists) when there is none."""
        ...

    def apply(self, changes: Sequence[DefinitionChange], edges: Sequence[tuple[str, str, str]] = ()) -> None:
        """Write a plan's changes and lineage edges atomically; a retry changes nothing twice."""
        ...

    def record_lineage(
        self, action: str, uri: str, edges: Sequence[tuple[str, str, str]], **payload: object
    ) -> None:
        """Edges around an object made elsewhere (a training set), with its event."""
        ...

    def lineage(self, uri: str) -> list[LineageEdge]:
        """The edges upstream of ``uri``, then downstream."""
        ...

    def last_materialized_end(self, view: str) -> int | None:
        """The end (ms) of the view's latest finished materialisation."""
        ...

    def list_materializations(self, view: str | None = None, limit: int = 50) -> list[Materialization]:
        """The newest materialisation jobs first."""
        ...


def open_feature_registry_store(context: Context) -> FeatureRegistryStore:
    """``SqlFeatureRegistry`` on the context's database, ``RestFeatureRegistry`` on its server."""
    if context.is_remote:
        from loopline.features.rest_store import RestFeatureRegistry

        return RestFeatureRegistry(context.http)
    from loopline.features.sql_store import SqlFeatureRegistry

    return SqlFeatureRegistry(context.engine, workspace=context.workspace, actor=context.actor)


__all__ = ["FeatureRegistryStore", "open_feature_registry_store"]
