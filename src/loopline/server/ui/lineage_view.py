"""The lineage graph around one object, laid out in columns by distance: upstream ◂ object ▸ downstream.

The edges come from the metadata lineage functions (one recursive query each way); this module only
places the nodes: each one in the column of its shortest distance from the object, so a chain reads
left to right and a node reached two ways is shown once. Every node links to its own lineage and,
where the UI has one, to its page.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from urllib.parse import quote

from loopline.errors import InvalidInput
from loopline.metadata.lineage import Edge
from loopline.uris import parse


@dataclass(frozen=True, slots=True)
class Node:
    uri: str
    distance: int  # negative upstream, 0 the object, positive downstream
    relations: tuple[str, ...]  # how it joins its neighbour one column nearer the object
    page: str | None  # the UI page of the object, when the UI has one
    external: bool = False

    @property
    def lineage(self) -> str:
        return "/ui/lineage?uri=" + quote(self.uri, safe="")


@dataclass(frozen=True, slots=True)
class Graph:
    center: Node
    columns: list[tuple[int, list[Node]]]  # (distance, nodes), left to right
    edges: list[Edge]


def page_of(uri: str) -> str | None:
    """The UI page of the object ``uri`` names, or None where the UI has none yet."""
    try:
        o = parse(uri)
    except InvalidInput:
        return None
    if o.scheme == "runs":
        return f"/ui/runs/{quote(o.name, safe='')}"
    if o.scheme == "experiments":
        return f"/ui/experiments/{quote(o.name, safe='')}"
    if o.scheme == "models" and o.version is not None and o.version.isdigit():
        return f"/ui/models/{quote(o.name, safe='')}#v{o.version}"
    if o.scheme == "models" and o.version is None:  # the model, or an alias of it
        return f"/ui/models/{quote(o.name, safe='')}"
    name = quote(o.name, safe="")
    if o.scheme == "datasets":
        return f"/ui/datasets/{name}" + (f"?version={o.version}" if o.version and o.version.isdigit() else "")
    if o.scheme == "monitors":
        return f"/ui/monitors/{name}"
    if o.scheme == "pipelines":  # a run, or a step of it: the run's page shows its steps
        return (
            f"/ui/pipelines/runs/{quote(o.version, safe='')}" if o.version else f"/ui/pipelines?name={name}"
        )
    if o.scheme == "features" and o.name != "entity":
        return f"/ui/features/{name}"
    if o.scheme == "deployments":
        return f"/ui/deployments/{name}"
    return None


def _distances(start: str, edges: list[Edge], forward: bool) -> dict[str, tuple[int, set[str], bool]]:
    """Shortest hop count from ``start`` along (or against) the edges, with the relations of the
    edges that reach each node at that distance, and whether the node is external."""
    nxt: dict[str, list[Edge]] = {}
    for e in edges:
        nxt.setdefault(e.from_uri if forward else e.to_uri, []).append(e)
    seen: dict[str, tuple[int, set[str], bool]] = {start: (0, set(), False)}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        d = seen[here][0]
        for e in nxt.get(here, []):
            there = e.to_uri if forward else e.from_uri
            external = e.external and there == e.from_uri
            if there not in seen:
                seen[there] = (d + 1, {e.relation}, external)
                todo.append(there)
            elif seen[there][0] == d + 1:
                seen[there][1].add(e.relation)
    return seen


def build(uri: str, upstream: list[Edge], downstream: list[Edge]) -> Graph:
    columns: dict[int, list[Node]] = {}
    for edges, sign in ((upstream, -1), (downstream, 1)):
        for node_uri, (d, relations, external) in _distances(uri, edges, forward=sign > 0).items():
            if d:
                node = Node(node_uri, sign * d, tuple(sorted(relations)), page_of(node_uri), external)
                columns.setdefault(sign * d, []).append(node)
    center = Node(uri, 0, (), page_of(uri))
    columns[0] = [center]
    ordered = [(d, sorted(nodes, key=lambda n: n.uri)) for d, nodes in sorted(columns.items())]
    return Graph(center, ordered, [*upstream, *downstream])


__all__ = ["Graph", "Node", "build", "page_of"]
