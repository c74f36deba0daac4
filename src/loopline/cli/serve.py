"""``loopline serve``: the inference server for one model or a deployment."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.serving.config import ServeConfig


def serve(
    model_uri: Annotated[
        str | None,
        typer.Argument(
            help="models:/name@alias, models:/name/version or a model folder. Omit with --deployment.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind. Use 0.0.0.0 to accept remote clients.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model).")] = 1,
    deployment: Annotated[
        str | None,
        typer.Option(
            help="Serve a deployment (weighted versions + shadow) instead of one model.", show_default=False
        ),
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option(help="Most rows merged into one predict call (1 = no batching).")
    ] = 64,
    max_wait_ms: Annotated[
        float,
        typer.Option(help="Longest a request is held for concurrent ones to join (0 = never hold)."),
    ] = 2.0,
    max_queue_rows: Annotated[int, typer.Option(help="Queued rows beyond which requests get 429.")] = 8192,
    max_in_flight: Annotated[
        int,
        typer.Option(
            envvar="LOOPLINE_SERVE_MAX_IN_FLIGHT",
            help="Inference requests a worker handles at once; more get 429 + Retry-After (0 = no limit).",
        ),
    ] = 0,
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between checks for alias moves and deployment changes (0 = off).")
    ] = 5.0,
    inference_log: Annotated[
        bool, typer.Option(help="Log every request and response as Parquet in the artifact store.")
    ] = True,
    name: Annotated[
        str | None,
        typer.Option(help="Model name to serve a folder under (OIP /v2/models/NAME).", show_default=False),
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Version to report for a folder.", show_default=False)
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            "-t",
            envvar="LOOPLINE_TRACKING_URI",
            help="Registry: database URI, folder or http:// server. Default: ./.loopline",
            show_default=False,
        ),
    ] = None,
    artifacts_uri: Annotated[
        str | None,
        typer.Option(
            envvar="LOOPLINE_ARTIFACTS_URI", help="Artifact root (models, inference log).", show_default=False
        ),
    ] = None,
    allow_pickle: Annotated[
        bool, typer.Option(help="Load pickled models (their code runs on load: trusted authors only).")
    ] = False,
    feature_service: Annotated[
        str | None,
        typer.Option(
            help="A feature service: requests then carry entity keys, and the server adds the features.",
            show_default=False,
        ),
    ] = None,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth/--no-auth",
            envvar="LOOPLINE_SERVE_AUTH",
            help="Predictions need a bearer token of a viewer of the workspace (off: a gateway guards it).",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="Log level (uvicorn and loopline).")] = "info",
) -> None:
    """Serve a model over HTTP: MLflow's /invocations and the Open Inference Protocol (/v2, KServe and
    Triton clients), with adaptive batching, Prometheus /metrics and an inference log.

    Examples:
      [bold]loopline serve models:/churn@champion --port 8080[/]
      [bold]loopline serve --deployment churn-prod --workers 2[/]
    """
    import logging

    import uvicorn

    from loopline.cli.common import require_free_port
    from loopline.config import Settings
    from loopline.errors import InvalidInput
    from loopline.request_guard import BIND_HOST_ENV
    from loopline.serving.config import ServeConfig

    if (model_uri is None) == (deployment is None):
        raise InvalidInput(
            "Give a model URI or --deployment NAME (one of them).",
            hint="loopline serve models:/churn@champion  |  loopline serve --deployment churn-prod",
        )
    if workers < 1:
        raise InvalidInput("--workers must be at least 1.")
    if max_in_flight < 0:
        raise InvalidInput("--max-in-flight must be 0 (no limit) or more.")
    config = ServeConfig(
        model_uri=model_uri,
        deployment=deployment,
        name=name,
        version=model_version,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_queue_rows=max_queue_rows,
        max_in_flight=max_in_flight,
        poll_interval=poll_interval,
        inference_log=inference_log,
        allow_pickle=allow_pickle,
        feature_service=feature_service,
        load_before_serving=workers > 1,
        auth=auth,
    )
    config.batching  # noqa: B018 - validates the options before any worker starts
    settings = Settings.from_env(tracking_uri=tracking_uri, artifacts_uri=artifacts_uri)
    require_free_port(host, port)
    _preflight(config, settings)
    # Workers are fresh interpreters: hand them everything through the environment.
    os.environ.update(config.to_env())
    os.environ["LOOPLINE_TRACKING_URI"] = settings.tracking_uri
    os.environ["LOOPLINE_ARTIFACTS_URI"] = settings.artifacts_uri
    os.environ[BIND_HOST_ENV] = host  # the request guard's default Host rule depends on it
    if workers > 1:  # one /metrics for all workers (prometheus-client's multiprocess mode)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="loopline-metrics-"))
    level = log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("loopline").setLevel(level)
    what = model_uri or f"deployment {deployment}"
    typer.echo(
        f"Loopline inference server on http://{host}:{port}  serving {what}  "
        f"(workers {workers}, batch ≤ {max_batch_size} rows, wait ≤ {max_wait_ms:g} ms)"
    )
    uvicorn.run(
        "loopline.serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=30,
    )


def _preflight(config: ServeConfig, settings: Settings) -> None:
    """Fail now, with a clear message, on a model or deployment that does not exist."""
    from loopline.serving.runtime import Runtime
    from loopline.tracking import Client

    runtime = Runtime(model_uri=config.model_uri, deployment=config.deployment, client=Client(settings))
    _, resolved = runtime.resolve()
    for uri, weight in resolved.routes:
        typer.echo(f"  {uri}  weight {weight:g}")
    if resolved.shadow is not None:
        typer.echo(f"  {resolved.shadow[0]}  shadow ({resolved.shadow[1]:.0%} of requests)")
