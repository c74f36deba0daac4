"""``loopline lineage URI``: what an object was made from, and what depends on it."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.tree import Tree

from loopline.cli.common import TrackingUri
from loopline.config import Settings


def lineage(
    uri: Annotated[str, typer.Argument(help="datasets:/…, runs:/…, models:/…, deployments:/…, …")],
    upstream: Annotated[
        bool, typer.Option("--upstream", "-u", help="What made it, instead of what uses it.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="tree or json.")] = "tree",
    tracking_uri: TrackingUri = None,
) -> None:
    """Everything downstream of URI — the runs, model versions and deployments that depend on it —
    or with --upstream, everything it was made from."""
    from loopline.store import lineage as graph
    from loopline.store import open_sql_engine

    settings = Settings.from_env(tracking_uri=tracking_uri)
    uri = _canonical(uri, settings)
    engine = open_sql_engine(settings, what="Lineage")
    edges = (graph.upstream if upstream else graph.downstream)(engine, settings.workspace, uri)
    if fmt == "json":
        typer.echo(
            json.dumps(
                [
                    {"from": e.from_uri, "to": e.to_uri, "relation": e.relation, "resolved": not e.external}
                    for e in edges
                ],
                indent=2,
            )
        )
        return
    root = Tree(f"[bold]{uri}[/]")
    nodes = {uri: root}
    for e in edges:
        parent_uri, child_uri = (e.to_uri, e.from_uri) if upstream else (e.from_uri, e.to_uri)
        parent = nodes.get(parent_uri, root)
        if child_uri not in nodes:
            # An external source (e.g. a run of another tracking server) is named, not resolved here.
            note = ""
            if e.external:
                note = (
                    ", external: not in this store" if upstream else f", from {e.from_uri}: not in this store"
                )
            nodes[child_uri] = parent.add(f"{child_uri} [dim]({e.relation}{note})[/]")
    if not edges:
        root.add("[dim](nothing " + ("upstream" if upstream else "downstream") + ")[/]")
    Console().print(root)


def _canonical(uri: str, settings: Settings) -> str:
    """``datasets:/name@alias`` → ``datasets:/name/3``: edges name versions, not aliases."""
    if uri.startswith("datasets:/") and ("@" in uri or uri.count("/") == 1):
        from loopline.data import DataClient

        return DataClient(settings).get_version(uri).uri
    return uri
