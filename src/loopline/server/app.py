"""The ASGI app of ``loopline server``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from loopline._version import __version__
from loopline.config import Settings
from loopline.request_guard import RequestGuard
from loopline.server import errors
from loopline.server.access_log import AccessLogMiddleware
from loopline.server.auth import AuthMiddleware
from loopline.server.idempotency import IdempotencyMiddleware, KeyStore
from loopline.server.routing import PlainRoutes
from loopline.server.state import ServerState
from loopline.server.versioning import VersionMiddleware

log = logging.getLogger("loopline.server")


async def _collect_garbage_every(state: ServerState) -> None:
    """Opt-in periodic GC (MLflow #14988): purge runs deleted long enough ago, free their blobs, in
    every workspace (each has its own artifact store: ``loopline.artifacts.workspaces``)."""
    from sqlalchemy import select
    from starlette.concurrency import run_in_threadpool

    from loopline.artifacts.blobs import BlobArtifactStore
    from loopline.metadata import schema as t
    from loopline.tracking.gc import collect_garbage

    s = state.settings

    def collect(workspace: str) -> object:
        store = state.context.scoped(workspace=workspace).artifacts
        assert isinstance(store, BlobArtifactStore)  # the server's context is a database's
        tracking = state.tracking.scoped(workspace=workspace)
        return collect_garbage(tracking, store, older_than_ms=int(s.gc_older_than * 1000))

    def workspaces() -> list[str]:
        with state.context.engine.connect() as conn:
            return list(conn.execute(select(t.workspaces.c.name).order_by(t.workspaces.c.name)).scalars())

    while True:
        await asyncio.sleep(s.gc_interval)
        for workspace in await run_in_threadpool(workspaces):
            try:
                report = await run_in_threadpool(collect, workspace)
                log.info("gc of workspace %s: %s", workspace, report)
            except Exception:  # a failed round must not stop the next one
                log.exception("gc of workspace %s failed", workspace)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The server's background work, for as long as it serves: monitors and schedules due, the loop's
    controller, and the optional periodic gc."""
    from loopline.server import automation_api, monitoring_api, pipelines_api

    state: ServerState = app.state.loopline
    gc = asyncio.create_task(_collect_garbage_every(state)) if state.settings.gc_interval > 0 else None
    async with (
        monitoring_api.background(app),
        pipelines_api.background(app),
        automation_api.background(app),
    ):
        yield
    if gc is not None:
        gc.cancel()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the server for ``settings`` (default: from the environment)."""
    from loopline.server import (
        auth_api,
        automation_api,
        automation_reports_api,
        data_api,
        deployments_api,
        features_api,
        jobs,
        loopline_api,
        mlflow_artifacts,
        mlflow_registry,
        mlflow_tracking,
        monitoring_api,
        pipelines_api,
        probes,
        workspaces_api,
    )
    from loopline.server.ui import login as ui_login, routes as ui_routes, workspace_menu

    settings = settings or Settings.from_env()
    if settings.is_remote:
        from loopline.errors import InvalidInput

        raise InvalidInput(
            f"The server needs a database, not another server: {settings.tracking_uri}.",
            hint="Pass --store-uri sqlite:///path.db or postgresql://….",
        )

    app = FastAPI(
        lifespan=_lifespan,
        telemetry=None if settings.server_otel else {"tracing": False, "metrics": False, "logs": False},
        title="Loopline",
        version=__version__,
        description="Tracking, artifacts and lineage. MLflow-compatible REST API under /api/2.0/mlflow.",
        docs_url=None,  # served below from the package's own Swagger UI files, not a CDN
        redoc_url=None,
    )
    app.state.loopline = state = ServerState.open(settings)
    errors.install(app)
    app.add_middleware(errors.DatabaseOutageMiddleware)  # innermost: idempotency sees its 503s
    keys = KeyStore(
        state.context.engine,
        settings.workspace,
        ttl_s=settings.idempotency_ttl,
        lease_s=settings.idempotency_lease,
    )
    app.add_middleware(IdempotencyMiddleware, keys=keys)  # replays only what the caller may do
    if settings.auth:
        app.add_middleware(
            AuthMiddleware, authenticator=state.authenticator, default_workspace=settings.workspace
        )
    if settings.auth or settings.access_log:  # outside auth: a refused request is logged too
        app.add_middleware(AccessLogMiddleware, default_workspace=settings.workspace)
    app.add_middleware(VersionMiddleware)  # refuses an incompatible client first
    app.add_middleware(RequestGuard, settings=settings)  # outermost: refuses before anything runs

    routers = (
        probes.router,  # /health, /ready, /version, / and /docs
        mlflow_tracking.router,
        mlflow_artifacts.router,
        mlflow_registry.router,
        loopline_api.router,
        jobs.router,  # GET jobs/{id}: long requests answered 202 (server/jobs.py)
        data_api.router,
        deployments_api.router,
        features_api.router,
        monitoring_api.router,
        pipelines_api.router,
        automation_api.router,
        automation_reports_api.router,  # GET dora, why/{request_id}
        workspaces_api.router,  # the workspaces themselves: list, create, show
        monitoring_api.metrics_router,  # GET /metrics: Prometheus gauges per monitor
        auth_api.router,  # users, tokens, roles, whoami
    )
    # Every plain route, the probes included, is found by one dict lookup before FastAPI's ordered
    # matching (see routing.py); the routes themselves stay, for the OpenAPI document.
    app.router.routes.insert(0, PlainRoutes(routers, *app.router.routes))
    for router in routers:
        app.include_router(router)
    app.include_router(ui_routes.router)  # the web UI under /ui/ (server/ui/)
    app.include_router(ui_login.router)  # its sign-in: password or OIDC, then a session cookie
    app.include_router(workspace_menu.router)  # its workspace selector
    return app
