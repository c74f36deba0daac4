"""A pipeline run as its page shows it: the DAG drawn as SVG geometry, and each step's record.

The graph is the one the run stored (``RunRecord.graph``: nodes with their ``deps``; a dataset
input is a node of its own); each step's state comes from the step records. Nodes are placed in
topological layers, left to right (a node one layer right of its deepest input), and within a layer
in the order of their inputs' places (fewer crossings than the stored order), so the picture reads
the same in a screenshot and needs no script. A running run's page asks again every few seconds
for this part alone, and stops once the run has finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.context import Context
from loopline.pipelines.types import RunRecord, StepRecord

BOX_W, BOX_H = 176, 58
GAP_X, GAP_Y = 64, 22
MARGIN = 12
RUNS = 100
# What a step's state looks like: fill and border (colour-blind safe pairs), and the word shown.
LOOK = {
    "succeeded": ("#e7f6ec", "#067647", "ran"),
    "cached": ("#e6f1fb", "#0b5cad", "cache hit"),
    "failed": ("#fdecea", "#b42318", "failed"),
    "upstream_failed": ("#fff4e0", "#b54708", "skipped"),
    "running": ("#fff", "#0b5cad", "running"),
    "pending": ("#f5f7f9", "#5b636e", "pending"),
    "dataset": ("#f4f0fb", "#6941c6", "dataset"),
}


@dataclass(frozen=True, slots=True)
class Box:
    node: str
    label: str  # the step's function name when it differs from the node's, or the dataset
    status: str
    detail: str  # duration, cache source, attempts
    x: float
    y: float
    fill: str
    stroke: str
    word: str


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    path: str  # SVG path data: a curve from the input's right side to the node's left side


@dataclass(frozen=True, slots=True)
class Dag:
    width: int
    height: int
    boxes: list[Box]
    edges: list[Edge]


@dataclass(frozen=True, slots=True)
class RunPage:
    run: RunRecord
    steps: list[StepRecord]
    dag: Dag
    counts: dict[str, int]  # status -> steps

    @property
    def live(self) -> bool:
        return self.run.status == "running"


def layers(nodes: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """The nodes' ids in topological layers: a node sits one layer right of its deepest input; in a
    layer, nodes are ordered by the mean place of their inputs in the layers before (then as stored)."""
    deps = {str(n["id"]): [str(d) for d in n.get("deps", []) if d != n["id"]] for n in nodes}
    depth: dict[str, int] = {}

    def place(n: str, seen: frozenset[str] = frozenset()) -> int:
        if n not in depth:
            if n in seen:  # a stored graph is acyclic; a damaged one still draws
                return 0
            ins = [d for d in deps.get(n, []) if d in deps]
            depth[n] = 1 + max((place(d, seen | {n}) for d in ins), default=-1)
        return depth[n]

    for n in deps:
        place(n)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in deps:  # stored order within a layer, then sorted by the inputs' places
        out[depth[n]].append(n)
    where: dict[str, float] = {}
    for i, layer in enumerate(out):
        if i:
            stored = {n: k for k, n in enumerate(layer)}
            layer.sort(key=lambda n, stored=stored: _mean_place(deps[n], where, stored[n]))  # type: ignore[misc]
        where.update({n: float(k) for k, n in enumerate(layer)})
    return out


def _mean_place(inputs: list[str], where: dict[str, float], stored: int) -> tuple[float, int]:
    """Where a node goes in its layer: the mean place of its inputs already placed, then as stored."""
    ins = [where[d] for d in inputs if d in where]
    return (sum(ins) / len(ins) if ins else float(stored), stored)


def dag(graph: Mapping[str, Any], steps: Sequence[StepRecord]) -> Dag:
    nodes = list(graph.get("nodes") or [])
    by_id = {str(n["id"]): n for n in nodes}
    state = {s.node: s for s in steps}
    grid = layers(nodes)
    tallest = max((len(layer) for layer in grid), default=0)
    height = MARGIN * 2 + tallest * BOX_H + max(tallest - 1, 0) * GAP_Y
    boxes: dict[str, Box] = {}
    for i, layer in enumerate(grid):
        top = (height - (len(layer) * BOX_H + (len(layer) - 1) * GAP_Y)) / 2  # centre each layer
        for k, n in enumerate(layer):
            node = by_id[n]
            x, y = MARGIN + i * (BOX_W + GAP_X), top + k * (BOX_H + GAP_Y)
            boxes[n] = _box(node, state.get(n), x, y)
    edges = []
    for n, node in by_id.items():
        for d in dict.fromkeys(str(x) for x in node.get("deps", [])):
            if d in boxes and d != n:
                a, b = boxes[d], boxes[n]
                x1, y1, x2, y2 = a.x + BOX_W, a.y + BOX_H / 2, b.x, b.y + BOX_H / 2
                mid = (x1 + x2) / 2
                edges.append(Edge(d, n, f"M{x1:g},{y1:g} C{mid:g},{y1:g} {mid:g},{y2:g} {x2 - 6:g},{y2:g}"))
    width = MARGIN * 2 + len(grid) * BOX_W + max(len(grid) - 1, 0) * GAP_X
    return Dag(max(width, 200), max(height, 80), list(boxes.values()), edges)


def _box(node: Mapping[str, Any], step: StepRecord | None, x: float, y: float) -> Box:
    n = str(node["id"])
    if "dataset" in node:
        fill, stroke, word = LOOK["dataset"]
        return Box(n, str(node["dataset"]), "dataset", "", x, y, fill, stroke, word)
    status = step.status if step is not None else "pending"
    fill, stroke, word = LOOK.get(status, LOOK["pending"])
    parts = []
    if step is not None:
        if step.cached_from:  # no work done here: where the output came from says more
            parts.append(f"from {step.cached_from[:8]}")
        elif step.duration_ms is not None:
            parts.append(_seconds(step.duration_ms))
        if step.attempts > 1:
            parts.append(f"{step.attempts} tries")
    label = str(node.get("step") or "")
    return Box(n, "" if label == n else label, status, " · ".join(parts), x, y, fill, stroke, word)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s" if ms < 120_000 else f"{ms / 60_000:.1f} min"


def _store(context: Context) -> Any:
    from loopline.pipelines.store import open_pipeline_store

    return open_pipeline_store(context)


def list_runs(context: Context, name: str | None, status: str | None) -> list[RunRecord]:
    runs: list[RunRecord] = _store(context).list_runs(name or None, status or None, limit=RUNS)
    return runs


def load(context: Context, run_id: str) -> RunPage:
    """``NotFound`` when there is no run ``run_id``."""
    store = _store(context)
    run: RunRecord = store.get_run(run_id)
    steps: list[StepRecord] = store.steps(run_id)
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    return RunPage(run, steps, dag(run.graph, steps), counts)


__all__ = ["LOOK", "Box", "Dag", "Edge", "RunPage", "dag", "layers", "list_runs", "load"]
