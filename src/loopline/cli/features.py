"""``loopline features …``: register definitions, inspect them, materialise, read online values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import Format, FormatOption, TrackingUri, fmt_time
from loopline.cli.jobs import NoWait, following
from loopline.errors import LooplineError

if TYPE_CHECKING:
    from loopline.features import FeatureStore, Plan

app = typer.Typer(
    help="Feature store: one definition of each feature for training sets and for serving.\n\n"
    "Definitions live in a Python file in Feast's shapes (Entity, FeatureView, on_demand_feature_view, "
    "FeatureService, FileSource/SqlSource/PostgresSource/DatasetSource/PushSource). "
    "[bold]apply[/] registers them declaratively (what the file no longer defines is removed), "
    "[bold]materialize[/] loads the latest values into the online store (SQLite beside the metadata "
    "database, or LOOPLINE_ONLINE_STORE=redis://…), [bold]get[/] reads them back.\n\n"
    "Example: [bold]loopline features apply features/defs.py[/] then "
    "[bold]loopline features materialize-incremental now[/]",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


ViewsOption = Annotated[
    list[str] | None, typer.Option("--view", "-v", help="Only these feature views (repeat the option).")
]


def _store(tracking_uri: str | None, *, create: bool = False) -> FeatureStore:
    from loopline.cli.common import settings
    from loopline.features import FeatureStore

    return FeatureStore(settings(tracking_uri, create=create))


def _print_plan(plan: Plan, con: Console, title: str) -> None:
    con.print(f"[bold]{title}[/] {plan.summary()}", highlight=False)
    colour = {"+": "green", "~": "yellow", "-": "red"}
    for line in plan.lines():
        con.print(f"  [{colour[line[0]]}]{line}[/]", highlight=False)


@app.command("plan")
def plan(
    definitions: Annotated[
        Path, typer.Argument(help="The definitions file (.py).", exists=True, dir_okay=False)
    ],
    format: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Show what apply would add, change and remove, without changing anything."""
    p = _store(tracking_uri).plan(definitions)
    if format is Format.json:
        typer.echo(json.dumps(p.to_json()))
        return
    _print_plan(p, Console(), "Plan:")


@app.command("apply")
def apply(
    definitions: Annotated[
        Path, typer.Argument(help="The definitions file (.py).", exists=True, dir_okay=False)
    ],
    format: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Register the file's definitions: print the plan, then make the registry match the file.

    Idempotent: applying an unchanged file changes nothing. Sources are checked for the columns
    the views name before anything is written; removed views are dropped from the online store.
    """
    p = _store(tracking_uri, create=True).apply(definitions)
    if format is Format.json:
        typer.echo(json.dumps(p.to_json()))
        return
    _print_plan(p, Console(), "Applied:" if not p.empty else "Up to date:")


@app.command("list")
def list_(format: FormatOption = Format.table, tracking_uri: TrackingUri = None) -> None:
    """List registered entities, feature views, on-demand views and feature services."""
    store = _store(tracking_uri)
    stored = store.registry.list_definitions()
    if format is Format.json:
        typer.echo(
            json.dumps([{"kind": d.kind, "name": d.name, "spec": d.spec} for d in stored], default=str)
        )
        return
    table = Table("Kind", "Name", "Features / keys", "Updated")
    for d in stored:
        spec = d.spec
        what = (
            spec.get("join_keys")
            if d.kind == "entity"
            else spec.get("features") or [f[0] for f in spec.get("schema", [])]
        )
        table.add_row(
            d.kind.replace("_", " "), d.name, ", ".join(map(str, what or [])), fmt_time(d.last_updated_time)
        )
    con = Console()
    con.print(table)
    if not stored:
        con.print("Nothing registered yet: loopline features apply defs.py", style="dim")


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A feature view, on-demand view or feature service.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Show one definition: its spec, its materialisation jobs and its lineage."""
    store = _store(tracking_uri)
    d = store.registry.get_definition(name)
    con = Console()
    con.print(
        f"[bold]{d.name}[/] · {d.kind.replace('_', ' ')} · updated {fmt_time(d.last_updated_time)}",
        highlight=False,
    )
    con.print_json(json.dumps(d.spec, default=str))
    if d.kind == "feature_view":
        jobs = store.registry.list_materializations(name, limit=10)
        t = Table(
            "Job",
            "Window start",
            "Window end",
            "Status",
            "Rows",
            "Error",
            title="Materialisations",
            title_justify="left",
        )
        for j in jobs:
            t.add_row(str(j.id), fmt_time(j.start_ms), fmt_time(j.end_ms), j.status, str(j.rows), j.error)
        con.print(t)
    edges = store.registry.lineage(f"features:/{name}")
    if edges:
        t = Table("From", "Relation", "To", title="Lineage", title_justify="left")
        for e in edges:
            t.add_row(e.from_uri, e.relation, e.to_uri)
        con.print(t)


def _materialized(results: list[Any], format: Format) -> None:
    if format is Format.json:
        typer.echo(
            json.dumps(
                [
                    {"view": r.view, "rows": r.rows, "start_us": r.start_us, "end_us": r.end_us}
                    for r in results
                ]
            )
        )
        return
    con = Console()
    for r in results:
        resumed = f" (resumed after {r.resumed_from})" if r.resumed_from else ""
        con.print(f"[green]✓[/] {r.view}: {r.rows} entities written{resumed}", highlight=False)
    if not results:
        con.print("No online feature views to materialise.", style="dim")


def _time(value: str) -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC) if value == "now" else value


@app.command("materialize")
def materialize(
    start: Annotated[str, typer.Argument(help="Window start, ISO 8601 (UTC unless it says otherwise).")],
    end: Annotated[str, typer.Argument(help="Window end, ISO 8601, or 'now'.")],
    views: ViewsOption = None,
    format: FormatOption = Format.table,
    no_wait: NoWait = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Load each entity's latest values in [START, END] into the online store, streaming.

    Progress is kept in the metadata store: if the command dies, run it again with the same window
    and it continues after the last entity it wrote. Through a server it runs there as a job: leaving
    (Ctrl-C, --no-wait) does not stop it.
    """
    store = _store(tracking_uri)
    with following("Materialising", no_wait=no_wait, remote=store.settings.is_remote) as progress:
        results = store.materialize(_time(start), _time(end), views, progress=progress)
    _materialized(results, format)


@app.command("materialize-incremental")
def materialize_incremental(
    end: Annotated[str, typer.Argument(help="Window end, ISO 8601, or 'now'.")],
    views: ViewsOption = None,
    format: FormatOption = Format.table,
    no_wait: NoWait = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Materialise from where each view's last run ended (first time: END minus the view's TTL)."""
    store = _store(tracking_uri)
    with following("Materialising", no_wait=no_wait, remote=store.settings.is_remote) as progress:
        results = store.materialize_incremental(_time(end), views, progress=progress)
    _materialized(results, format)


@app.command("get")
def get(
    features: Annotated[
        list[str], typer.Argument(help="view:feature references, or one feature service name.")
    ],
    entity: Annotated[
        list[str], typer.Option("--entity", "-e", help="A join key value, KEY=VALUE (repeat for more keys).")
    ],
    tracking_uri: TrackingUri = None,
) -> None:
    """Read online values for one entity: loopline features get driver_stats:conv_rate -e driver_id=1001."""
    from loopline.errors import InvalidInput

    pairs: dict[str, str] = {}
    for item in entity:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--entity {item!r} is not KEY=VALUE.", hint="e.g. -e driver_id=1001")
        pairs[key] = value
    store = _store(tracking_uri)
    refs: Any = features[0] if len(features) == 1 and ":" not in features[0] else features
    types = _key_types(store, refs)
    row = {key: _key_value(key, value, types.get(key)) for key, value in pairs.items()}
    out = store.get_online_features(refs, [row]).to_dict()
    typer.echo(json.dumps({k: v[0] for k, v in out.items()}, default=str))


def _key_types(store: FeatureStore, refs: Any) -> dict[str, tuple[str, str]]:
    """Join key → (its Arrow type in the source of a view read, that view), where the source's schema
    can be read here (a file or a dataset version); keys of other sources are left out."""
    from loopline.features.definitions import DatasetSource, FeatureService, FileSource, PushSource

    if isinstance(refs, str):
        service = store.get(refs)
        names = [r.split(":")[0] for r in service.refs()] if isinstance(service, FeatureService) else []
    else:
        names = [r.split(":")[0] for r in refs]
    out: dict[str, tuple[str, str]] = {}
    for name in dict.fromkeys(names):
        try:
            view = store.get_feature_view(name)
        except LooplineError:
            continue  # an on-demand view, or an unknown one: the read names it
        source = view.source.batch_source if isinstance(view.source, PushSource) else view.source
        schema: dict[str, str] = {}
        if isinstance(source, DatasetSource):
            from loopline.data import DataClient

            schema = dict(DataClient(context=store.context).get_version(source.uri).schema)
        elif isinstance(source, FileSource) and "://" not in source.path and Path(source.path).exists():
            import pyarrow.dataset as ds

            fmt = "csv" if source.path.endswith(".csv") else "parquet"
            schema = {f.name: str(f.type) for f in ds.dataset(source.path, format=fmt).schema}
        for key in view.join_keys:
            if key in schema:
                out.setdefault(key, (schema[key], name))
    return out


def _key_value(key: str, value: str, typed: tuple[str, str] | None) -> Any:
    """``value`` as the type of ``key`` in the view's source: an integer key gets an int (or an error),
    a string key keeps its digits as text. Unknown types: digits are an integer, as before."""
    from loopline.errors import InvalidInput

    if typed is None:
        return int(value) if value.lstrip("-").isdigit() else value
    arrow_type, view = typed
    kind = arrow_type.lower()
    try:
        if kind.startswith(("int", "uint")):
            return int(value)
        if kind.startswith(("float", "double", "decimal")):
            return float(value)
    except ValueError:
        raise InvalidInput(
            f"--entity {key}={value!r}: {key} is a numeric key ({arrow_type} in the source of view "
            f"{view!r}), and {value!r} is not a number.",
            hint=f"Pass a number, e.g. -e {key}=1001.",
        ) from None
    return value


@app.command("historical")
def historical(
    entities: Annotated[
        Path,
        typer.Argument(help="The entity frame: a Parquet or CSV file of join keys and times.", exists=True),
    ],
    features: Annotated[
        list[str], typer.Argument(help="view:feature references, or one feature service name.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the training set (.parquet).")
    ],
    timestamp_column: Annotated[
        str, typer.Option("--timestamp-column", help="The entity frame's time column.")
    ] = "event_timestamp",
    full_feature_names: Annotated[
        bool, typer.Option("--full-feature-names", help="Name columns view__feature.")
    ] = False,
    save_as: Annotated[
        str | None, typer.Option("--save-as", help="Also version the result as this dataset.")
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Build a point-in-time-correct training set: each entity row with each feature as of its time."""
    import pyarrow.parquet as pq

    store = _store(tracking_uri)
    refs: Any = features[0] if len(features) == 1 and ":" not in features[0] else features
    table = store.get_historical_features(
        entities,
        refs,
        timestamp_column=timestamp_column,
        full_feature_names=full_feature_names,
        format="arrow",
        save_as=save_as,
    )
    pq.write_table(table, output)
    typer.echo(json.dumps({"rows": table.num_rows, "columns": table.column_names, "output": str(output)}))
