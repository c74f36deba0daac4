"""``python -m benchmarks [--quick] [--only WORKLOAD …]``: run every benchmark module, print ratio tables.

Results are also written as JSON to ``benchmarks/results/<module>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._harness import Options, Report, Row, bytecode_as_installed, terminating_on_sigterm

MODULES = (
    "tracking",
    "registry",
    "serving",
    "data",
    "validation",
    "features",
    "monitoring",
    "pipelines",
    "team_server",
    "team_scale",
    "gate_calibration",
    "loop",
    "security",
)
RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _met(row: Row) -> str:
    if row.error:
        return "[red]error[/]"
    return {None: "", True: "[green]yes[/]", False: "[red]NO[/]"}[row.met]


def table(report: Report) -> Table:
    t = Table(title=report.title, title_justify="left", show_lines=False)
    t.add_column("workload")
    t.add_column("unit")
    t.add_column(report.peer_name, justify="right")
    t.add_column("loopline", justify="right")
    t.add_column("ratio", justify="right")
    t.add_column("goal", justify="right")
    t.add_column("met?", justify="center")
    t.add_column("note", style="dim")
    for row in report.rows:
        ratio = f"{_fmt(row.ratio)}x" if row.ratio is not None else "—"
        note = row.note + (f" [red]{row.error}[/]" if row.error else "")
        t.add_row(row.title, row.unit, _fmt(row.peer), _fmt(row.loopline), ratio, row.goal, _met(row), note)
    return t


def footer(meta: dict[str, Any], quick: bool) -> str:
    """Versions, machine and conditions: a figure means little without them. A module that does
    not record one of them gets this process's (same machine, same environment)."""
    import importlib.metadata as md
    import os
    import platform

    foreign = meta.get("foreign_cpu_cores") or {}
    noise = ", ".join(f"{phase} {cores:.2f}" for phase, cores in foreign.items()) or "not measured"
    mlflow = meta.get("mlflow_version")
    peer = meta.get("peer_version") or (f"mlflow {mlflow}" if mlflow else "")
    loopline = meta.get("loopline_version") or md.version("loopline")
    python, cpus = meta.get("python") or platform.python_version(), meta.get("cpus") or os.cpu_count()
    return (
        f"{peer + ' · ' if peer else ''}loopline {loopline} · Python {python} · {cpus} CPUs · "
        f"{'quick' if quick else 'full'} run in {meta.get('seconds', 0):.0f} s\n"
        f"cores kept busy by other processes during each phase (noise; ~0 is a clean run): {noise}"
    )


def save(report: Report) -> Path:
    """Write ``benchmarks/results/<report.name>.json``; returns its path (relative if under cwd)."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{report.name}.json"
    payload: dict[str, Any] = {"name": report.name, "title": report.title, "meta": report.meta}
    payload["rows"] = [r.to_json() for r in report.rows]
    out.write_text(json.dumps(payload, indent=2) + "\n")
    return out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out


def main(argv: list[str] | None = None) -> int:
    modules: dict[str, ModuleType] = {m: importlib.import_module(f"benchmarks.{m}") for m in MODULES}
    workloads = {w: m for m, mod in modules.items() for w in mod.WORKLOADS}
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Side-by-side benchmarks of Loopline against its peers. Ratio = how many times "
        "better Loopline is (its speed / the peer's speed; for times and memory, the inverse).",
    )
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this workload or module (repeatable, or comma-separated): "
        f"{', '.join([*MODULES, *workloads])}",
    )
    args = parser.parse_args(argv)
    only = {n.strip() for item in args.only for n in item.split(",") if n.strip()}
    unknown = only - set(workloads) - set(MODULES)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")

    bytecode_as_installed()
    console = Console(width=max(Console().width, 150))
    RESULTS.mkdir(exist_ok=True)
    failed = False
    with terminating_on_sigterm():
        for name, mod in modules.items():
            picked = {w for w in only if workloads.get(w) == name}
            if only and name not in only and not picked:
                continue
            t0 = time.perf_counter()
            report: Report = mod.run(Options(quick=args.quick, only=frozenset(picked)))
            report.meta["seconds"] = round(time.perf_counter() - t0, 1)
            console.print()
            console.print(table(report))
            console.print(footer(report.meta, args.quick), style="dim")
            console.print(f"results: {save(report)}")
            failed = failed or any(r.error for r in report.rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
