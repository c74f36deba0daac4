"""What sits beside the APIs: liveness and readiness probes, the version, ``/`` and ``/docs``.

``GET /`` sends a browser (``Accept: text/html``) to the web UI and answers a program with a JSON
pointer to what the server offers. ``/docs`` is Swagger UI served from the package's own files
(``loopline.api_docs``), never from a CDN, so it works on an air-gapped cluster.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from loopline import api_docs
from loopline._version import __version__
from loopline.errors import NotFound
from loopline.server.http import json_response
from loopline.server.state import state

log = logging.getLogger("loopline.server")
router = APIRouter(include_in_schema=False)


@router.get("/health")
@router.get("/ping")
async def health() -> Response:
    return PlainTextResponse("OK")


@router.get("/ready")
async def ready(request: Request) -> Response:
    """Readiness: the metadata database answers (a replica that lost it stops getting traffic,
    while /health, the liveness probe, keeps it from being restarted for a database outage)."""
    from starlette.concurrency import run_in_threadpool

    engine = state(request).context.engine

    def ping() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    try:
        await run_in_threadpool(ping)
    except Exception as e:  # any failure means "not ready"; the reason goes to the body and the log
        log.warning("not ready: %s", e)
        return json_response({"ready": False, "reason": type(e).__name__}, status_code=503)
    return json_response({"ready": True})


@router.get("/version")
async def version() -> Response:
    return PlainTextResponse(__version__)


@router.get("/")
async def root(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):  # a browser's navigation
        return RedirectResponse("/ui/", status_code=307, headers={"Vary": "Accept"})
    return json_response(
        {
            "name": "loopline server",
            "version": __version__,
            "ui": "/ui/",
            "docs": "/docs",
            "openapi": "/openapi.json",
            "apis": {
                "mlflow": "/api/2.0/mlflow",
                "artifacts": "/api/2.0/mlflow-artifacts",
                "loopline": "/api/2.0/loopline",
            },
            "health": "/health",
        },
        headers={"Vary": "Accept"},
    )


@router.get("/docs")
async def docs(request: Request) -> Response:
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return HTMLResponse(api_docs.page("Loopline server API", request.app.openapi_url or "", root_path))


@router.get(api_docs.ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> Response:
    found = api_docs.asset(name)
    if found is None:
        raise NotFound(f"No file {name!r} in the API page's assets.")
    return Response(found[0], media_type=found[1], headers={"cache-control": "public, max-age=86400"})


@router.get("/api/3.0/mlflow/server-info", include_in_schema=True)
async def server_info(_: Request) -> Response:
    return json_response(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": True,
            "multipart_downloads_enabled": False,
            "presigned_upload_run_id_supported": False,
            "presigned_upload_model_id_supported": False,
            "features_enabled": {"gateway": False},
            "server": "loopline",
            "version": __version__,
        }
    )


__all__ = ["router"]
