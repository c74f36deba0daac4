"""``loopline pipeline …`` and ``loopline sweep``: run, resume, inspect and schedule pipelines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import TrackingUri, fmt_duration, fmt_time
from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.pipelines.render import Progress, render_graph, run_json, short, steps_table, summary

if TYPE_CHECKING:
    from loopline.pipelines.store import PipelineStore

app = typer.Typer(
    help="Run pipelines of typed Python steps, cached and reproducible, on this machine or on Ray.\n\n"
    "A pipeline is named [bold]path/to/file.py:function[/] or [bold]package.module:function[/]. Each run "
    "records its code version, environment, seed, parameters, inputs and outputs, and is also a tracked "
    "run ([bold]runs:/RUN_ID[/]). Steps whose code, inputs and parameters are unchanged are skipped and "
    "their outputs reused; [bold]--explain[/] says why each step ran or was skipped.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
schedule_app = typer.Typer(
    help="Run a pipeline on a cron schedule. [bold]loopline server[/] runs due slots (checked every "
    "LOOPLINE_SCHEDULER_INTERVAL seconds, default 30); each slot runs once, across restarts and servers.",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")

Params = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A parameter, NAME=VALUE (YAML value: 0.1, true, [1,2]). Repeatable."),
]
Config = Annotated[
    Path | None, typer.Option("--config", "-c", help="A YAML file of parameters.", exists=True)
]
ExecutorOpt = Annotated[
    str | None,
    typer.Option(
        "--executor", "-e", envvar="LOOPLINE_EXECUTOR", help="local (default), ray, or ray://head:10001."
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="text or json.")]


def _settings(tracking_uri: str | None, *, create: bool = False) -> Settings:
    from loopline.cli.common import settings

    return settings(tracking_uri, create=create)


def parse_params(config: Path | None, overrides: list[str] | None) -> dict[str, Any]:
    """Parameters from a YAML file overlaid with ``NAME=VALUE`` options."""
    import yaml

    out: dict[str, Any] = {}
    if config is not None:
        loaded = yaml.safe_load(config.read_text()) or {}
        if not isinstance(loaded, dict):
            raise InvalidInput(
                f"{config} is not a mapping of parameters.", hint="Write one NAME: VALUE per line."
            )
        out.update(loaded)
    for item in overrides or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"Invalid parameter {item!r}.", hint="Use -p NAME=VALUE, e.g. -p lr=0.1.")
        out[name.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def _finish(result: Any, fmt: str, explain: bool) -> None:
    from loopline.pipelines.results import StepFailed

    con = Console()
    if fmt == "json":
        typer.echo(run_json(result))
    else:
        if explain:
            con.print(steps_table(list(result.steps.values()), "Why each step ran or was skipped"))
        summary(con, result)
    if result.status != "succeeded":
        raise StepFailed(
            (result.error.splitlines()[0] if result.error else f"Pipeline run {result.run_id} failed."),
            hint=f"fix the step, then resume with: {result.resume_command}",
        )


_RUN_HELP = (
    "Run a pipeline: [bold]loopline pipeline run train.py:train --config prod.yaml -p lr=0.1[/]\n\n"
    "Parameters come from the pipeline's defaults, then --config, then -p. Steps run in threads of this "
    "process (a step with a timeout or isolate=True in a process of its own); [bold]--executor ray[/] runs "
    "each step as a Ray task. After a failure the exact resume command is printed."
)


@app.command("run", help=_RUN_HELP)
def run(
    target: Annotated[str, typer.Argument(help="FILE.py:PIPELINE or package.module:PIPELINE.")],
    config: Config = None,
    param: Params = None,
    executor: ExecutorOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step, reusing nothing.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Say why each step ran or was skipped.")] = False,
    isolate: Annotated[
        bool, typer.Option("--isolate", help="Run every step in a process of its own.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Parallel step slots (local).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for every step (default: new).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    fmt: FormatOpt = "text",
    schedule: Annotated[str, typer.Option(hidden=True)] = "",
    slot: Annotated[int, typer.Option(hidden=True)] = 0,
    tracking_uri: TrackingUri = None,
) -> None:
    from loopline.pipelines import Runner, load_target

    pipeline = load_target(target)
    params = parse_params(config, param)
    settings = _settings(tracking_uri, create=True)
    with Runner(settings, executor=executor, max_workers=workers, isolate_all=isolate) as runner:
        on_start = None
        if schedule:

            def on_start(run_id: str) -> None:
                runner.store.set_slot_result(schedule, slot, run_id=run_id)

        runner.on_event = Progress(explain, quiet or fmt == "json", on_start)
        result = runner.run(pipeline, params, cache=not no_cache, seed=seed, schedule=schedule)
    _finish(result, fmt, explain)


@app.command("resume")
def resume(
    run_id: Annotated[str, typer.Argument(help="The failed or interrupted run.")],
    executor: ExecutorOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not reuse other runs' outputs.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Say why each step ran or was skipped.")] = False,
    fmt: FormatOpt = "text",
    tracking_uri: TrackingUri = None,
) -> None:
    """Continue a failed or interrupted run: steps that finished are kept, the rest run (same run id)."""
    from loopline.pipelines import Runner

    with Runner(_settings(tracking_uri), executor=executor) as runner:
        runner.on_event = Progress(explain, fmt == "json")
        result = runner.resume(run_id, cache=not no_cache)
    _finish(result, fmt, explain)


@app.command("rerun")
def rerun(
    run_id: Annotated[str, typer.Argument(help="The run to repeat.")],
    executor: ExecutorOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when the outputs differ.")] = False,
    fmt: FormatOpt = "text",
    tracking_uri: TrackingUri = None,
) -> None:
    """Repeat a run (same code target, parameters and seed, no cache) and say whether its outputs matched."""
    from loopline.pipelines import Runner
    from loopline.pipelines.reproduce import rerun as do_rerun

    with Runner(_settings(tracking_uri), executor=executor) as runner:
        runner.on_event = Progress(False, fmt == "json")
        report = do_rerun(runner, run_id)
    con = Console()
    if fmt == "json":
        typer.echo(json.dumps(report.to_json()))
    else:
        con.print(f"rerun of {run_id}: run {report.rerun.run_id} ({report.rerun.status})", highlight=False)
        for node in report.same:
            con.print(f"  [green]=[/] {node}: same output", highlight=False)
        for node in report.different:
            con.print(f"  [red]≠[/] {node}: different output ({report.differences[node]})", highlight=False)
        for node in report.missing:
            con.print(f"  [yellow]?[/] {node}: did not succeed in both runs", highlight=False)
        for change in report.environment:
            con.print(f"  [dim]environment:[/] {change}", highlight=False)
        if report.matched:
            con.print(f"[green]Reproduced:[/] all {len(report.same)} step outputs are identical.")
        else:
            con.print(
                "[red]Did not reproduce[/]"
                + (" (the environment changed too)." if report.environment else ".")
            )
    if check and not report.matched:
        raise typer.Exit(1)


def _store(tracking_uri: str | None, *, create: bool = False) -> PipelineStore:
    """The pipeline store of the tracking URI: its database, or ``loopline server`` over REST."""
    from loopline.context import Context
    from loopline.pipelines.store import open_pipeline_store

    return open_pipeline_store(Context(_settings(tracking_uri, create=create)))


@app.command("runs", hidden=True)  # `pipeline runs` reads as naturally as `pipeline list`
@app.command("list")
def list_(
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only this pipeline.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="running, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    fmt: FormatOpt = "text",
    tracking_uri: TrackingUri = None,
) -> None:
    """List pipeline runs, newest first, with how many steps ran, came from the cache or failed."""
    store = _store(tracking_uri)
    runs = store.list_runs(name, status, limit=limit)
    rows = []
    for r in runs:
        counts: dict[str, int] = {}
        for s in store.steps(r.run_id):
            counts[s.status] = counts.get(s.status, 0) + 1
        rows.append((r, counts))
    if fmt == "json":
        typer.echo(
            json.dumps(
                [
                    {
                        "run_id": r.run_id,
                        "name": r.name,
                        "status": r.status,
                        "start_time": r.start_time,
                        "end_time": r.end_time,
                        "steps": c,
                        "params": r.params,
                    }
                    for r, c in rows
                ]
            )
        )
        return
    table = Table()
    for h in ("Run", "Pipeline", "Status", "Started", "Duration", "Ran", "Cached", "Failed", "Params"):
        table.add_column(h, no_wrap=h in ("Run", "Status"), overflow="fold" if h == "Run" else "ellipsis")
    for r, c in rows:
        table.add_row(
            r.run_id,
            r.name,
            r.status,
            fmt_time(r.start_time),
            fmt_duration(r.start_time, r.end_time),
            str(c.get("succeeded", 0)),
            str(c.get("cached", 0)),
            str(c.get("failed", 0) + c.get("upstream_failed", 0)),
            short(r.params, 40),
        )
    Console().print(table)


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="A pipeline run id.")],
    fmt: FormatOpt = "text",
    tracking_uri: TrackingUri = None,
) -> None:
    """Show a run: parameters, code version, environment, seed, inputs, every step and its output."""
    store = _store(tracking_uri)
    r = store.get_run(run_id)
    steps = store.steps(run_id)
    env = dict(r.environment)
    if fmt == "json":
        out = {
            **{
                k: getattr(r, k)
                for k in (
                    "run_id",
                    "name",
                    "target",
                    "status",
                    "params",
                    "seed",
                    "executor",
                    "error",
                    "rerun_of",
                    "sweep_id",
                    "schedule",
                    "start_time",
                    "end_time",
                )
            },
            "environment": {k: v for k, v in env.items() if k != "packages"},
            "steps": [s.__dict__ for s in steps],
        }
        typer.echo(json.dumps(out, default=str))
        return
    con = Console()
    git = env.get("git", {})
    con.print(
        f"[bold]{r.name}[/] run {r.run_id} · {r.status} · {fmt_time(r.start_time)} · "
        f"{fmt_duration(r.start_time, r.end_time)}",
        highlight=False,
    )
    con.print(f"target {r.target} · seed {r.seed} · executor {r.executor}", highlight=False)
    if git:
        dirty = f" + uncommitted changes {git.get('changes_hash', '')[:12]}" if git.get("dirty") else ""
        con.print(f"git {git.get('commit', '')[:12]}{dirty}", highlight=False)
    con.print(
        f"Python {env.get('python', {}).get('version')} · {len(env.get('packages', []))} packages · "
        f"loopline {env.get('loopline')}",
        highlight=False,
    )
    if r.params:
        con.print("params: " + ", ".join(f"{k}={short(v, 40)}" for k, v in r.params.items()), highlight=False)
    for node, info in env.get("inputs", {}).items():
        con.print(f"input {node}: {info['ref']} ({info['digest'][:12]})", highlight=False)
    con.print(steps_table(steps, "Steps"))
    if r.error:
        con.print(f"[red]{r.error.splitlines()[0]}[/]", highlight=False)
    if r.status == "failed":
        from loopline.pipelines.results import resume_command

        con.print(f"Resume with: [bold]{resume_command(r.run_id, _settings(None))}[/]", highlight=False)


@app.command("graph")
def graph(
    ref: Annotated[str, typer.Argument(help="A run id, or FILE.py:PIPELINE for the graph before any run.")],
    config: Config = None,
    param: Params = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Print the DAG: each step under the step it follows, with its status, cache hit and duration."""
    if ":" in ref:
        from loopline.pipelines import load_target

        p = load_target(ref)
        g = p.build(p.resolve_params(parse_params(config, param))).to_json()
        steps: dict[str, Any] = {}
        title = f"[bold]{p.name}[/] (not run)"
    else:
        store = _store(tracking_uri)
        r = store.get_run(ref)
        g, steps = dict(r.graph), {s.node: s for s in store.steps(ref)}
        title = f"[bold]{r.name}[/] run {r.run_id} · {r.status}"
    Console().print(render_graph(g, steps, title))


@schedule_app.command("add")
def schedule_add(
    name: Annotated[str, typer.Argument(help="A name for the schedule.")],
    target: Annotated[str, typer.Argument(help="FILE.py:PIPELINE or package.module:PIPELINE.")],
    cron: Annotated[str, typer.Option("--cron", help="When, e.g. '0 3 * * *' (03:00 UTC daily).")],
    config: Config = None,
    param: Params = None,
    executor: Annotated[str, typer.Option("--executor", "-e", help="Executor for its runs.")] = "",
    tracking_uri: TrackingUri = None,
) -> None:
    """Schedule a pipeline by cron expression (UTC); the parameters are checked now."""
    import time

    from loopline.pipelines import load_target
    from loopline.pipelines.schedule import validate_cron
    from loopline.pipelines.types import ScheduleRecord

    p = load_target(target)
    params = parse_params(config, param)
    p.resolve_params(params)
    resolved = p.target  # an absolute path for files: the server runs it from anywhere
    store = _store(tracking_uri, create=True)
    store.add_schedule(
        ScheduleRecord(name, resolved, validate_cron(cron), params, executor, True, int(time.time() * 1000))
    )
    Console().print(f"scheduled [bold]{name}[/]: {resolved} at '{cron}' (UTC)", highlight=False)


@schedule_app.command("list")
def schedule_list(fmt: FormatOpt = "text", tracking_uri: TrackingUri = None) -> None:
    """List schedules with their last claimed slot and its run.

    [bold]--format json[/]: a list of schedules (name, cron, target, enabled, params, executor, …) with
    [bold]last_slot_ms[/] and [bold]last_run_id[/]."""
    store = _store(tracking_uri)
    if fmt == "json":
        import dataclasses

        from loopline.cli.common import print_json

        out = []
        for s in store.list_schedules():
            slots = store.slots(s.name)
            last = slots[-1] if slots else None
            row = dataclasses.asdict(s) if dataclasses.is_dataclass(s) else dict(vars(s))
            out.append(
                {**row, "last_slot_ms": last[0] if last else None, "last_run_id": last[2] if last else None}
            )
        print_json(out)
        return
    table = Table("Name", "Cron", "Target", "Enabled", "Params", "Last slot", "Last run")
    for s in store.list_schedules():
        slots = store.slots(s.name)
        last = slots[-1] if slots else None
        table.add_row(
            s.name,
            s.cron,
            s.target,
            "yes" if s.enabled else "no",
            short(dict(s.params), 30),
            fmt_time(last[0]) if last else "-",
            (last[2] or last[3][:40]) if last else "-",
        )
    Console().print(table)


@schedule_app.command("remove")
def schedule_remove(name: str, tracking_uri: TrackingUri = None) -> None:
    """Delete a schedule (runs it made stay)."""
    _store(tracking_uri).remove_schedule(name)
    Console().print(f"removed schedule {name}")


@schedule_app.command("enable")
def schedule_enable(name: str, tracking_uri: TrackingUri = None) -> None:
    """Resume a paused schedule."""
    _store(tracking_uri).set_schedule_enabled(name, True)


@schedule_app.command("disable")
def schedule_disable(name: str, tracking_uri: TrackingUri = None) -> None:
    """Pause a schedule (no slot is claimed while it is disabled)."""
    _store(tracking_uri).set_schedule_enabled(name, False)


@schedule_app.command("tick")
def schedule_tick(tracking_uri: TrackingUri = None) -> None:
    """Claim and launch due slots once, as the server would (for setups without a server)."""
    from loopline.pipelines.schedule import Scheduler, launch_process

    store = _store(tracking_uri)
    won = Scheduler(store, launch_process(_settings(tracking_uri))).tick()
    for name, slot in won:
        Console().print(f"launched {name} for slot {fmt_time(slot)}", highlight=False)
    if not won:
        Console().print("no slot due", style="dim")


# ---- sweep (registered as the top-level `loopline sweep`) -----------------------------------


def sweep(
    target: Annotated[str, typer.Argument(help="FILE.py:PIPELINE or package.module:PIPELINE.")],
    space: Annotated[
        list[str],
        typer.Option(
            "--space", "-s", help="NAME=v1,v2 | NAME=int:2:8 | NAME=uniform:0:1 | NAME=loguniform:1e-4:1e-1."
        ),
    ],
    method: Annotated[str, typer.Option("--method", "-m", help="grid, random or optuna.")] = "grid",
    trials: Annotated[
        int | None, typer.Option("--trials", "-n", help="How many (random/optuna: 10).")
    ] = None,
    parallel: Annotated[int, typer.Option("--parallel", help="Trials at once.")] = 2,
    metric: Annotated[str, typer.Option("--metric", help="The output to optimise.")] = "output",
    minimize: Annotated[bool, typer.Option("--minimize", help="Lower is better (default: higher).")] = False,
    config: Config = None,
    param: Params = None,
    executor: ExecutorOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the search itself.")] = 0,
    fmt: FormatOpt = "text",
    tracking_uri: TrackingUri = None,
) -> None:
    """Search parameters: every trial a pipeline run (and a tracked run), run in parallel; the best is marked.

    Example: [bold]loopline sweep train.py:train -s lr=0.01,0.1,1 -s depth=int:2:6 -m optuna -n 20
    --metric auc[/]
    """
    from loopline.pipelines import load_target
    from loopline.pipelines.sweeps import sweep as do_sweep

    p = load_target(target)
    err = Console(stderr=True)

    def on_trial(t: Any) -> None:
        if fmt != "json":
            value = f"{metric}={t.value:.6g}" if t.value is not None else f"[red]{t.status}[/] {t.error[:80]}"
            err.print(f"trial {t.number}: {short(t.params, 60)} → {value}", highlight=False)

    result = do_sweep(
        p,
        space,
        metric=metric,
        direction="min" if minimize else "max",
        method=method,
        trials=trials,
        parallel=parallel,
        params=parse_params(config, param),
        settings=_settings(tracking_uri, create=True),
        executor=executor,
        seed=seed,
        on_trial=on_trial,
    )
    best = result.best
    if fmt == "json":
        typer.echo(
            json.dumps(
                {
                    "sweep_id": result.sweep_id,
                    "best_run_id": best.run_id if best else None,
                    "best_value": best.value if best else None,
                    "best_params": best.params if best else None,
                    "trials": [t.__dict__ for t in result.trials],
                },
                default=str,
            )
        )
    else:
        table = Table(
            title=f"sweep {result.sweep_id} ({method}, {'min' if minimize else 'max'} {metric})",
            title_justify="left",
        )
        for h in ("#", "Params", metric, "Run", ""):
            table.add_column(h, overflow="fold")
        for t in result.trials:
            mark = (
                "[green]★ best[/]"
                if best is t
                else ("" if t.status == "succeeded" else f"[red]{t.status}[/]")
            )
            table.add_row(
                str(t.number),
                short(t.params, 50),
                f"{t.value:.6g}" if t.value is not None else "-",
                t.run_id,
                mark,
            )
        Console().print(table)
    if best is None:
        raise InvalidInput(
            "No trial succeeded.", hint="See the trials' errors above (loopline pipeline show RUN)."
        )
    sys.stdout.flush()
