"""``loopline deploy``: declare deployments (weighted versions + shadow), see and roll back their
history, and package models for a cluster."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from loopline.cli.common import Format, FormatOption, TrackingUri, print_json

app = typer.Typer(
    help="Deployments: which model versions serve traffic, with what weights, and which one shadows; "
    "every change is a revision you can list (history) and undo (rollback); "
    "and container/Kubernetes packaging of a model.",
    no_args_is_help=True,
)


def _client(tracking_uri: str | None) -> object:
    from loopline.cli.common import client

    return client(tracking_uri)


def _parse_route(text: str) -> tuple[str, float]:
    from loopline.errors import InvalidInput

    uri, sep, weight = text.rpartition("=")
    if not sep:
        return text, 100.0
    try:
        return uri, float(weight)
    except ValueError:
        raise InvalidInput(f"Bad --route {text!r}: the weight after '=' must be a number.") from None


ExpectedRevision = Annotated[
    int | None,
    typer.Option(
        "--expected-revision",
        help="The revision you read (0: create only). If someone changed it since, nothing is written "
        "and the command fails (exit 1) instead of overwriting their change.",
        show_default=False,
    ),
]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Why: kept in the history and the event.")]


@app.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="Deployment name, e.g. churn-prod.")],
    route: Annotated[
        list[str],
        typer.Option(
            "--route",
            "-r",
            help="MODEL_URI=WEIGHT, repeatable: --route models:/churn@champion=90 --route models:/churn/8=10",
        ),
    ],
    shadow: Annotated[
        str | None, typer.Option(help="A model that gets a copy of every request (answers logged only).")
    ] = None,
    shadow_rate: Annotated[float, typer.Option(help="Share of requests copied to the shadow.")] = 1.0,
    sticky_header: Annotated[
        str | None, typer.Option(help="Route by a hash of this request header instead of at random.")
    ] = None,
    expected_revision: ExpectedRevision = None,
    comment: Comment = "",
    tracking_uri: TrackingUri = None,
) -> None:
    """Create or change a deployment: a new revision. Running servers pick it up within their poll
    interval. Every model version it names must be registered; aliases are resolved and recorded.

    Example:
      [bold]loopline deploy set churn-prod -r models:/churn@champion=90 -r models:/churn/8=10 -m "canary 8"[/]
    """
    from loopline.serving.deployments import set_deployment
    from loopline.serving.types import Shadow

    d = set_deployment(
        name,
        [_parse_route(r) for r in route],
        shadow=Shadow(shadow, shadow_rate) if shadow else None,
        sticky_header=sticky_header,
        expected_revision=expected_revision,
        comment=comment,
        client=_client(tracking_uri),
    )
    _print(d)


def _print(d: object) -> None:
    from loopline.cli.common import fmt_time
    from loopline.serving.types import Deployment

    assert isinstance(d, Deployment)
    when = fmt_time(d.updated_ms)
    typer.echo(f"deployment {d.name}  revision {d.revision}  (by {d.updated_by}, {when} UTC)")
    total = sum(r.weight for r in d.routes)
    for r in d.routes:
        typer.echo(f"  {r.model}  {r.weight / total:.0%}{_as(d.resolved, r.model)}")
    if d.shadow is not None:
        rate = f"{d.shadow.sample_rate:.0%}"
        typer.echo(f"  {d.shadow.model}  shadow, {rate} of requests{_as(d.resolved, d.shadow.model)}")
    if d.sticky_header:
        typer.echo(f"  sticky on header {d.sticky_header}")


def _as(resolved: Mapping[str, str], uri: str) -> str:
    """Where an alias pointed when the revision was written."""
    version = resolved.get(uri)
    return f"  (= {version})" if version and version != uri else ""


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Print a deployment's revision, routes, weights and shadow (with the version each alias named
    when the revision was written).

    [bold]--format json[/]: the deployment as the server's REST API returns it (name, uri, revision,
    spec, resolved, created_ms, created_by, updated_ms, updated_by)."""
    from loopline.serving.deployments import get_deployment
    from loopline.serving.types import deployment_to_json

    d = get_deployment(name, client=_client(tracking_uri))
    if fmt is Format.json:
        print_json(deployment_to_json(d))
        return
    _print(d)


@app.command("list")
def list_(fmt: FormatOption = Format.table, tracking_uri: TrackingUri = None) -> None:
    """List the deployments: name, revision, routes.

    [bold]--format json[/]: a list of deployments, each as [bold]deploy show --format json[/] gives it."""
    from loopline.serving.deployments import list_deployments
    from loopline.serving.types import deployment_to_json

    found = list_deployments(client=_client(tracking_uri))
    if fmt is Format.json:
        print_json([deployment_to_json(d) for d in found])
        return
    for d in found:
        total = sum(r.weight for r in d.routes)
        routes = ", ".join(f"{r.model} {r.weight / total:.0%}" for r in d.routes)
        typer.echo(f"{d.name}  revision {d.revision}  {routes}")


@app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many (the newest).")] = 50,
    fmt: FormatOption = Format.table,
    tracking_uri: TrackingUri = None,
) -> None:
    """Every change of a deployment, newest first: revision, time, who, routes and why.

    Example: [bold]loopline deploy history churn-prod[/], then
    [bold]loopline deploy rollback churn-prod --to 3[/]

    [bold]--format json[/]: a list of revisions (name, revision, spec, resolved, actor, time_ms, comment).
    """
    from loopline.cli.common import fmt_time
    from loopline.serving.deployments import deployment_history
    from loopline.serving.types import revision_to_json

    found = deployment_history(name, limit=limit, client=_client(tracking_uri))
    if fmt is Format.json:
        print_json([revision_to_json(r) for r in found])
        return
    for r in found:
        total = sum(x.weight for x in r.spec.routes)
        routes = ", ".join(
            f"{x.model}{_as(r.resolved, x.model)} {x.weight / total:.0%}" for x in r.spec.routes
        )
        if r.spec.shadow is not None:
            routes += f", shadow {r.spec.shadow.model}{_as(r.resolved, r.spec.shadow.model)}"
        why = f"  # {r.comment}" if r.comment else ""
        typer.echo(f"{r.revision:>4}  {fmt_time(r.time_ms)}  {r.actor}  {routes}{why}")


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    to: Annotated[int, typer.Option("--to", help="The revision whose spec becomes current again.")],
    expected_revision: ExpectedRevision = None,
    comment: Comment = "",
    tracking_uri: TrackingUri = None,
) -> None:
    """Make an earlier revision's routes, weights and shadow current again, as a new revision (the
    history keeps everything). Aliases in it are resolved as they are now.

    Example: [bold]loopline deploy rollback churn-prod --to 3 -m "v9 regressed"[/]
    """
    from loopline.serving.deployments import rollback_deployment

    _print(
        rollback_deployment(
            name, to, expected_revision=expected_revision, comment=comment, client=_client(tracking_uri)
        )
    )


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    expected_revision: ExpectedRevision = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Delete a deployment and its history (servers already running it keep their last state; its
    events and lineage stay)."""
    from loopline.serving.deployments import delete_deployment

    delete_deployment(name, expected_revision=expected_revision, client=_client(tracking_uri))
    typer.echo(f"deleted deployment {name}")


@app.command("build")
def build(
    model_uri: Annotated[str, typer.Argument(help="models:/name@alias or models:/name/version.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (must be empty or new).")],
    image: Annotated[
        str | None,
        typer.Option(help="Image name:tag. Default: loopline-<model>:<version>.", show_default=False),
    ] = None,
    port: Annotated[int, typer.Option(help="Port the server listens on in the container.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes per container.")] = 2,
    replicas: Annotated[int, typer.Option(help="Initial replicas (the HPA's minimum).")] = 2,
    max_replicas: Annotated[int, typer.Option(help="The HPA's maximum replicas.")] = 10,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write a Dockerfile, a requirements lock, Kubernetes manifests (Deployment, Service, HPA, probes)
    and a KServe InferenceService for a model; the model's files are copied in, verified.

    Example: [bold]loopline deploy build models:/churn@champion -o build/churn && docker build build/churn[/]
    """
    from loopline.serving.packaging import build_bundle

    bundle = build_bundle(
        model_uri,
        output,
        image=image,
        port=port,
        workers=workers,
        replicas=replicas,
        max_replicas=max_replicas,
        client=_client(tracking_uri),
    )
    typer.echo(f"wrote {output}/ for {bundle.model_uri} (image {bundle.image}, objects {bundle.app}):")
    for path in bundle.files:
        typer.echo(f"  {path}")
    wheel = next(p for p in bundle.files if p.startswith("wheels/"))
    typer.echo(f"{wheel} is the Loopline installed here, packed as a wheel: the image installs it.")
    if bundle.wheel_step:
        typer.echo(f"to build it from your source checkout instead: {bundle.wheel_step}")
    typer.echo(f"next: docker build -t {bundle.image} {output} && kubectl apply -f {output}/k8s/")
