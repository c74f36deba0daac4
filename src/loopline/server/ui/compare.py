"""Runs side by side: the params that differ, the latest metrics, and parallel coordinates of both.

The page overlays each metric's curves client-side (one ``/ui/api/metric`` request per run and key);
this module decides everything the server draws: which rows differ, and the parallel coordinates
as SVG geometry (one axis per differing param and per metric, one polyline per run), so the plot
needs no script and reads the same in a screenshot as in a browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from loopline.errors import InvalidInput
from loopline.tracking.sql_store import SqlTrackingStore
from loopline.tracking.types import Run

MAX_RUNS = 20
MAX_AXES = 16  # past this an axis is a few pixels wide: the tables hold the rest
# Colour-blind-safe (Okabe-Ito, then Tol's muted): run i has COLORS[i % len], in curves and plot alike.
COLORS = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#332288",
    "#999933",
    "#882255",
    "#44aa99",
)
AXIS_GAP = 130  # px between axes
PLOT_TOP, PLOT_HEIGHT = 52, 220


@dataclass(frozen=True, slots=True)
class Row:
    """One param or metric across the runs: ``values[i]`` is run i's ("" or None when it has none)."""

    key: str
    values: tuple[str, ...]
    differs: bool


@dataclass(frozen=True, slots=True)
class Axis:
    kind: str  # "param" or "metric"
    key: str
    x: float
    top: str  # the label at the top of the axis (its highest value) and at the bottom
    bottom: str


@dataclass(frozen=True, slots=True)
class Line:
    run_index: int
    color: str
    path: str  # SVG path data; a run missing a value breaks its line there
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Parallel:
    width: int
    height: int
    axes: list[Axis]
    lines: list[Line]
    top: int = PLOT_TOP  # y of each axis's highest value
    bottom: int = PLOT_TOP + PLOT_HEIGHT


@dataclass(frozen=True, slots=True)
class Comparison:
    runs: list[Run]
    colors: list[str]
    params: list[Row]  # differing ones first, then the same, each by key
    metrics: list[Row]
    metric_keys: list[str]  # every metric any run logged, for the overlaid charts
    parallel: Parallel | None  # None with fewer than 2 runs or no axis

    @property
    def differing_params(self) -> int:
        return sum(r.differs for r in self.params)


def check_ids(run_ids: Sequence[str]) -> list[str]:
    """The distinct IDs in order; ``InvalidInput`` for none or more than ``MAX_RUNS``."""
    ids = list(dict.fromkeys(r.strip() for r in run_ids if r.strip()))
    if not ids:
        raise InvalidInput("No runs to compare.", hint="Tick runs in an experiment's runs table.")
    if len(ids) > MAX_RUNS:
        raise InvalidInput(
            f"{len(ids)} runs selected; at most {MAX_RUNS} can be compared.", hint="Tick fewer runs."
        )
    return ids


def load(store: SqlTrackingStore, run_ids: Sequence[str]) -> Comparison:
    """The runs (``NotFound`` for one that is not there) and what the page shows of them."""
    runs = [store.get_run(r) for r in check_ids(run_ids)]
    params = _rows([{k: v for k, v in r.data.params.items()} for r in runs])
    metric_maps = [{m.key: m.value for m in r.data.latest_metrics} for r in runs]
    metric_keys = sorted({k for m in metric_maps for k in m})
    metrics = [
        Row(k, tuple(_num(m.get(k)) for m in metric_maps), len({m.get(k) for m in metric_maps}) > 1)
        for k in metric_keys
    ]
    colors = [COLORS[i % len(COLORS)] for i in range(len(runs))]
    return Comparison(runs, colors, params, metrics, metric_keys, parallel(runs, colors))


def _num(v: float | None) -> str:
    return "" if v is None else ("NaN" if math.isnan(v) else f"{v:.6g}")


def _rows(maps: list[dict[str, str]]) -> list[Row]:
    keys = sorted({k for m in maps for k in m})
    rows = [Row(k, tuple(m.get(k, "") for m in maps), len({m.get(k) for m in maps}) > 1) for k in keys]
    return sorted(rows, key=lambda r: (not r.differs, r.key))


def _float(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def parallel(runs: list[Run], colors: list[str]) -> Parallel | None:
    """One axis per param that differs between the runs, then one per metric; values scaled to
    each axis's range (numbers) or spread evenly in sorted order (anything else)."""
    if len(runs) < 2:
        return None
    columns: list[tuple[str, str, list[float | None], str, str]] = []  # kind, key, 0..1 per run, top, bottom
    param_keys = sorted({k for r in runs for k in r.data.params})
    for key in param_keys:
        raw = [r.data.params.get(key) for r in runs]
        if len(set(raw)) < 2:
            continue
        nums = [_float(v) if v is not None else None for v in raw]
        if all(n is not None for n, v in zip(nums, raw, strict=True) if v is not None):
            columns.append(("param", key, *_scale(nums)))
        else:
            levels = sorted({v for v in raw if v is not None})
            span = max(len(levels) - 1, 1)
            pos: list[float | None] = [None if v is None else levels.index(v) / span for v in raw]
            columns.append(("param", key, pos, levels[-1], levels[0]))
    metric_keys = sorted({m.key for r in runs for m in r.data.latest_metrics})
    for key in metric_keys:
        values = [r.data.metrics.get(key) for r in runs]
        columns.append(
            ("metric", key, *_scale([v if v is None or math.isfinite(v) else None for v in values]))
        )
    columns = columns[:MAX_AXES]
    if not columns:
        return None
    axes = [
        Axis(kind, key, 60 + i * AXIS_GAP, top, bottom)
        for i, (kind, key, _, top, bottom) in enumerate(columns)
    ]
    lines = []
    for i in range(len(runs)):
        pts: list[tuple[float, float] | None] = []
        for axis, (_, _, pos, _, _) in zip(axes, columns, strict=True):
            p = pos[i]
            pts.append(None if p is None else (axis.x, round(PLOT_TOP + (1 - p) * PLOT_HEIGHT, 1)))
        path, move = [], True
        for pt in pts:
            if pt is None:
                move = True
                continue
            path.append(f"{'M' if move else 'L'}{pt[0]:g},{pt[1]:g}")
            move = False
        lines.append(Line(i, colors[i], " ".join(path), tuple(p for p in pts if p is not None)))
    width = int(axes[-1].x + 60)
    return Parallel(max(width, 240), PLOT_TOP + PLOT_HEIGHT + 40, axes, lines)


def _scale(values: list[float | None]) -> tuple[list[float | None], str, str]:
    """Each value's place between the lowest (0) and the highest (1); all equal: the middle."""
    present = [v for v in values if v is not None]
    if not present:
        return [None] * len(values), "", ""
    lo, hi = min(present), max(present)
    if hi == lo:
        return [None if v is None else 0.5 for v in values], f"{hi:.4g}", f"{lo:.4g}"
    return [None if v is None else (v - lo) / (hi - lo) for v in values], f"{hi:.4g}", f"{lo:.4g}"


__all__ = ["COLORS", "MAX_RUNS", "Comparison", "Parallel", "Row", "check_ids", "load", "parallel"]
