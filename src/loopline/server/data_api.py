"""The data routes under ``/api/2.0/loopline/data``: dataset versions, their diffs and validations.

=================================================  ============================================
``GET data/datasets``                              every dataset: latest version, aliases
``GET data/versions?name=``                        a dataset's versions, newest first
``GET data/version?uri=datasets:/<name>/<v>``      one version (also ``@alias``, ``@latest``):
                                                   schema, profile, size, aliases
``GET data/files?uri=``                            its files: path, size, BLAKE3
``GET data/diff?a=<uri>&b=<uri>``                  schema, rows, profile and file changes
``GET data/validations?uri=``                      validation results stored with the version
=================================================  ============================================

Read-only: versions are made where the data is (``loopline data add`` / ``log_dataset``), since
the bytes must be hashed there. The server keeps one ``DataClient`` for the process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.server.http import blocking, json_response, params, required_str
from loopline.server.state import state

router = APIRouter(prefix="/api/2.0/loopline")


def _data(request: Request) -> Any:
    client = getattr(request.app.state, "loopline_data", None)
    if client is None:
        from loopline.data import DataClient

        client = DataClient(state(request).settings)
        request.app.state.loopline_data = client
    return client


def _version_json(v: Any) -> dict[str, Any]:
    out = dataclasses.asdict(v)
    out["uri"] = v.uri
    out["aliases"] = list(v.aliases)
    return out


@router.get("/data/datasets")
async def list_datasets(request: Request) -> Response:
    items = await blocking(_data(request).datasets)
    return json_response({"datasets": [dataclasses.asdict(d) for d in items]})


@router.get("/data/versions")
async def list_versions(request: Request) -> Response:
    body = await params(request)
    items = await blocking(_data(request).versions, required_str(body, "name"))
    return json_response({"versions": [_version_json(v) for v in items]})


@router.get("/data/version")
async def get_version(request: Request) -> Response:
    body = await params(request)
    v = await blocking(_data(request).get_version, required_str(body, "uri"))
    return json_response({"version": _version_json(v)})


@router.get("/data/files")
async def list_files(request: Request) -> Response:
    body = await params(request)
    client = _data(request)

    def files() -> list[dict[str, Any]]:
        manifest = client.manifest(client.get_version(required_str(body, "uri")))
        return [{"path": e.path, "size": e.size, "digest": e.digest} for e in manifest.entries]

    return json_response({"files": await blocking(files)})


@router.get("/data/diff")
async def diff(request: Request) -> Response:
    body = await params(request)
    out = await blocking(_data(request).diff, required_str(body, "a"), required_str(body, "b"))
    return json_response(out)


@router.get("/data/validations")
async def validations(request: Request) -> Response:
    body = await params(request)
    items = await blocking(_data(request).validations, required_str(body, "uri"))
    return json_response({"validations": [dataclasses.asdict(r) for r in items]})
