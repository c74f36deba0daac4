"""The feature registry through ``loopline server``: ``FeatureRegistryStore`` over REST.

``RestFeatureRegistry`` is :class:`~loopline.features.registry_store.FeatureRegistryStore` on the
routes of :mod:`loopline.server.features_api`. The data work through a server (materialisation,
training sets, online reads) is ``RestFeatureCompute``'s, in :mod:`loopline.features.rest_compute`;
both share the context's HTTP client.
"""

from __future__ import annotations

from collections.abc import Sequence

from loopline.features.types import (
    VIEW_URI_KINDS,
    DefinitionChange,
    LineageEdge,
    Materialization,
    StoredDefinition,
    from_json,
    to_json,
)
from loopline.protocol.http import RestClient

API = "/api/2.0/loopline/features"


class RestFeatureRegistry:
    """Feature definitions, lineage and materialisation jobs kept by the server."""

    def __init__(self, client: RestClient) -> None:
        self.client = client

    def list_definitions(self, kind: str | None = None) -> list[StoredDefinition]:
        body = self.client.call("GET", f"{API}/definitions", {"kind": kind})
        return [from_json(StoredDefinition, d) for d in body.get("definitions", [])]

    def get_definition(self, name: str, kinds: Sequence[str] = VIEW_URI_KINDS) -> StoredDefinition:
        body = self.client.call("GET", f"{API}/definitions/get", {"name": name, "kinds": ",".join(kinds)})
        return from_json(StoredDefinition, body["definition"])

    def apply(self, changes: Sequence[DefinitionChange], edges: Sequence[tuple[str, str, str]] = ()) -> None:
        # The server checks the views' sources and drops removed views' online values as it applies.
        self.client.call(
            "POST",
            f"{API}/apply",
            {"changes": [to_json(c) for c in changes], "edges": [list(e) for e in edges]},
        )

    def record_lineage(
        self, action: str, uri: str, edges: Sequence[tuple[str, str, str]], **payload: object
    ) -> None:
        self.client.call(
            "POST",
            f"{API}/lineage/record",
            {"action": action, "uri": uri, "edges": [list(e) for e in edges], "payload": payload},
        )

    def lineage(self, uri: str) -> list[LineageEdge]:
        body = self.client.call("GET", f"{API}/lineage", {"uri": uri})
        return [from_json(LineageEdge, e) for e in body.get("edges", [])]

    def last_materialized_end(self, view: str) -> int | None:
        end: int | None = self.client.call("GET", f"{API}/materializations/last-end", {"view": view})[
            "end_ms"
        ]
        return end

    def list_materializations(self, view: str | None = None, limit: int = 50) -> list[Materialization]:
        body = self.client.call("GET", f"{API}/materializations", {"view": view, "limit": limit})
        return [from_json(Materialization, m) for m in body.get("materializations", [])]


__all__ = ["API", "RestFeatureRegistry"]
