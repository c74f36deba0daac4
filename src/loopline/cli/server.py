"""``loopline server``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated

import typer


def server(
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind. Another than loopback (0.0.0.0 accepts remote clients) needs "
            "LOOPLINE_AUTH=1, or --insecure-no-auth."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    store_uri: Annotated[
        str | None,
        typer.Option(
            "--store-uri",
            "--backend-store-uri",
            envvar="LOOPLINE_STORE_URI",
            help="Metadata database: sqlite:///path.db or postgresql://user@host/db. "
            "Default: ./.loopline/loopline.db",
            show_default=False,
        ),
    ] = None,
    artifacts_uri: Annotated[
        str | None,
        typer.Option(
            "--artifacts-uri",
            "--artifacts-destination",
            envvar="LOOPLINE_ARTIFACTS_URI",
            help="Artifact root: a folder or s3://bucket/prefix. Default: ./.loopline/artifacts",
            show_default=False,
        ),
    ] = None,
    default_artifact_root: Annotated[
        str | None,
        typer.Option(
            "--default-artifact-root",
            help="MLflow's flag. With artifact serving (the default) it is where the server keeps "
            "artifacts, like --artifacts-uri. With --no-serve-artifacts it is the root of new "
            "experiments' artifact locations, which clients then write to directly.",
            show_default=False,
        ),
    ] = None,
    serve_artifacts: Annotated[
        bool,
        typer.Option(
            "--serve-artifacts/--no-serve-artifacts",
            help="MLflow's flags. --no-serve-artifacts, for MLflow compatibility only: clients read "
            "and write artifacts straight at file:// or s3:// locations, bypassing the server and "
            "its checks.",
        ),
    ] = True,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    gc_every: Annotated[
        str | None,
        typer.Option(
            help="Collect garbage periodically (e.g. 24h): purge deleted runs and free their blobs."
        ),
    ] = None,
    gc_older_than: Annotated[
        str, typer.Option(help="With --gc-every: only runs deleted at least this long ago.")
    ] = "30d",
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Bind a non-loopback address without authentication: anyone who reaches the port "
            "may read, change and delete everything. Only on a network you trust.",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="FORWARDED_ALLOW_IPS",
            help="Addresses of reverse proxies whose X-Forwarded-For/-Proto are trusted "
            "(comma-separated, * for any). Default: 127.0.0.1.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the tracking server: MLflow's REST API (point MLFLOW_TRACKING_URI at it), artifact proxy,
    lineage and events, with OpenAPI docs at /docs.

    Example: [bold]loopline server --port 5000 --store-uri postgresql://localhost/loopline[/]
    """
    import logging

    import uvicorn

    from loopline.cli.common import require_free_port
    from loopline.cli.gc import parse_age
    from loopline.config import Settings
    from loopline.errors import InvalidInput
    from loopline.metadata.engine import create_store_engine
    from loopline.request_guard import BIND_HOST_ENV, is_loopback

    # The server's own database: --store-uri / LOOPLINE_STORE_URI, else a database URI in
    # LOOPLINE_TRACKING_URI; a client-side http:// tracking URI in the same shell is not a database.
    env = dict(os.environ)
    for name in ("LOOPLINE_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        if env.get(name, "").startswith(("http://", "https://")):
            env.pop(name)
    direct_root = None
    if default_artifact_root and default_artifact_root.startswith("mlflow-artifacts:"):
        default_artifact_root = None  # MLflow's proxied root: what Loopline does anyway
    if serve_artifacts and default_artifact_root:
        if artifacts_uri:
            raise typer.BadParameter(
                "With artifact serving, --default-artifact-root and --artifacts-uri both name where "
                "the server keeps artifacts: give one.",
                param_hint="--default-artifact-root",
            )
        artifacts_uri = default_artifact_root
    settings = Settings.from_env(env, tracking_uri=store_uri, artifacts_uri=artifacts_uri)
    if not (settings.auth or insecure_no_auth or is_loopback(host)):
        raise InvalidInput(
            f"Refusing to bind {host} without authentication: anyone who reaches it could read, "
            "change and delete every experiment, model and dataset.",
            hint="Set LOOPLINE_AUTH=1 to require authentication, or pass --insecure-no-auth on a "
            "network you trust (see docs/security.md).",
        )
    if not serve_artifacts:
        direct_root = _as_uri(default_artifact_root or settings.artifacts_uri)
        settings = dataclasses.replace(settings, direct_artifacts_root=direct_root)
        typer.echo(
            f"Warning: --no-serve-artifacts: clients write artifacts straight to {direct_root}, "
            "bypassing this server's checks.",
            err=True,
        )
    if gc_every:
        os.environ["LOOPLINE_GC_INTERVAL"] = str(parse_age(gc_every) / 1000)
        os.environ["LOOPLINE_GC_OLDER_THAN"] = str(parse_age(gc_older_than) / 1000)
    require_free_port(host, port)  # before the store is made: a failed start leaves nothing behind
    create_store_engine(settings.tracking_uri).dispose()  # migrate once, before workers race to
    # Workers are separate processes: hand them the resolved settings through the environment.
    os.environ["LOOPLINE_TRACKING_URI"] = settings.tracking_uri
    os.environ["LOOPLINE_ARTIFACTS_URI"] = settings.artifacts_uri
    if direct_root:
        os.environ["LOOPLINE_DIRECT_ARTIFACTS_ROOT"] = direct_root
    else:
        os.environ.pop("LOOPLINE_DIRECT_ARTIFACTS_ROOT", None)
    os.environ[BIND_HOST_ENV] = host  # the request guard's default Host rule depends on it
    # Loopline's own log lines (refused requests, background work) at the level asked for.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("loopline").setLevel(log_level.upper())
    typer.echo(
        f"Loopline server on http://{host}:{port}  (store: {settings.tracking_uri}, "
        f"artifacts: {settings.artifacts_uri})"
    )
    uvicorn.run(
        "loopline.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # uvicorn's: plain text, CPU on every request (Loopline's: server/access_log.py)
        forwarded_allow_ips=forwarded_allow_ips,
    )


def _as_uri(root: str) -> str:
    """A local folder as the file:// URI MLflow's clients expect in an artifact location."""
    return root if "://" in root else Path(root).expanduser().resolve().as_uri()
