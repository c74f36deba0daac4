"""``loopline dora``: DORA metrics for models; ``loopline why REQUEST_ID``: what made a prediction.

Both read the metadata database (and, for ``why``, the inference log in the artifact store), or ask
the server when the tracking URI is one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli.common import TrackingUri, fmt_time, settings
from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from rich.tree import Tree

    from loopline.automation.dora import DoraFigures, DoraReport, Durations
    from loopline.automation.why import Explanation

Format = Annotated[str, typer.Option("--format", "-f", help="table (tree for why) or json.")]


def _check_format(fmt: str, human: str) -> None:
    if fmt not in (human, "json"):
        raise InvalidInput(f"Unknown format {fmt!r}.", hint=f"Use {human} or json.")


def fmt_ms(ms: float | None) -> str:
    """A duration as people read it: 45s, 12m, 3.5h, 2.1d."""
    if ms is None:
        return "-"
    s = ms / 1000
    for limit, unit, size in ((120, "s", 1), (7200, "m", 60), (172_800, "h", 3600)):
        if abs(s) < limit:
            return f"{s / size:.0f}{unit}" if unit != "h" else f"{s / size:.1f}h"
    return f"{s / 86400:.1f}d"


def dora(
    window: Annotated[str, typer.Option("--window", "-w", help="How far back: 12h, 30d, 2w.")] = "30d",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this registered model.")] = None,
    fmt: Format = "table",
    tracking_uri: TrackingUri = None,
) -> None:
    """DORA metrics for models over a window: deployment frequency (promotions), lead time (data or
    code change → serving), change failure rate (rolled back ÷ reached traffic) and time to restore
    (regression detected → restored), per model and overall. Read from the loop's events."""
    from loopline.automation.dora import read_dora
    from loopline.context import Context

    _check_format(fmt, "table")
    report = read_dora(Context(settings(tracking_uri)), window, model=model)
    if fmt == "json":
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    from rich.console import Console

    Console().print(dora_table(report, window))


def dora_table(report: DoraReport, window: str) -> Any:
    """The report as a rich table: one row per model, then the overall figures."""
    from rich.table import Table

    table = Table(title=f"DORA metrics, last {window} (to {fmt_time(report.until_ms)} UTC)")
    for col in ("model", "deploys", "per day", "lead time p50 / p90", "change failures", "restore p50 / p90"):
        table.add_column(col, justify="left" if col == "model" else "right")

    def durations(d: Durations) -> str:
        return "-" if not d.count else f"{fmt_ms(d.median_ms)} / {fmt_ms(d.p90_ms)} (n={d.count})"

    def row(name: str, f: DoraFigures, style: str = "") -> None:
        rate = "-" if f.change_failure_rate is None else f"{f.change_failure_rate:.0%}"
        table.add_row(
            name,
            str(f.deployments),
            f"{f.deployments_per_day:.2f}",
            durations(f.lead_time),
            f"{rate} ({f.failures}/{f.rollouts})",
            durations(f.time_to_restore),
            style=style,
        )

    for name, figures in sorted(report.models.items()):
        row(name, figures)
    if report.model is None:
        row("all models", report.overall, "bold")
    elif not report.models:
        row(report.model, report.overall)
    return table


def why(
    request_id: Annotated[str, typer.Argument(help="The X-Request-Id the inference server answered with.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="tree or json.")] = "tree",
    tracking_uri: TrackingUri = None,
) -> None:
    """Why did this prediction come out this way? The deployment revision and model version that
    served the request, and that version's run, code commit, parameters, data, features, gate verdict
    and rollout."""
    from loopline.automation.why import explain
    from loopline.context import Context

    _check_format(fmt, "tree")
    found = explain(Context(settings(tracking_uri)), request_id)
    if fmt == "json":
        typer.echo(json.dumps(found.to_json(), indent=2))
        return
    from rich.console import Console

    Console().print(why_tree(found))


def _short(value: Any, width: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _pairs(mapping: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(mapping.items())) or "(none)"


def why_tree(x: Explanation) -> Tree:
    """The explanation as a rich tree, from the request down to the data and the loop."""
    from rich.markup import escape
    from rich.tree import Tree

    s = x.served
    status = f"status {s.status}" + (f": {escape(s.error)}" if s.error else "")
    when = f"{fmt_time(s.time_ms)} UTC"
    root = Tree(f"[bold]request {escape(s.request_id)}[/] at {when} ({status}, {s.latency_ms:.1f} ms)")
    io = root.add(f"answered by [bold]{escape(s.model_uri)}[/] ({s.role}, {s.rows} rows)")
    io.add(f"inputs: {escape(_short(s.inputs))}")
    io.add(f"outputs: {escape(_short(s.outputs))}")
    for uri in x.shadows:
        io.add(f"shadowed by {escape(uri)}")
    if (d := x.deployment) is not None:
        node = root.add(
            f"deployment [bold]deployments:/{escape(d.name)}[/] revision {d.revision} "
            f"(by {escape(d.actor)} at {fmt_time(d.time_ms)}"
            + (f": {escape(d.comment)}" if d.comment else "")
            + ")"
        )
        for model, weight in d.routes.items():
            resolved = d.resolved.get(model)
            arrow = f" → {resolved}" if resolved and resolved != model else ""
            mark = " [green]← this request[/]" if model == d.route else ""
            node.add(f"route {escape(model)}{escape(arrow)} weight {weight:g}{mark}")
        if d.shadow:
            node.add(f"shadow {escape(d.shadow)}")
    if (v := x.version) is not None:
        node = root.add(
            f"model version [bold]{escape(v.uri)}[/] registered {fmt_time(v.created_ms)}"
            + (f", aliases {', '.join(v.aliases)}" if v.aliases else "")
        )
        node.add(f"source {escape(v.source)}")
    if (r := x.run) is not None:
        node = root.add(
            f"run [bold]{escape(r.run_id)}[/] {escape(r.run_name)} ({r.status}, experiment {r.experiment_id})"
        )
        commit = r.code_commit + (" (uncommitted changes)" if r.code_dirty else "")
        node.add(f"code commit {escape(commit) or '(not recorded)'}")
        node.add(f"params: {escape(_pairs(r.params))}")
        metrics = {k: f"{m:.6g}" if isinstance(m, float) else m for k, m in r.metrics.items()}
        node.add(f"metrics: {escape(_pairs(metrics))}")
        for ds in r.datasets:
            node.add(
                f"dataset input {escape(ds.name)} ({escape(ds.context or 'input')}, digest {ds.digest[:12]})"
            )
    up = x.upstream
    if any((up.datasets, up.features, up.pipelines, up.code)):
        node = root.add("made from")
        for label, uris in (
            ("data", up.datasets),
            ("features", up.features),
            ("pipeline", up.pipelines),
            ("code", up.code),
        ):
            for uri in uris:
                node.add(f"{label} {escape(uri)}")
    if x.gate is not None:
        verdict = "[green]passed[/]" if x.gate_passed else "[red]failed[/]"
        node = root.add(f"gate {verdict} at {fmt_time(x.gate.time_ms)} ({escape(x.gate.object_uri)})")
        rules = x.gate.payload.get("rules")
        for rule in rules if isinstance(rules, list) else ():
            if isinstance(rule, dict):
                ok = "passed" if rule.get("passed") else "failed"
                why_text = f": {rule['why']}" if rule.get("why") else ""
                node.add(escape(f"{rule.get('kind', 'rule')} {ok}{why_text}"))
    if x.rollout:
        node = root.add(f"rollout {escape(x.rollout[0].object_uri)}")
        for e in x.rollout:
            details = {
                k: v for k, v in e.payload.items() if k in ("stage", "weight", "reason", "passed", "by")
            }
            shown = escape(_pairs(details)) if details else ""
            node.add(f"{fmt_time(e.time_ms)} {escape(e.action)} {shown}".rstrip())
    for note in x.notes:
        root.add(f"[dim]note: {escape(note)}[/]")
    return root


__all__ = ["dora", "dora_table", "fmt_ms", "why", "why_tree"]
