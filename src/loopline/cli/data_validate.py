"""``loopline data validate``: run an expectation suite against a dataset version or a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline.cli.common import Format, TrackingUri
from loopline.cli.failures import print_error
from loopline.errors import LooplineError

EXIT_FAILED = 1  # the data failed an expectation of severity "error"
EXIT_BAD_INPUT = 2  # usage errors, unreadable data or suite, a suite naming a missing column
_STDOUT_ROWS = 1000  # failing-row indices per check printed by --format json (the files get all)


def validate(
    target: Annotated[
        str, typer.Argument(help="datasets:/NAME/VERSION, datasets:/NAME@ALIAS, or a file or folder.")
    ],
    suite: Annotated[
        Path | None, typer.Option("--suite", "-s", help="The suite's YAML file.", dir_okay=False)
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, or json on stdout.")] = Format.table,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Write the result as JSON (every failing row) here.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    infer_from: Annotated[
        str | None,
        typer.Option("--infer-from", help="Infer the suite from this reference (dataset URI or file)."),
    ] = None,
    write_suite: Annotated[
        Path | None, typer.Option("--write-suite", help="Save the inferred suite as YAML here.")
    ] = None,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Failing rows shown per failed check.")] = 5,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Store the result with the dataset version.")
    ] = True,
    tracking_uri: TrackingUri = None,
) -> None:
    """Check a dataset version or a file against an expectation suite.

    TARGET is a dataset URI ([bold]datasets:/NAME/VERSION[/], [bold]datasets:/NAME@ALIAS[/],
    [bold]datasets:/NAME[/] for the latest) or a Parquet, CSV or JSON file or folder. The suite is a
    YAML file ([bold]--suite[/]) or is inferred from a reference ([bold]--infer-from[/]: a dataset URI,
    whose stored profile is used, or a file) and can be saved for editing with [bold]--write-suite[/].

    Prints one line per check — observed value, failing rows and their share, the first failing row
    numbers (0-based) — then a sample of the failing rows of each failed check. [bold]--json-out[/]
    writes the full result, every failing row's index included; [bold]--html[/] a self-contained report.
    When TARGET is a dataset version the result is stored with it ([bold]loopline data show[/]).

    Exit status: 0 all checks passed (warnings allowed), 1 some check failed, 2 bad input (usage, an
    unreadable file or suite, a suite naming a column the data does not have).

    Examples:

      [bold]loopline data validate datasets:/customers@latest --suite suite.yaml --html report.html[/]

      [bold]loopline data validate new.parquet --infer-from datasets:/customers/3 --write-suite suite.yaml[/]
    """
    if suite is None and infer_from is None:
        raise typer.BadParameter("give --suite FILE, or --infer-from REFERENCE", param_hint="--suite")
    if suite is not None and infer_from is not None:
        raise typer.BadParameter("give --suite or --infer-from, not both", param_hint="--infer-from")
    if write_suite is not None and infer_from is None:
        raise typer.BadParameter(
            "--write-suite saves an inferred suite: add --infer-from", param_hint="--write-suite"
        )
    out = Console(stderr=fmt is Format.json)  # with --format json, stdout holds only the JSON
    client = _client(tracking_uri, target, infer_from)
    try:
        from loopline.data.validation import Suite, render_html, validate as run

        if infer_from is not None:
            the_suite = _infer(infer_from, client)
            if write_suite is not None:
                the_suite.to_yaml(write_suite)
                out.print(
                    f"Wrote {len(the_suite.expectations)} expectations to {write_suite}", highlight=False
                )
        else:
            assert suite is not None
            the_suite = Suite.from_yaml(suite)
        result = run(target, the_suite, sample_rows=max(sample, 1), client=client)
        if json_out is not None:
            result.to_json(json_out)
        if html is not None:
            render_html(result, html, sample_rows=max(sample, 10))
        stored = _record(result, client) if record and result.uri else None
    except LooplineError as e:
        print_error(e)
        raise typer.Exit(EXIT_BAD_INPUT if e.exit_code == 1 else e.exit_code) from None
    if fmt is Format.json:
        typer.echo(json.dumps(result.to_dict(max_rows=_STDOUT_ROWS), ensure_ascii=False, allow_nan=False))
    else:
        _print(out, result, sample)
    for path, what in ((json_out, "JSON"), (html, "HTML report")):
        if path is not None:
            out.print(f"{what}: {path}", highlight=False)
    if stored:
        out.print(stored, highlight=False)
    if not result.success:
        raise typer.Exit(EXIT_FAILED)


def _client(tracking_uri: str | None, *refs: str | None) -> Any:
    """A data client when a store is named or a dataset URI is involved (files need no store)."""
    if tracking_uri is None and not any(r and r.startswith("datasets:") for r in refs):
        return None
    try:
        from loopline.data import DataClient
    except ImportError:  # pragma: no cover - data versioning is being built alongside
        return None
    from loopline.cli.common import settings

    return DataClient(settings(tracking_uri))


def _infer(reference: str, client: Any) -> Any:
    from loopline.data.profile import profile_table
    from loopline.data.validation import infer_suite

    if reference.startswith("datasets:"):
        from loopline.data import get_dataset_version, scan_dataset

        version = get_dataset_version(reference, client=client)
        stored = dict(version.profile or {})
        profile = stored if stored.get("columns") else profile_table(scan_dataset(version.uri, client=client))
        return infer_suite(profile, name=version.name)
    from loopline.data import read_table

    return infer_suite(profile_table(read_table(reference)), name=Path(reference).stem)


def _record(result: Any, client: Any) -> str | None:
    """Store the result with its dataset version; the message to print."""
    import loopline.data as data

    record = getattr(data, "record_validation", None)
    if record is None:  # pragma: no cover - data versioning is being built alongside
        return "Not stored: this Loopline cannot store validation results yet."
    ident = record(result.uri, result.to_dict(max_rows=_STDOUT_ROWS), client=client)
    return f"Stored with {result.uri} (validation {ident})."


def _status(r: Any) -> str:
    if r.success:
        return "[green]✓[/]"
    return "[yellow]![/]" if r.severity == "warning" else "[red]✗[/]"


def _print(con: Console, result: Any, sample: int) -> None:
    from loopline.data.validation.report import rows_preview, short, unexpected

    table = Table(title=f"{result.suite} on {result.target}", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("Check", no_wrap=True)  # labels have no spaces: folding them reads badly
    table.add_column("Expected")
    table.add_column("Observed")
    table.add_column("Unexpected", justify="right")
    table.add_column("Failing rows")
    for r in result.results:
        observed = r.error if r.error else short(r.observed, 60)
        cells = (r.label, r.expectation.describe(), observed, unexpected(r), rows_preview(r))
        table.add_row(_status(r), *map(escape, cells))  # data values are text, never markup
    con.print(table)
    for r in result.failed:
        if not r.failing_sample or sample == 0:
            continue
        rows = r.failing_sample[:sample]
        total = len(r.failing_rows) if r.failing_rows is not None else len(rows)
        con.print(f"\n[bold]{escape(r.label)}[/]: {len(rows)} of {total:,} failing rows", highlight=False)
        t = Table()
        for c in rows[0]:
            t.add_column("row" if c == "_row" else escape(c), justify="right" if c == "_row" else "left")
        for row in rows:
            t.add_row(*(escape(short(v, 40)) for v in row.values()))
        con.print(t)
    stats = result.statistics()
    failed = stats["unsuccessful"] - stats["warnings"]
    parts = [f"{stats['successful']} of {stats['evaluated']} checks passed"]
    if failed:
        parts.append(f"{failed} failed")
    if stats["warnings"]:
        parts.append(f"{stats['warnings']} warning{'s' if stats['warnings'] > 1 else ''}")
    verdict = "[bold green]PASSED[/]" if result.success else "[bold red]FAILED[/]"
    con.print(f"{verdict}: {', '.join(parts)} · {result.num_rows:,} rows · {result.duration_seconds:.2f} s")
