"""MLflow's artifact proxy: ``/api/2.0/mlflow-artifacts/artifacts/<path>`` and multipart uploads.

Bodies stream in and out in chunks; nothing is ever held whole in memory. Uploads are staged
and hashed as they arrive, then committed atomically. Multipart upload (MLflow's ``mpu`` routes,
used by its client when ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true``) hands the client one URL
per part on this server; parts already received survive a failure, so an interrupted upload
resumes by re-sending only the missing parts (``GET /api/2.0/loopline/uploads/<id>`` lists those
that arrived). As in MLflow, an ``mpu`` URL names the destination folder and the body's ``path``
(the client's local file) the file name.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.digests import CHUNK
from loopline.artifacts.paths import join, safe_path
from loopline.errors import InvalidInput, NotFound
from loopline.server.http import blocking, json_body, json_response, query_dict
from loopline.server.state import artifacts

router = APIRouter()
PREFIX = "/api/2.0/mlflow-artifacts"
UPLOADS = "/api/2.0/loopline/uploads"


async def _stream_into(store: BlobArtifactStore, request: Request, path: str) -> None:
    staged = await blocking(store.stage)
    try:
        async for chunk in request.stream():
            if chunk:
                await blocking(staged.write, chunk) if len(chunk) > CHUNK else staged.write(chunk)
        await blocking(staged.commit, path)
    except BaseException:
        staged.abort()
        raise


@router.put(PREFIX + "/artifacts/{path:path}")
async def upload(path: str, request: Request) -> Response:
    path = safe_path(path)
    await _stream_into(artifacts(request), request, path)
    return json_response({})


async def _iter_file(store: BlobArtifactStore, path: str) -> AsyncIterator[bytes]:
    f = await blocking(store.open, path)
    try:
        while chunk := await blocking(f.read, CHUNK):
            yield chunk
    finally:
        f.close()


@router.get(PREFIX + "/artifacts/{path:path}")
async def download(path: str, request: Request) -> Response:
    path = safe_path(path)
    store = artifacts(request)
    local = await blocking(store.local_blob_path, path)
    filename = path.rsplit("/", 1)[-1]
    if local is not None:  # sendfile, with HTTP Range support for resumable downloads
        return FileResponse(
            local,
            filename=filename,
            media_type="application/octet-stream",
            content_disposition_type="attachment",
        )
    info = await blocking(store.info, path)
    return StreamingResponse(
        _iter_file(store, path),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(info.file_size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


@router.get(PREFIX + "/artifacts")
async def list_artifacts(request: Request) -> Response:
    path = _folder(str(query_dict(request).get("path") or ""))
    entries = await blocking(artifacts(request).list, path)
    files: list[dict[str, Any]] = []
    for e in entries:
        item: dict[str, Any] = {"path": e.path.rsplit("/", 1)[-1], "is_dir": e.is_dir}
        if not e.is_dir:
            item["file_size"] = e.file_size
        files.append(item)
    return json_response({"files": files} if files else {})


@router.delete(PREFIX + "/artifacts/{path:path}")
async def delete_artifact(path: str, request: Request) -> Response:
    await blocking(artifacts(request).delete, safe_path(path))
    return json_response({})


# ---- multipart (resumable) upload ----------------------------------------------------------


def _upload_dir(store: BlobArtifactStore, upload_id: str) -> str:
    if not upload_id or not all(c in "0123456789abcdef" for c in upload_id) or len(upload_id) != 32:
        raise InvalidInput(f"Invalid upload id {upload_id!r}.")
    return os.path.join(store.staging_dir(), "uploads", upload_id)


def _existing_upload(store: BlobArtifactStore, upload_id: str) -> str:
    d = _upload_dir(store, upload_id)
    if not os.path.isdir(d):
        raise NotFound(f"No multipart upload {upload_id!r}.", hint="Create one with mpu/create.")
    return d


def _folder(path: str) -> str:
    """A folder path from a URL or query: "" is the root; absolute paths are refused (as in MLflow)."""
    return safe_path(path) if path else ""


def _destination(folder: str, body: dict[str, Any]) -> str:
    """Where an upload lands: as in MLflow, the URL names the folder and ``path`` (the client's
    local file) gives the file name."""
    local = body.get("path")
    if not isinstance(local, str) or not local:
        raise InvalidInput("Missing value for required parameter 'path' (the file being uploaded).")
    name = re.split(r"[\\/]", local.rstrip("/\\"))[-1]  # a Windows client sends backslashes
    return safe_path(join(_folder(folder), name))


@router.post(PREFIX + "/mpu/create/{path:path}")
async def mpu_create(path: str, request: Request) -> Response:
    body = await json_body(request)
    destination = _destination(path, body)
    num_parts = body.get("num_parts", 1)
    if not isinstance(num_parts, int) or isinstance(num_parts, bool) or not 1 <= num_parts <= 10_000:
        raise InvalidInput("num_parts must be an integer between 1 and 10000.")
    upload_id = uuid.uuid4().hex
    d = _upload_dir(artifacts(request), upload_id)
    os.makedirs(d)
    with open(os.path.join(d, "destination"), "w", encoding="utf-8") as f:
        f.write(destination)
    base = str(request.base_url).rstrip("/")
    creds = [
        {"url": f"{base}{UPLOADS}/{upload_id}/parts/{n}", "part_number": n, "headers": {}}
        for n in range(1, num_parts + 1)
    ]
    return json_response({"upload_id": upload_id, "credentials": creds})


@router.put(UPLOADS + "/{upload_id}/parts/{part_number}")
async def mpu_part(upload_id: str, part_number: int, request: Request) -> Response:
    if not 1 <= part_number <= 10_000:
        raise InvalidInput("part_number must be between 1 and 10000.")
    store = artifacts(request)
    d = _existing_upload(store, upload_id)
    import blake3

    hasher = blake3.blake3()
    tmp = os.path.join(d, f".part-{part_number:05d}.{uuid.uuid4().hex[:8]}")
    try:
        async with await anyio.open_file(tmp, "wb") as f:
            async for chunk in request.stream():
                hasher.update(chunk)
                await f.write(chunk)
        os.replace(tmp, os.path.join(d, f"part-{part_number:05d}"))  # a part is all there or absent
    except BaseException:  # e.g. the client went away mid-part: it re-sends the whole part
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    etag = hasher.hexdigest()
    return json_response({}, headers={"ETag": etag})


@router.get(UPLOADS + "/{upload_id}")
async def mpu_status(upload_id: str, request: Request) -> Response:
    """Which parts arrived (to resume an interrupted upload)."""
    d = _existing_upload(artifacts(request), upload_id)
    parts = sorted(int(n[5:]) for n in os.listdir(d) if n.startswith("part-"))
    return json_response({"upload_id": upload_id, "path": _read_destination(d), "parts": parts})


def _read_destination(d: str) -> str:
    with open(os.path.join(d, "destination"), encoding="utf-8") as f:
        return f.read()


@router.post(PREFIX + "/mpu/complete/{path:path}")
async def mpu_complete(path: str, request: Request) -> Response:
    body = await json_body(request)
    destination = _destination(path, body)
    store = artifacts(request)
    upload_id = str(body.get("upload_id") or "")
    d = _existing_upload(store, upload_id)
    if destination != _read_destination(d):
        raise InvalidInput(
            f"Upload {upload_id} was created for {_read_destination(d)!r}, not {destination!r}.",
            hint="Complete it with the folder and path it was created with.",
        )
    numbers = _part_numbers(body.get("parts"))
    missing = [n for n in numbers if not os.path.exists(os.path.join(d, f"part-{n:05d}"))]
    if missing:
        raise InvalidInput(
            f"Parts {missing} of upload {upload_id} never arrived.", hint="Upload them again, then complete."
        )

    def assemble() -> None:
        with store.stage() as staged:
            try:
                for n in numbers:
                    with open(os.path.join(d, f"part-{n:05d}"), "rb") as f:
                        while chunk := f.read(CHUNK):
                            staged.write(chunk)
            except FileNotFoundError:  # a concurrent complete or abort got there first
                raise NotFound(f"No multipart upload {upload_id!r}.") from None
            staged.commit(destination)
        _remove_tree(d)

    await blocking(assemble)
    return json_response({})


def _part_numbers(parts: object) -> list[int]:
    """The sorted, distinct part numbers of mpu/complete's ``parts`` ([{"part_number", "etag"}])."""
    if not isinstance(parts, list) or not parts:
        raise InvalidInput("Missing value for required parameter 'parts'.")
    numbers: set[int] = set()
    for p in parts:
        n = p.get("part_number") if isinstance(p, dict) else None
        if isinstance(n, str) and n.isascii() and n.isdigit():
            n = int(n)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10_000:
            raise InvalidInput(
                f"Invalid entry {p!r:.100} in 'parts': expected {{'part_number': 1..10000, 'etag': …}}."
            )
        numbers.add(n)
    return sorted(numbers)


@router.post(PREFIX + "/mpu/abort/{path:path}")
async def mpu_abort(path: str, request: Request) -> Response:
    body = await json_body(request)
    _destination(path, body)
    d = _upload_dir(artifacts(request), str(body.get("upload_id") or ""))
    await blocking(_remove_tree, d)
    return json_response({})


def _remove_tree(d: str) -> None:
    import shutil

    shutil.rmtree(d, ignore_errors=True)
