"""How the CLI shows pipeline runs: a progress display, step tables, the DAG as a tree (rich).

Kept apart from the command definitions so that anything else that shows runs (the server's UI,
a notebook) can reuse them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

STATUS = {
    "succeeded": "[green]✓ ran[/]",
    "cached": "[cyan]✓ cached[/]",
    "failed": "[red]✗ failed[/]",
    "upstream_failed": "[yellow]- skipped[/]",
    "running": "[blue]… running[/]",
    "pending": "[dim]· pending[/]",
}


def ms(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value < 120_000 else f"{value / 60_000:.1f}min"


def short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def brief(text: str) -> str:
    """Run ids shortened to 8 characters for tables (``show --format json`` has them whole)."""
    return re.sub(r"\b([0-9a-f]{8})[0-9a-f]{24}\b", r"\1…", text)


class Progress:
    """Renders runner events: a progress bar on stderr and, with --explain, a line per step."""

    def __init__(self, explain: bool, quiet: bool, on_start: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.err = Console(stderr=True)
        self.explain, self.quiet, self.on_start = explain, quiet, on_start
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
            disable=quiet,
        )
        self.task: Any = None
        self.active: dict[str, None] = {}

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "start":
            if self.on_start is not None:
                self.on_start(data["run_id"])
            self.progress.start()
            self.task = self.progress.add_task(f"{data['name']} {data['run_id'][:8]}", total=data["total"])
        elif kind == "step_start":
            self.active[data["node"]] = None
            self._describe()
        elif kind == "step":
            self.active.pop(data["node"], None)
            self.progress.advance(self.task)
            self._describe()
            if self.explain and not self.quiet:
                self.progress.console.print(
                    f"{STATUS.get(data['status'], data['status'])} [bold]{data['node']}[/] "
                    f"[dim]{ms(data.get('duration_ms'))}[/] {data.get('reason', '')}",
                    highlight=False,
                )
        elif kind == "retry" and not self.quiet:
            self.progress.console.print(
                f"[yellow]↻ {data['node']}[/] attempt {data['attempt']} failed ({data['error']}); "
                f"retrying in {data['delay']:.1f}s",
                highlight=False,
            )
        elif kind == "finish":
            self.progress.stop()

    def _describe(self) -> None:
        names = ", ".join(list(self.active)[:4]) + (" …" if len(self.active) > 4 else "")
        self.progress.update(self.task, description=f"running {names}" if names else "")


def summary(con: Console, result: Any) -> None:
    counts: dict[str, int] = {}
    for s in result.steps.values():
        counts[s.status] = counts.get(s.status, 0) + 1
    parts = [
        f"{counts[k]} {label}"
        for k, label in (
            ("succeeded", "ran"),
            ("cached", "cached"),
            ("failed", "failed"),
            ("upstream_failed", "skipped"),
        )
        if counts.get(k)
    ]
    colour = "green" if result.status == "succeeded" else "red"
    con.print(
        f"[{colour}]{result.status}[/] pipeline [bold]{result.name}[/] run {result.run_id}: "
        + ", ".join(parts),
        highlight=False,
    )
    if result.status == "succeeded" and result.outputs is not None:
        con.print(f"outputs: {short(result.outputs, 300)}", highlight=False)
    for s in result.steps.values():
        if s.status == "failed":
            con.print(f"[red]{s.error.splitlines()[0] if s.error else s.node}[/]", highlight=False)


def run_json(result: Any) -> str:
    return json.dumps(
        {
            "run_id": result.run_id,
            "name": result.name,
            "status": result.status,
            "error": result.error,
            "outputs": result.outputs,
            "resume_command": result.resume_command if result.status != "succeeded" else None,
            "steps": [
                {
                    "node": s.node,
                    "step": s.step,
                    "status": s.status,
                    "reason": s.reason,
                    "attempts": s.attempts,
                    "duration_ms": s.duration_ms,
                    "cached_from": s.cached_from,
                    "output_digest": s.output_digest,
                    "error": s.error.splitlines()[0] if s.error else "",
                }
                for s in result.steps.values()
            ],
        },
        default=str,
    )


def steps_table(steps: list[Any], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for h in ("Step", "Status", "Tries", "Duration", "Output", "Why"):
        table.add_column(h, overflow="fold")
    for s in steps:
        out = f"{s.serializer} {s.output_size:,} B" if s.output_digest else "-"
        if s.output_meta.get("model_version"):
            out += f" → {s.output_meta['model_version']}"
        table.add_row(
            s.node,
            STATUS.get(s.status, s.status),
            str(s.attempts or "-"),
            ms(s.duration_ms),
            out,
            brief(s.reason or (s.error.splitlines()[0] if s.error else "")),
        )
    return table


def render_graph(g: dict[str, Any], steps: dict[str, Any], title: str) -> Tree:
    """A tree of the DAG: a node hangs under its first input; its other inputs are listed beside it."""
    tree = Tree(title)
    nodes = {n["id"]: n for n in g.get("nodes", [])}
    under: dict[str, Tree] = {}
    for n in nodes.values():
        deps = n.get("deps", [])
        s = steps.get(n["id"])
        if "dataset" in n:
            label = f"[magenta]{n['id']}[/] dataset {n['dataset']}"
        elif s is None:
            label = f"[bold]{n['id']}[/]" + (f" [dim]({n['step']})[/]" if n["step"] != n["id"] else "")
        else:
            hit = f" [dim]from run {s.cached_from[:8]}[/]" if s.cached_from else ""
            label = f"[bold]{n['id']}[/] {STATUS.get(s.status, s.status)}{hit} [dim]{ms(s.duration_ms)}[/]"
        if len(deps) > 1:
            label += f" [dim]← also {', '.join(deps[1:])}[/]"
        parent = under.get(deps[0], tree) if deps else tree
        under[n["id"]] = parent.add(label)
    return tree


# ---- schedules -------------------------------------------------------------------------------
