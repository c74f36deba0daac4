"""``loopline models``: the model registry from the shell."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli.common import Format, FormatOption, TrackingUri, client, fmt_time, fmt_value, print_json
from loopline.errors import InvalidInput

app = typer.Typer(
    help="Browse the model registry: registered models, their versions and aliases; download a "
    "model's files (checked against the digests recorded at registration) and evaluate a model on "
    "labelled data.\n\n"
    "Models are named by URI: [bold]models:/NAME/VERSION[/], [bold]models:/NAME@ALIAS[/], "
    "[bold]models:/NAME/latest[/], [bold]runs:/RUN_ID/PATH[/] or a local folder.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
alias_app = typer.Typer(
    help="Point an alias (champion, challenger, any name) at a version, or remove it. Moving an alias "
    "is one atomic step: loaders of models:/NAME@ALIAS see the old version or the new one, never none.",
    no_args_is_help=True,
)
app.add_typer(alias_app, name="alias")


class ModelType(StrEnum):
    classifier = "classifier"
    regressor = "regressor"


def _registry(tracking_uri: str | None) -> Any:
    from loopline.registry import RegistryClient

    return RegistryClient(client(tracking_uri))


def _versions(rc: Any, name: str) -> list[Any]:
    rc.get_registered_model(name)  # unknown names fail here, listing the names that exist
    quoted = f'"{name}"' if "'" in name else f"'{name}'"
    return sorted(rc.search_model_versions(f"name = {quoted}"), key=lambda v: v.version, reverse=True)


def _aliases(mapping: dict[str, int] | Any) -> str:
    return ", ".join(f"{a}→v{v}" for a, v in sorted(dict(mapping).items(), key=lambda kv: (kv[1], kv[0])))


def _versions_table(versions: list[Any], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("Version", "Aliases", "Stage", "Status", "Created", "Run", "Files", "Source"):
        # IDs and sources fold rather than being cut, so they can be copied whole.
        fold = header in ("Run", "Source")
        table.add_column(header, overflow="fold" if fold else "ellipsis", no_wrap=header == "Version")
    for v in versions:
        table.add_row(
            str(v.version),
            ", ".join(v.aliases),
            v.current_stage,
            str(v.status.value if hasattr(v.status, "value") else v.status),
            fmt_time(v.creation_timestamp),
            v.run_id or "-",
            str(len(v.digests)) if v.digests else "-",
            v.source,
        )
    return table


_LIST_HELP = (
    "List registered models with their newest version, aliases and description.\n\n"
    "Example: [bold]loopline models list -F \"name LIKE 'churn%'\"[/]\n\n"
    "[bold]--format json[/]: a list of registered models as MLflow's REST API returns them."
)


@app.command("list", help=_LIST_HELP)
def list_(
    filter_string: Annotated[
        str | None,
        typer.Option("--filter", "-F", help="MLflow filter, e.g. \"name LIKE 'churn%'\"."),
    ] = None,
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """List registered models with their newest version, aliases and description."""
    rc = _registry(tracking_uri)
    models = rc.search_registered_models(filter_string)
    if fmt is Format.json:
        from loopline.registry.mlflow_json import registered_model_to_json

        print_json([registered_model_to_json(m) for m in sorted(models, key=lambda m: m.name)])
        return
    table = Table()
    for header in ("Name", "Latest", "Aliases", "Updated", "Description"):
        table.add_column(header)
    for m in sorted(models, key=lambda m: m.name):
        latest = max((v.version for v in m.latest_versions), default=None)
        table.add_row(
            m.name,
            f"v{latest}" if latest is not None else "-",
            _aliases(m.aliases),
            fmt_time(m.last_updated_timestamp),
            m.description,
        )
    con = Console()
    con.print(table)
    if not models:
        con.print(
            "No registered models yet. Register one with "
            "loopline.log_model(model, registered_model_name=...).",
            style="dim",
        )


_SHOW_HELP = (
    "Show a registered model: description, tags, aliases and every version.\n\n"
    "For each version: its aliases, legacy stage, status, the run that made it, how many of its files have "
    "a recorded digest (each is checked when the model is loaded) and where its files are.\n\n"
    "[bold]--format json[/]: the registered model as MLflow's REST API returns it, plus "
    "[bold]versions[/]: every version, newest first, in the same shape."
)


@app.command("show", help=_SHOW_HELP)
def show(
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Show a registered model: description, tags, aliases and every version."""
    rc = _registry(tracking_uri)
    m = rc.get_registered_model(name)
    versions = _versions(rc, name)
    if fmt is Format.json:
        from loopline.registry.mlflow_json import model_version_to_json, registered_model_to_json

        print_json({**registered_model_to_json(m), "versions": [model_version_to_json(v) for v in versions]})
        return
    con = Console()
    con.print(
        f"[bold]{m.name}[/] · {len(versions)} version{'s' if len(versions) != 1 else ''} · "
        f"created {fmt_time(m.creation_timestamp)} · updated {fmt_time(m.last_updated_timestamp)}",
        highlight=False,
    )
    if m.description:
        con.print(m.description, highlight=False)
    aliases = Table("Alias", "Version", "URI", title="Aliases", title_justify="left")
    for alias, version in sorted(dict(m.aliases).items()):
        aliases.add_row(alias, str(version), f"models:/{m.name}@{alias}")
    con.print(aliases)
    if m.tags:
        tags = Table("Key", "Value", title="Tags", title_justify="left")
        for k in sorted(m.tags):
            tags.add_row(k, fmt_value(m.tags[k]))
        con.print(tags)
    con.print(_versions_table(versions, "Versions"))


@app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """List a model's versions, newest first, with aliases, stage, source run, digests and source.

    [bold]--format json[/]: a list of model versions as MLflow's REST API returns them."""
    rc = _registry(tracking_uri)
    found = _versions(rc, name)
    if fmt is Format.json:
        from loopline.registry.mlflow_json import model_version_to_json

        print_json([model_version_to_json(v) for v in found])
        return
    Console().print(_versions_table(found))


_SET_HELP = (
    "Point ALIAS of model NAME at VERSION (moving it if it pointed elsewhere).\n\n"
    "Example: [bold]loopline models alias set churn champion 3[/], then load [bold]models:/churn@champion[/]."
)


@alias_app.command("set", help=_SET_HELP)
def alias_set(
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. champion.")],
    version: Annotated[int, typer.Argument(help="The version the alias should point at.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it pointed elsewhere)."""
    rc = _registry(tracking_uri)
    rc.set_alias(name, alias, version)
    typer.echo(f"models:/{name}@{alias} → version {version}")


@alias_app.command("rm")
def alias_rm(
    name: Annotated[str, typer.Argument(help="The registered model's name.")],
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Remove ALIAS from model NAME (the version itself stays)."""
    rc = _registry(tracking_uri)
    rc.delete_alias(name, alias)
    typer.echo(f"Removed alias {alias} of {name}")


_DOWNLOAD_HELP = (
    "Download a model's files (MLmodel, model file, requirements, …) into DEST.\n\n"
    "Files of a registered version are checked against the BLAKE3 digests recorded when it was registered; "
    "a file that differs is refused and nothing is written to DEST. The folder loads with "
    "[bold]loopline.load_model(DEST)[/] or [bold]mlflow.pyfunc.load_model(DEST)[/]."
)


@app.command("download", help=_DOWNLOAD_HELP)
def download(
    uri: Annotated[str, typer.Argument(help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN/PATH.")],
    dest: Annotated[Path, typer.Argument(help="Folder to write the model into (new or empty).")],
    tracking_uri: TrackingUri = None,
) -> None:
    """Download a model's files (MLmodel, model file, requirements, …) into DEST."""
    import shutil
    import tempfile

    from loopline.registry.models import fetch, resolve, verify

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"{dest} is not an empty folder.", hint="Download into a new or empty folder.")
    rc = _registry(tracking_uri)
    prefix, mv = resolve(uri, rc.store, rc.tracking.store)
    with tempfile.TemporaryDirectory(prefix="loopline-download-") as tmp:
        staged = Path(tmp) / "model"
        staged.mkdir()
        store_digests = fetch(rc.tracking.artifacts, prefix, staged)
        expected = mv.digests if mv is not None and mv.digests else store_digests
        if expected:
            verify(staged, expected)
        dest.mkdir(parents=True, exist_ok=True)
        files = sorted(p for p in staged.rglob("*") if p.is_file())
        for p in files:
            target = dest / p.relative_to(staged)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
    which = f" (version {mv.version} of {mv.name})" if mv is not None else ""
    checked = f", {len(expected)} checked against recorded digests" if expected else ""
    typer.echo(f"Downloaded {uri}{which} to {dest}: {len(files)} files{checked}")


def _read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InvalidInput(f"No data file at {path}.")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".json", ".jsonl", ".csv", ".txt", ".tsv"):
        raise InvalidInput(
            f"Cannot read {path.name}.", hint="Use a .csv, .tsv, .parquet, .json or .jsonl file."
        )
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".json", ".jsonl"):
            return pd.read_json(path, lines=suffix == ".jsonl")
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (ValueError, OSError) as e:  # pandas' and pyarrow's parse errors are ValueErrors
        raise InvalidInput(
            f"{path} is not a readable {suffix[1:]} file: {str(e).strip().splitlines()[0]}",
            hint="Check that the file is complete (not truncated) and that every row has the same "
            "number of fields as the header.",
        ) from e


_EVALUATE_HELP = (
    "Evaluate a model on labelled data and print the metrics (optionally logging them to a run).\n\n"
    "Classifiers get accuracy, precision, recall, F1 and, when the model gives probabilities, ROC AUC and "
    "log loss; regressors get MAE, MSE, RMSE, R², max error and MAPE. Metric names are MLflow's.\n\n"
    "Example: [bold]loopline models evaluate models:/churn@challenger -d test.csv -y churned[/]"
)


@app.command("evaluate", help=_EVALUATE_HELP)
def evaluate(
    uri: Annotated[str, typer.Argument(help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/…, a folder.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Labelled data (.csv .parquet .json …)")],
    target: Annotated[str, typer.Option("--target", "-y", help="The column that holds the true values.")],
    model_type: Annotated[
        ModelType, typer.Option("--model-type", "-m", help="Which metrics to compute.")
    ] = ModelType.classifier,
    run_id: Annotated[
        str | None, typer.Option("--run-id", "-r", help="Log the metrics to this run. Default: not logged.")
    ] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Allow loading a pickled model. Unpickling runs code: only for models you trust.",
        ),
    ] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Evaluate a model on labelled data and print the metrics (optionally logging them to a run)."""
    from loopline.registry import RegistryClient, evaluate as run_evaluation, load_model

    c = client(tracking_uri)
    df = _read_table(data)
    model = load_model(uri, allow_pickle=allow_pickle, client=RegistryClient(c))
    result = run_evaluation(model, df, target, model_type.value, run_id=run_id, client=c)
    table = Table("Metric", "Value")
    for k, v in result.metrics.items():
        table.add_row(k, fmt_value(v))
    con = Console()
    con.print(f"[bold]{uri}[/] on {data.name} ({len(df)} rows)", highlight=False)
    con.print(table)
    if result.run_id:
        con.print(f"Logged to run {result.run_id}", highlight=False)
