"""``loopline data``: version datasets, compare versions, move them between stores, validate them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loopline.cli import data_validate
from loopline.cli.common import Format, FormatOption, TrackingUri, fmt_time
from loopline.data.add_command import byte_progress, format_size

app = typer.Typer(
    help="Version datasets: each [bold]loopline data add[/] of a file or folder (Parquet, CSV, JSON, "
    "or any files) makes a new version only if the content changed — content-addressed with BLAKE3, "
    "deduplicated across versions and datasets, stored by reflink or read-only hard link where the "
    "filesystem allows. Tabular versions record their schema, row count and a column profile.\n\n"
    "Versions are named by URI: [bold]datasets:/NAME/VERSION[/], [bold]datasets:/NAME@ALIAS[/], "
    "[bold]datasets:/NAME[/] (the latest). Commands also accept NAME/VERSION and NAME@ALIAS.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
if hasattr(data_validate, "validate"):  # built alongside: registered once it exists
    app.command("validate")(data_validate.validate)

Fmt = FormatOption
Remote = Annotated[
    str | None,
    typer.Option("--remote", "-r", envvar="LOOPLINE_DATA_REMOTE", help="s3://bucket/prefix or a folder."),
]


def _client(tracking_uri: str | None, *, create: bool = False) -> Any:
    from loopline.cli.common import settings
    from loopline.data import DataClient

    return DataClient(settings(tracking_uri, create=create))


def _uri(ref: str) -> str:
    return ref if ref.startswith("datasets:/") else f"datasets:/{ref}"


_size = format_size


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="A file or folder to version.")],
    name: Annotated[str, typer.Option("--name", "-n", help="The dataset's name.")],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="Point this alias at the version.")
    ] = None,
    link: Annotated[
        bool, typer.Option("--link", help="Hard-link files into the store (free; makes them read-only).")
    ] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Version PATH as NAME: a new version if its content changed, else the latest one again.

    Files already stored (in any version of any dataset) are not stored again, and unchanged
    files are not even re-read. New files are stored by reflink where the filesystem supports it
    (copy-on-write: instant and safe), else copied. With --link they are hard-linked instead —
    instant on any filesystem, but the file then shares its storage with the version, so it is
    made read-only: to change it, write a new file and move it over the old one.
    """
    from loopline.data.add_command import run

    run(path, name, description=description, alias=alias, link=link, tracking_uri=tracking_uri)


@app.command("status")
def status(
    paths: Annotated[list[str] | None, typer.Argument(help="Only these paths (default: all).")] = None,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 if a path changed.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Show whether each path added (or checked out) on this machine still holds its version.

    Reads only this machine's hash cache, so an unchanged tree answers without reading its
    files; fast enough for CI steps and make rules (it bypasses the rest of the CLI).
    """
    from loopline.data.status import main

    args = [
        *(paths or []),
        *(["--exit-code"] if exit_code else []),
        *(["-t", tracking_uri] if tracking_uri else []),
    ]
    raise typer.Exit(main(args))


@app.command("list")
def list_(fmt: Fmt = Format.table, tracking_uri: TrackingUri = None) -> None:
    """List the datasets with their latest version and aliases."""
    found = _client(tracking_uri).datasets()
    if fmt == "json":
        typer.echo(json.dumps([{**s.__dict__, "aliases": dict(s.aliases)} for s in found], indent=2))
        return
    table = Table("name", "latest", "versions", "aliases", "updated")
    for s in found:
        aliases = ", ".join(f"{a}→v{n}" for a, n in sorted(s.aliases.items()))
        table.add_row(
            s.name, str(s.latest_version), str(s.num_versions), aliases, fmt_time(s.last_updated_time)
        )
    Console().print(table)


@app.command("log")
def log(name: str, fmt: Fmt = Format.table, tracking_uri: TrackingUri = None) -> None:
    """List the versions of NAME, newest first."""
    versions = _client(tracking_uri).versions(name)
    if fmt == "json":
        typer.echo(json.dumps([_version_json(v) for v in versions], indent=2))
        return
    table = Table("version", "digest", "rows", "files", "size", "aliases", "by", "created", "source")
    for v in versions:
        rows = f"{v.num_rows:,}" if v.num_rows is not None else "-"
        table.add_row(
            str(v.version), v.digest[:12], rows, str(v.num_files), _size(v.size_bytes), ", ".join(v.aliases),
            v.created_by, fmt_time(v.creation_time), v.source,
        )  # fmt: skip
    Console().print(table)


def _version_json(v: Any) -> dict[str, Any]:
    return {"uri": v.uri, **{k: getattr(v, k) for k in v.__dataclass_fields__}, "aliases": list(v.aliases)}


@app.command("show")
def show(ref: str, fmt: Fmt = Format.table, tracking_uri: TrackingUri = None) -> None:
    """Show one version: its metadata, schema and column profile."""
    client = _client(tracking_uri)
    v = client.get_version(_uri(ref))
    if fmt == "json":
        typer.echo(json.dumps(_version_json(v), indent=2, default=str))
        return
    console = Console()
    console.print(f"[bold]{v.uri}[/]  digest {v.digest}")
    console.print(
        f"{v.format}, {v.num_files} files, {_size(v.size_bytes)}"
        + (f", {v.num_rows:,} rows" if v.num_rows is not None else "")
        + f"; by {v.created_by} at {fmt_time(v.creation_time)}; from {v.source}"
    )
    if v.aliases:
        console.print("aliases: " + ", ".join(v.aliases))
    columns = (v.profile or {}).get("columns") or {}
    if v.schema:
        table = Table("column", "type", "nulls", "min", "max", "mean", "distinct", title="schema and profile")
        for col, typ in v.schema.items():
            p = columns.get(col, {}) if isinstance(columns, dict) else {}
            stats = [p.get(k) for k in ("null_count", "min", "max", "mean")]
            stats.append(p.get("distinct") or p.get("distinct_estimate"))
            table.add_row(col, typ, *map(_num, stats))
        console.print(table)
    for rec in client.validations(v.uri)[:5]:
        status = "[green]passed[/]" if rec.success else "[red]failed[/]"
        console.print(f"validation #{rec.id} {rec.suite}: {status} at {fmt_time(rec.creation_time)}")


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@app.command("diff")
def diff(a: str, b: str, fmt: Fmt = Format.table, tracking_uri: TrackingUri = None) -> None:
    """Compare two versions: schema, rows, size, per-column profile shifts, files."""
    out = _client(tracking_uri).diff(_uri(a), _uri(b))
    if fmt == "json":
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    console = Console()
    console.print(
        f"[bold]{out['from']}[/] → [bold]{out['to']}[/]" + ("  (same content)" if out["same_content"] else "")
    )
    rows = out["rows"]
    if rows["from"] is not None or rows["to"] is not None:
        console.print(f"rows: {rows['from']} → {rows['to']}")
    console.print(f"size: {_size(out['size_bytes']['from'])} → {_size(out['size_bytes']['to'])}")
    schema = out["schema"]
    for col, typ in sorted(schema["added"].items()):
        console.print(f"[green]+ column {col} ({typ})[/]")
    for col, typ in sorted(schema["removed"].items()):
        console.print(f"[red]- column {col} ({typ})[/]")
    for col, (t1, t2) in sorted(schema["type_changed"].items()):
        console.print(f"[yellow]~ column {col}: {t1} → {t2}[/]")
    files = out["files"]
    for kind, style in (("added", "green"), ("removed", "red"), ("changed", "yellow")):
        items = files[kind]
        if items:
            shown = ", ".join(items[:10]) + (f", … ({len(items)} in all)" if len(items) > 10 else "")
            console.print(f"[{style}]{kind} files:[/] {shown}")
    profile = out.get("profile")
    if profile:
        console.print_json(json.dumps(profile, default=str))


@app.command("get")
def get(
    ref: str,
    dest: Annotated[Path, typer.Argument(help="Where to write the files.")],
    link: Annotated[bool, typer.Option("--link", help="Hard-link (read-only) instead of copying.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Materialise a version's files at DEST."""
    client = _client(tracking_uri)
    v = client.get_version(_uri(ref))
    with byte_progress(f"writing {v.uri}", v.size_bytes) as advance:
        out = client.get(v.uri, dest, link=link, progress=advance)
    Console().print(f"Wrote {v.uri} to {out}.")


@app.command("checkout")
def checkout(
    ref: str,
    to: Annotated[
        Path | None, typer.Option("--to", help="Another place than the one it was added from.")
    ] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Delete files the version does not have.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Restore the file or folder a version was added from to that version's content."""
    out = _client(tracking_uri).checkout(_uri(ref), to=to, prune=prune)
    Console().print(f"Checked out {_uri(ref)} at {out}.")


@app.command("alias")
def alias(
    name: str,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS")],
    version: Annotated[int | None, typer.Argument(help="Omit with --delete.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Point ALIAS of NAME at VERSION (datasets:/NAME@ALIAS), or --delete it."""
    client = _client(tracking_uri)
    if delete:
        client.delete_alias(name, alias_name)
        Console().print(f"Deleted datasets:/{name}@{alias_name}.")
        return
    if version is None:
        raise typer.BadParameter("Give the VERSION the alias should point at.", param_hint="VERSION")
    client.set_alias(name, alias_name, version)
    Console().print(f"datasets:/{name}@{alias_name} → version {version}.")


@app.command("push")
def push(
    refs: Annotated[
        list[str], typer.Argument(help="Versions to send: NAME (every version), NAME/3, NAME@prod.")
    ],
    remote: Remote = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Send versions and the blobs they need to a remote store; only missing blobs travel.

    Interrupted? Run it again: it resumes with what is still missing.
    """
    from loopline.data.remote import open_remote, push as do_push

    client = _client(tracking_uri)
    uris: list[str] = []
    for ref in refs:
        if "/" in ref.removeprefix("datasets:/") or "@" in ref:
            uris.append(_uri(ref))
        else:
            uris.extend(v.uri for v in client.versions(ref.removeprefix("datasets:/")))
    store = open_remote(client, remote)
    total = sum(client.get_version(u).size_bytes for u in uris)
    with byte_progress(f"pushing to {store.root_uri}", total) as advance:
        done = do_push(client, uris, store, advance)
    Console().print(
        f"Pushed {len(done.versions)} version(s): {done.blobs} blobs ({_size(done.bytes)}) sent, "
        f"{done.skipped_blobs} already there."
    )


@app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="NAME (every version the remote has) or NAME/VERSION.")],
    remote: Remote = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Fetch versions of NAME from a remote store; only missing blobs travel, each checked."""
    from loopline.data.remote import open_remote, pull as do_pull

    client = _client(tracking_uri, create=True)
    base, _, version = name.removeprefix("datasets:/").partition("/")
    if version and not version.isdigit():
        raise typer.BadParameter(f"{version!r} is not a version number.", param_hint="NAME")
    store = open_remote(client, remote)
    with byte_progress(f"pulling from {store.root_uri}", None) as advance:
        done = do_pull(client, base, int(version) if version else None, store, advance)
    Console().print(
        f"Pulled {', '.join(done.versions)}: {done.blobs} blobs ({_size(done.bytes)}) fetched, "
        f"{done.skipped_blobs} already here."
    )


@app.command("verify")
def verify(ref: str, tracking_uri: TrackingUri = None) -> None:
    """Re-hash a version's stored files; exit 1 if any is missing or changed."""
    bad = _client(tracking_uri).verify(_uri(ref))
    if bad:
        Console(stderr=True).print(f"[red]{len(bad)} file(s) missing or changed:[/] " + ", ".join(bad[:20]))
        raise typer.Exit(1)
    Console().print(f"{_uri(ref)}: every file matches its digest.")


@app.command("gc")
def gc(
    older_than: Annotated[
        float, typer.Option(help="Grace period in seconds for unreferenced blobs.")
    ] = 3600.0,
    tracking_uri: TrackingUri = None,
) -> None:
    """Delete stored blobs no version, run or model uses any more."""
    count, freed = _client(tracking_uri).gc(older_than)
    Console().print(f"Removed {count} blobs, {_size(freed)} freed.")
