"""``loopline lineage URI``: what an object was made from, and what depends on it; ``loopline events``:
the audit trail. Both read the metadata database, or ask the server when the tracking URI is one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from loopline.cli.common import TrackingUri, fmt_time, settings

if TYPE_CHECKING:
    from loopline.context import Context
    from loopline.tracking.lineage import LineageReader


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
    from rich.console import Console
    from rich.tree import Tree

    from loopline.context import Context
    from loopline.tracking.lineage import open_lineage_reader

    context = Context(settings(tracking_uri))
    uri = _canonical(uri, context)
    reader = open_lineage_reader(context)
    edges = reader.upstream(uri) if upstream else reader.downstream(uri)
    if not edges:  # nothing either way may mean a typo: the object must exist to have no lineage
        _require_known(uri, context, reader)
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


def events(
    uri: Annotated[
        str | None, typer.Argument(help="Only the events of this object (monitors:/…, models:/…, …).")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            "--kind",
            "-a",
            help="Only this action (loop.promote) or kind (loop or loop.: every loop.* action).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only events from then on: a duration ago (1h, 7d) or an ISO time."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only events before then: a duration ago (1h) or an ISO time."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many (the newest).")] = 50,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    tracking_uri: TrackingUri = None,
) -> None:
    """The audit trail, newest first: who did what to which object, and when.

    [dim]loopline events --kind loop. --since 1d[/] — everything the closed loop did today.
    """
    from loopline.automation.timespec import parse_time_ms
    from loopline.clock import now_ms
    from loopline.context import Context
    from loopline.tracking.lineage import event_to_json, open_lineage_reader

    now = now_ms()
    since_ms = parse_time_ms(since, now) if since else None
    until_ms = parse_time_ms(until, now) if until else None
    context = Context(settings(tracking_uri))
    items = open_lineage_reader(context).events(uri, action, limit, since_ms=since_ms, until_ms=until_ms)
    if fmt == "json":
        typer.echo(json.dumps([event_to_json(e) for e in items], indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table()
    for col in ("time (UTC)", "actor", "action", "object", "details"):
        t.add_column(col)
    for e in items:
        details = ", ".join(f"{k}={v}" for k, v in e.payload.items())
        t.add_row(fmt_time(e.time_ms), e.actor, e.action, e.object_uri, details[:120])
    Console().print(t)


_EXAMPLES = (
    "datasets:/NAME/VERSION, models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID, deployments:/NAME"
)


def _canonical(uri: str, context: Context) -> str:
    """``datasets:/name@alias`` → ``datasets:/name/3``: dataset edges name versions, not aliases (model
    aliases have edges of their own: ``aliased_as``). A dataset alias that does not exist is a
    ``NotFound``; anything that is not a URI an ``InvalidInput``."""
    from loopline.errors import InvalidInput

    scheme, sep, rest = uri.partition(":/")
    if not sep or not scheme.isalpha() or not rest.strip("/"):
        raise InvalidInput(f"{uri!r} is not an object URI.", hint=f"Use one of {_EXAMPLES}.")
    if scheme == "datasets" and ("@" in rest or "/" not in rest):
        from loopline.data import DataClient

        return DataClient(context=context).get_version(uri).uri
    return uri


def _require_known(uri: str, context: Context, reader: LineageReader) -> None:
    """Raise ``NotFound`` unless ``uri`` names an object of this store (or one its events name)."""
    from loopline.errors import NotFound

    if reader.events(uri, None, 1) or reader.upstream(uri) or reader.downstream(uri):
        return  # it has a history (every write leaves an event), or lineage the other way
    scheme, _, rest = uri.partition(":/")
    name = rest.strip("/").split("/")[0].split("@")[0]
    if scheme == "datasets":
        from loopline.data import DataClient

        DataClient(context=context).get_version(uri)
    elif scheme == "models":
        from loopline.registry import RegistryClient
        from loopline.tracking import Client

        registry = RegistryClient(Client(context=context))
        version = rest.strip("/").split("/")[1:2]
        if "@" in rest:
            registry.get_model_version_by_alias(name, rest.partition("@")[2].split("/")[0])
        elif version and version[0].isdigit():
            registry.get_model_version(name, version[0])
        else:
            registry.get_registered_model(name)
    elif scheme == "runs":
        from loopline.tracking import Client

        Client(context=context).get_run(name)
    elif scheme == "deployments":
        from loopline.serving.deployments import get_deployment
        from loopline.tracking import Client

        get_deployment(name, client=Client(context=context))
    else:
        raise NotFound(
            f"Nothing in this store is named {uri!r}: no lineage and no events.",
            hint=f"Check the name; lineage takes {_EXAMPLES}, …",
        )
