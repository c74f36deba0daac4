"""``loopline deploy``: declare deployments (weighted versions + shadow) and package models for a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopline.cli.common import TrackingUri

app = typer.Typer(
    help="Deployments: which model versions serve traffic, with what weights, and which one shadows; "
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
    tracking_uri: TrackingUri = None,
) -> None:
    """Create or replace a deployment. Running servers pick the change up within their poll interval.

    Example:
      [bold]loopline deploy set churn-prod -r models:/churn@champion=90 -r models:/churn/8=10[/]
    """
    from loopline.serving.deployments import Shadow, set_deployment

    spec = set_deployment(
        name,
        [_parse_route(r) for r in route],
        shadow=Shadow(shadow, shadow_rate) if shadow else None,
        sticky_header=sticky_header,
        client=_client(tracking_uri),
    )
    _print(spec)


def _print(spec: object) -> None:
    from loopline.serving.deployments import DeploymentSpec

    assert isinstance(spec, DeploymentSpec)
    total = sum(r.weight for r in spec.routes)
    typer.echo(f"deployment {spec.name}")
    for r in spec.routes:
        typer.echo(f"  {r.model}  {r.weight / total:.0%}")
    if spec.shadow is not None:
        typer.echo(f"  {spec.shadow.model}  shadow, {spec.shadow.sample_rate:.0%} of requests")
    if spec.sticky_header:
        typer.echo(f"  sticky on header {spec.sticky_header}")


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Deployment name.")], tracking_uri: TrackingUri = None
) -> None:
    """Print a deployment's routes, weights and shadow."""
    from loopline.serving.deployments import get_deployment

    _print(get_deployment(name, client=_client(tracking_uri)))


@app.command("list")
def list_(tracking_uri: TrackingUri = None) -> None:
    """List the deployments."""
    from loopline.serving.deployments import list_deployments

    c = _client(tracking_uri)
    for name in list_deployments(c.artifacts):  # type: ignore[attr-defined]
        typer.echo(name)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Deployment name.")], tracking_uri: TrackingUri = None
) -> None:
    """Delete a deployment (servers already running it keep their last state)."""
    from loopline.serving.deployments import delete_deployment

    delete_deployment(_client(tracking_uri).artifacts, name)  # type: ignore[attr-defined]
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
    typer.echo(f"wrote {output}/ for {bundle.model_uri} (image {bundle.image}):")
    for path in bundle.files:
        typer.echo(f"  {path}")
    typer.echo(f"next: docker build -t {bundle.image} {output} && kubectl apply -f {output}/k8s/")
