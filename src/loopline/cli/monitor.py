"""``loopline monitor …``: drift checks from the shell, and monitors that run them on a schedule."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli.common import TrackingUri, fmt_time
from loopline.cli.jobs import NoWait, following
from loopline.errors import InvalidInput, LooplineError

if TYPE_CHECKING:
    from rich.console import JustifyMethod

app = typer.Typer(
    help="Detect data drift, prediction drift and data-quality problems, and watch deployments for them.\n\n"
    "[bold]loopline monitor drift[/] compares two tables once (for notebooks and CI). "
    "[bold]create[/] declares a monitor over a deployment's inference log; [bold]run[/] evaluates it "
    "(the server also runs due monitors on their schedule); [bold]history[/] prints its figures over time.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class Format(StrEnum):
    table = "table"
    json = "json"
    html = "html"


def _pairs(values: list[str] | None, what: str, convert: Any = str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise InvalidInput(f"{what} expects COLUMN=VALUE; got {item!r}.")
        try:
            out[name] = convert(value)
        except ValueError:
            raise InvalidInput(f"{what} {item!r}: {value!r} is not a number.") from None
    return out


def _split(values: list[str] | None) -> list[str]:
    return [c.strip() for v in values or [] for c in v.split(",") if c.strip()]


def _bad_input(e: LooplineError) -> None:
    from loopline.cli.failures import print_error

    print_error(e)
    raise typer.Exit(2 if e.exit_code == 1 else e.exit_code)


def print_report(report: Any, *, title: str = "") -> None:
    """The rich table view of a drift report."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title or None, title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("column", "left"),
        ("kind", "left"),
        ("test", "left"),
        ("statistic", "right"),
        ("p-value", "right"),
        ("threshold", "right"),
        ("drift", "center"),
        ("notes", "left"),
    )
    for name, justify in columns:
        t.add_column(name, justify=justify)
    extra = [(f"prediction: {c.name}", c) for c in [report.prediction_drift] if c is not None]
    extra += [(f"target: {c.name}", c) for c in [report.target_drift] if c is not None]
    for label, c in [*extra, *sorted(report.columns.items(), key=lambda kv: (not kv[1].drifted, kv[0]))]:
        q = c.quality
        notes = []
        if q.get("missing_share"):
            notes.append(f"missing {q['missing_share']:.1%}")
        if q.get("new_categories"):
            notes.append("new: " + ", ".join(q["new_categories"][:3]))
        if q.get("out_of_range_share"):
            notes.append(f"out of range {q['out_of_range_share']:.1%}")
        t.add_row(
            label,
            c.kind,
            c.test,
            f"{c.statistic:.4g}",
            "—" if c.p_value is None else f"{c.p_value:.3g}",
            f"{c.threshold:g}",
            "[red]yes[/]" if c.drifted else "no",
            "; ".join(notes),
        )
    console = Console()
    console.print(t)
    verdict = "[bold red]dataset drift[/]" if report.dataset_drift else "[bold green]no dataset drift[/]"
    console.print(
        f"{verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns drifted "
        f"({report.drift_share:.0%}; threshold {report.options['drift_share']:.0%}, "
        f"{report.options['correction']} correction)"
    )


@app.command("drift")
def drift_command(
    reference: Annotated[
        str,
        typer.Option(
            "--reference",
            "-r",
            help="Reference: a Parquet/CSV file, a datasets:/name/version URI, or a saved profile (.npz).",
            show_default=False,
        ),
    ],
    current: Annotated[
        str,
        typer.Option("--current", "-c", help="Current data: a file or datasets:/ URI.", show_default=False),
    ],
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", "-f", help="table (for people), json (for scripts) or html (a self-contained report)."
        ),
    ] = Format.table,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the JSON or HTML here instead of standard output."),
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit with 1 when the dataset drifted (for CI).")
    ] = False,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns",
            help="Only these columns (comma-separated or repeated). Default: every column of the reference.",
        ),
    ] = None,
    categorical: Annotated[
        list[str] | None, typer.Option("--categorical", help="Treat these numeric columns as categories.")
    ] = None,
    test: Annotated[
        list[str] | None,
        typer.Option(
            "--test",
            help="COLUMN=TEST for one column: ks, wasserstein, psi, jensenshannon, chisquare, g_test.",
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="COLUMN=VALUE: the p-value or distance threshold of one column."),
    ] = None,
    numerical_test: Annotated[str, typer.Option(help="Test for every numerical column.")] = "auto",
    categorical_test: Annotated[str, typer.Option(help="Test for every categorical column.")] = "auto",
    alpha: Annotated[float, typer.Option(help="Significance level of the p-value tests.")] = 0.05,
    min_effect: Annotated[
        float,
        typer.Option(
            help="Smallest KS D / total variation distance that counts as drift, however significant."
        ),
    ] = 0.05,
    drift_share: Annotated[
        float, typer.Option(help="The dataset drifts when this share of columns does.")
    ] = 0.5,
    correction: Annotated[
        str, typer.Option(help="Multiple-testing correction: bh, bonferroni or none.")
    ] = "bh",
    n_bins: Annotated[
        int, typer.Option(help="Quantile bins of the reference for PSI and Jensen-Shannon.")
    ] = 10,
    prediction: Annotated[
        str | None, typer.Option(help="The prediction column (reported as prediction drift).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="The target column (reported as target drift).")] = None,
) -> None:
    """Compare CURRENT with REFERENCE column by column and say which columns drifted, and why.

    Numerical columns get a two-sample Kolmogorov-Smirnov test, categorical ones a two-sample
    chi-square test, at every sample size; p-values are adjusted for testing many columns at once
    (Benjamini-Hochberg) and a column drifts when its adjusted p-value is under --alpha and its
    effect (KS D, or the share of mass that moved) reaches --min-effect. Each column's row says
    which test ran and why.

    Exit status: 0 when the check ran (drift or not), 1 with --fail-on-drift when the dataset
    drifted, 2 on bad input (a missing file, mismatched columns, empty data).

    Example: loopline monitor drift -r train.parquet -c today.parquet --format html -o drift.html
    """
    from loopline.monitoring import ReferenceProfile, drift, render_html

    try:
        ref: Any = ReferenceProfile.load(reference) if reference.endswith(".npz") else reference
        report = drift(
            ref,
            current,
            columns=_split(columns) or None,
            categorical=_split(categorical),
            tests=_pairs(test, "--test"),
            thresholds=_pairs(threshold, "--threshold", float),
            numerical_test=numerical_test,
            categorical_test=categorical_test,
            alpha=alpha,
            min_effect=min_effect,
            drift_share=drift_share,
            correction=correction,
            n_bins=n_bins,
            prediction=prediction,
            target=target,
        )
    except LooplineError as e:
        _bad_input(e)
    except OSError as e:
        _bad_input(InvalidInput(f"Could not read the input: {e}."))
    if fmt is Format.table:
        print_report(report)
    else:
        text = report.to_json() if fmt is Format.json else render_html(report)
        if out is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        else:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"Wrote {out}", err=True)
    if fail_on_drift and report.dataset_drift:
        raise typer.Exit(1)


# ---- monitors ------------------------------------------------------------------------------------


def _monitors(tracking_uri: str | None) -> Any:
    """The monitors client: on the embedded store, or on the server ``LOOPLINE_TRACKING_URI`` names
    (which then runs them: it holds the inference logs)."""
    from loopline.cli.common import settings
    from loopline.monitoring.monitors import Monitors

    return Monitors(settings(tracking_uri))


def _monitor_json(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "target": m.target,
        "reference": m.reference or None,
        "window": m.window,
        "schedule": m.schedule or None,
        "last_run_ms": m.last_run_ms,
        "next_run_ms": m.next_run_ms,
        "webhooks": m.config.get("webhooks", []),
    }


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The monitor's name (letters, digits, '-', '_', '.').")],
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Watch this deployment's inference log.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Or watch a model: models:/name@alias.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            "-r",
            help="datasets:/name/version or a file. "
            "Default: the served model's training dataset, found through lineage at each run.",
        ),
    ] = None,
    window: Annotated[
        str,
        typer.Option(
            "--window", "-w", help="Rows compared per run: a duration (30m, 1h, 7d) or a count (1000rows)."
        ),
    ] = "1h",
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            "-s",
            help="Cron schedule for `loopline server` "
            'to run it, e.g. "*/10 * * * *". Default: only by `loopline monitor run`.',
        ),
    ] = None,
    webhook: Annotated[
        list[str] | None, typer.Option("--webhook", help="POST alerts (JSON) here; repeatable.")
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="KEY=VALUE: drift_share, alpha, "
            "min_effect; accuracy, f1, auc (minimums); rmse, mae (maximums); or COLUMN=test threshold.",
        ),
    ] = None,
    test: Annotated[list[str] | None, typer.Option("--test", help="COLUMN=TEST for one column.")] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="The reference's label column: predictions are compared with it (prediction drift).",
        ),
    ] = None,
    categorical: Annotated[
        list[str] | None, typer.Option("--categorical", help="Numeric columns to treat as categories.")
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Redefine the monitor if it exists.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Declare a monitor over a deployment (or a model alias).

    Each run compares the window's logged inputs with the reference (data drift and data quality),
    the predictions with the reference's labels (prediction drift, with --target), and — for requests
    whose ground truth came back through /feedback — measures accuracy/F1/AUC or RMSE/MAE.

    Example: loopline monitor create churn -d churn-prod --window 1h --schedule "*/10 * * * *"
    --webhook https://hooks.example/ml --threshold accuracy=0.8 --target churned
    """
    mon = _monitors(tracking_uri).create(
        name,
        deployment=deployment,
        model=model,
        reference=reference,
        window=window,
        schedule=schedule,
        webhooks=webhook or [],
        thresholds=_pairs(threshold, "--threshold", float),
        tests=_pairs(test, "--test"),
        target=target,
        categorical=_split(categorical),
        replace=replace,
    )
    due = f", next run {fmt_time(mon.next_run_ms)} UTC" if mon.next_run_ms else ""
    typer.echo(f"Created monitor {mon.name} on {mon.target} (window {mon.window}{due}).")


@app.command("list")
def list_(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """List monitors: what each watches, its window and schedule, and its last run."""
    monitors = _monitors(tracking_uri).list_monitors()
    if fmt is Format.json:
        typer.echo(json.dumps([_monitor_json(m) for m in monitors], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table()
    for col in ("name", "target", "reference", "window", "schedule", "last run", "next run"):
        t.add_column(col)
    for m in monitors:
        t.add_row(
            m.name,
            m.target,
            m.reference or "(lineage)",
            m.window,
            m.schedule or "-",
            fmt_time(m.last_run_ms),
            fmt_time(m.next_run_ms),
        )
    Console().print(t)


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="The monitor to run.")],
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="table, json, or html (the drift report).")
    ] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write JSON/HTML here.")] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit with 1 when it alerted.")
    ] = False,
    no_wait: NoWait = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Run a monitor now: read the inference log rows it has not seen, evaluate its window, store the
    figures, and alert (event + webhooks) on drift or degraded performance. Through a server, the
    server runs it as a job (it holds the inference log): leaving (Ctrl-C, --no-wait) does not stop
    it, and `loopline monitor show` lists its run once done."""
    mons = _monitors(tracking_uri)
    remote = mons.context.is_remote
    with following(f"Monitor {name}", no_wait=no_wait, remote=remote, started=f"Started monitor {name}") as p:
        result = mons.run(name, progress=p)
    if fmt is Format.html:
        if result.report is None:
            raise InvalidInput(f"Monitor {name} has no rows in its window yet: no report to write.")
        from loopline.monitoring.html import render_html

        hist = _history_by_column(mons.history(name))
        page = render_html(result.report, out, history=hist)
        if out is None:
            sys.stdout.write(page)
    elif fmt is Format.json:
        body = {
            "run_id": result.run.id,
            "status": result.run.status,
            "reference": result.reference,
            "metrics": result.metrics,
            "alerts": result.alerts,
            "deliveries": [d.__dict__ for d in result.deliveries],
            "report": result.report.to_dict() if result.report else None,
        }
        text = json.dumps(body, indent=2, default=str)
        out.write_text(text) if out else typer.echo(text)
    else:
        if result.report is not None:
            print_report(
                result.report,
                title=f"monitor {name}: {result.run.rows:,} rows in the window "
                f"({result.run.new_rows:,} new), reference {result.reference}",
            )
        else:
            typer.echo(f"monitor {name}: no rows in the window yet (reference {result.reference}).")
        perf = {k: v for k, v in result.metrics.items() if k.startswith("performance.")}
        if perf:
            typer.echo("performance: " + ", ".join(f"{k.split('.', 1)[1]} {v:.4g}" for k, v in perf.items()))
        for a in result.alerts:
            typer.echo(f"alert: {a['event']}")
        for d in result.deliveries:
            typer.echo(
                f"webhook {d.url}: {'delivered' if d.ok else 'FAILED ' + d.error} ({d.attempts} attempts)"
            )
    if fail_on_drift and result.alerts:
        raise typer.Exit(1)


def _history_by_column(points: list[tuple[int, str, float]]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for t, key, value in points:
        if key.startswith("drift."):
            out.setdefault(key.removeprefix("drift."), []).append((t, value))
    return out


@app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="The monitor.")],
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            "-k",
            help="Only these metrics (repeatable), e.g. drift_share, drift.age, performance.accuracy.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many points (the newest).")] = 1000,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Print a monitor's figures over time: one row per run, one column per metric."""
    points = _monitors(tracking_uri).history(name, key or None, limit=limit)
    runs: dict[int, dict[str, float]] = {}
    for t, k, v in points:
        runs.setdefault(t, {})[k] = v
    if fmt is Format.json:
        typer.echo(json.dumps([{"time_ms": t, "metrics": m} for t, m in runs.items()], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    perf = sorted(
        {
            k
            for m in runs.values()
            for k in m
            if k.startswith("performance.") and k != "performance.labelled_rows"
        }
    )
    keys = key or ["rows", "new_rows", "drift_share", "drifted_columns", *perf]
    t = Table(title=f"monitor {name}")
    t.add_column("time (UTC)")
    for k in keys:
        t.add_column(k.removeprefix("performance."), justify="right")
    for ts, m in runs.items():
        t.add_row(fmt_time(ts), *[f"{m[k]:.4g}" if k in m else "-" for k in keys])
    Console().print(t)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The monitor.")],
    runs: Annotated[int, typer.Option("--runs", help="Show this many of its newest runs.")] = 10,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Show a monitor's definition and its newest runs."""
    mons = _monitors(tracking_uri)
    m = mons.get(name)
    recent = mons.runs(name, runs)
    if fmt is Format.json:
        body = {
            **_monitor_json(m),
            "config": dict(m.config),
            "created_ms": m.created_ms,
            "runs": [
                {
                    "id": r.id,
                    "started_ms": r.started_ms,
                    "finished_ms": r.finished_ms,
                    "status": r.status,
                    "rows": r.rows,
                    "new_rows": r.new_rows,
                    "dataset_drift": r.dataset_drift,
                    "drift_share": r.drift_share,
                    "error": r.summary.get("error"),
                }
                for r in recent
            ],
        }
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]monitor {m.name}[/] ({m.uri})", highlight=False)
    for label, value in (
        ("target", m.target),
        ("reference", m.reference or "(the served model's training data, through lineage)"),
        ("window", m.window),
        ("schedule", m.schedule or "-"),
        ("webhooks", ", ".join(m.config.get("webhooks", [])) or "-"),
        ("last run", fmt_time(m.last_run_ms)),
        ("next run", fmt_time(m.next_run_ms)),
    ):
        console.print(f"  {label:<10} {value}", highlight=False)
    t = Table(title="runs")
    for col in ("id", "started (UTC)", "status", "rows", "new rows", "drift share"):
        t.add_column(col)
    for r in recent:
        share = "-" if r.drift_share is None else f"{r.drift_share:.0%}"
        t.add_row(str(r.id), fmt_time(r.started_ms), r.status, f"{r.rows:,}", f"{r.new_rows:,}", share)
    console.print(t)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="The monitor to delete, with its runs and figures.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Delete a monitor, its runs and its figures (its events stay in the audit trail)."""
    _monitors(tracking_uri).delete(name)
    typer.echo(f"Deleted monitor {name}.")


@app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="The monitor.")],
    run_id: Annotated[
        int | None, typer.Option("--run", help="This run's report. Default: the newest run that has one.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or html.")] = Format.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the JSON or HTML here.")] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Print (or write as HTML) the drift report a monitor's run stored, without running it again."""
    mons = _monitors(tracking_uri)
    found = mons.report(name, run_id)
    if found is None:
        raise InvalidInput(
            f"Monitor {name} has no stored report yet.",
            hint=f"Run it (`loopline monitor run {name}`) once rows are logged.",
        )
    if fmt is Format.table:
        print_report(found, title=f"monitor {name}")
        return
    if fmt is Format.html:
        from loopline.monitoring.html import render_html

        text = render_html(found, history=_history_by_column(mons.history(name)))
    else:
        text = found.to_json(histograms=True)
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"Wrote {out}", err=True)
