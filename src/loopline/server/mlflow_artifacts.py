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
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, BinaryIO

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from loopline import uris
from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.digests import CHUNK
from loopline.artifacts.paths import join, safe_path
from loopline.artifacts.protocol import FileInfo
from loopline.errors import InvalidInput, NotFound
from loopline.server import mlflow_models as m
from loopline.server.http import blocking, json_body, json_response, query_dict
from loopline.server.openapi_models import DocumentedRoute, Empty, documented
from loopline.server.state import artifacts, registry, state, tracking

router = APIRouter(route_class=DocumentedRoute)
# Documented, not enforced by FastAPI: the route's own check words the refusal.
UploadIdParam = Annotated[str, Path(json_schema_extra={"pattern": "^[0-9a-f]{32}$"})]
PartNumberParam = Annotated[int, Path(json_schema_extra={"minimum": 1, "maximum": 10_000})]
BYTES = "application/octet-stream"
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
@documented(request_media_type=BYTES, answer=Empty, errors=())
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
@documented(answer_media_type=BYTES)
async def download(path: str, request: Request) -> Response:
    return await _send(artifacts(request), safe_path(path))


async def _send(store: BlobArtifactStore, path: str) -> Response:
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
@documented(m.ListProxiedArtifacts, answer=m.ArtifactFiles, errors=())
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
@documented(answer=Empty)
async def delete_artifact(path: str, request: Request) -> Response:
    await blocking(artifacts(request).delete, safe_path(path))
    return json_response({})


# ---- artifacts by owner: a run, a model version, a logged model -----------------------------
# MLflow's routes that read an object's artifacts through the server, wherever its location is:
# Loopline's store (mlflow-artifacts:/…) or, with `server --no-serve-artifacts`, a folder under the
# direct root. Any other location is the client's to read: the server never opens paths it was
# not configured with, and a path that could leave its location is refused ("Invalid path", as
# MLflow words it).


def artifact_rel_path(path: object) -> str:
    """A relative artifact path from a request ("" for the root); MLflow's message otherwise."""
    if path is None or path == "":
        return ""
    try:
        if not isinstance(path, str):
            raise InvalidInput("not a string")
        return safe_path(path, allow_root=True)
    except InvalidInput:
        raise InvalidInput("Invalid path") from None


def _local_folder(uri: str) -> str | None:
    if uri.startswith("file://"):
        return os.path.realpath(urllib.parse.unquote(urllib.parse.urlparse(uri).path))
    return os.path.realpath(uri) if uri.startswith("/") else None


def _where(request: Request, location: str, rel: str) -> tuple[BlobArtifactStore | None, str]:
    """(the store, its path) for a location in Loopline's store, else (None, a local file path)."""
    if location.startswith(uris.ARTIFACT_SCHEME):
        return artifacts(request), join(safe_path(uris.artifact_path(location), allow_root=True), rel)
    direct = state(request).settings.direct_artifacts_root
    root, folder = _local_folder(direct) if direct else None, _local_folder(location)
    # Resolved, links included: a link a client wrote into its folder must not lead elsewhere.
    full = os.path.realpath(os.path.join(folder, rel)) if folder is not None else None
    if root is None or full is None or os.path.commonpath([root, full]) != root:
        raise NotFound(
            f"The artifacts at {location} are outside this server's artifact stores.",
            hint="Read them where they are, with the client.",
        )
    # The direct root holds a folder per experiment (<root>/<id>), of every workspace: a location
    # (a model version's source is the client's to choose) opens only the caller's experiments'.
    first = os.path.relpath(full, root).split(os.sep, 1)[0]
    if not first.isdigit() or not _own_experiment(request, first):
        raise NotFound(f"No artifacts at {location} in this workspace.")
    return None, full


def _own_experiment(request: Request, experiment_id: str) -> bool:
    try:
        tracking(request).get_experiment(experiment_id)
    except NotFound:
        return False
    return True


def _list_local(folder: str) -> list[FileInfo]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        FileInfo(e.name, True) if e.is_dir() else FileInfo(e.name, False, e.stat().st_size) for e in entries
    ]


async def list_location(request: Request, location: str, rel: str) -> list[dict[str, Any]]:
    """MLflow's ``files`` of a listing: paths relative to ``location`` (so they include ``rel``)."""
    store, where = _where(request, location, rel)
    entries = await blocking(store.list, where) if store else await blocking(_list_local, where)
    files: list[dict[str, Any]] = []
    for e in entries:
        item: dict[str, Any] = {"path": join(rel, e.path.rsplit("/", 1)[-1]), "is_dir": e.is_dir}
        if not e.is_dir:
            item["file_size"] = e.file_size
        files.append(item)
    return files


async def send_location(request: Request, location: str, rel: str) -> Response:
    """The file at ``rel`` below ``location``."""
    if not rel:
        raise InvalidInput("Invalid path", hint="Name a file.")
    store, where = _where(request, location, rel)
    if store is not None:
        return await _send(store, where)
    if not os.path.isfile(where):
        raise NotFound(f"No artifact {rel!r} at {location}.")
    return FileResponse(where, filename=rel.rsplit("/", 1)[-1], content_disposition_type="attachment")


def open_location(request: Request, location: str, rel: str) -> BinaryIO:
    """The file at ``rel`` below ``location``, open for reading (blocking: call it off the event
    loop); the same checks as ``send_location``, for a caller that reads the content itself."""
    if not rel:
        raise InvalidInput("Invalid path", hint="Name a file.")
    store, where = _where(request, location, rel)
    if store is not None:
        return store.open(where)
    if not os.path.isfile(where):
        raise NotFound(f"No artifact {rel!r} at {location}.")
    return open(where, "rb")  # the caller closes it


def _required_rel(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None:
        raise InvalidInput(f"Missing value for required parameter '{name}'.")
    return artifact_rel_path(value)


@router.get("/api/2.0/mlflow/artifacts/list")
@router.get("/ajax-api/2.0/mlflow/artifacts/list", include_in_schema=False)
@documented(m.ListRunArtifacts, answer=m.ArtifactListing)
async def list_run_artifacts(request: Request) -> Response:
    q = request.query_params
    rel = artifact_rel_path(q.get("path"))
    run_id = q.get("run_id") or q.get("run_uuid")
    if not run_id:
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    run = await blocking(tracking(request).get_run, run_id)
    return _listing(run.info.artifact_uri, await list_location(request, run.info.artifact_uri, rel))


def _listing(root_uri: str, files: list[dict[str, Any]]) -> Response:
    return json_response({"root_uri": root_uri, "files": files} if files else {"root_uri": root_uri})


@router.get("/get-artifact")
@router.get("/ajax-api/2.0/mlflow/get-artifact", include_in_schema=False)
@documented(m.GetRunArtifact, answer_media_type=BYTES)
async def get_run_artifact(request: Request) -> Response:
    rel = _required_rel(request, "path")
    run_id = request.query_params.get("run_id") or request.query_params.get("run_uuid")
    if not run_id:
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    run = await blocking(tracking(request).get_run, run_id)
    return await send_location(request, run.info.artifact_uri, rel)


@router.get("/model-versions/get-artifact")
@router.get(
    "//model-versions/get-artifact", include_in_schema=False
)  # MLflow's UI asks with two slashes; Flask merges them
@router.get("/ajax-api/2.0/mlflow/model-versions/get-artifact", include_in_schema=False)
@documented(m.GetModelVersionArtifact, answer_media_type=BYTES)
async def get_model_version_artifact(request: Request) -> Response:
    rel = _required_rel(request, "path")
    q = request.query_params
    name, version = q.get("name"), q.get("version")
    if not name or not version:
        raise InvalidInput("Missing value for required parameter 'name' or 'version'.")
    mv = await blocking(registry(request).get_model_version, name, version)
    return await send_location(request, mv.source, rel)


@router.get("/api/2.0/mlflow/logged-models/{model_id}/artifacts/directories")
@router.get("/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/directories", include_in_schema=False)
@documented(m.ListLoggedModelArtifacts, answer=m.ArtifactListing)
async def list_logged_model_artifacts(model_id: str, request: Request) -> Response:
    rel = artifact_rel_path(request.query_params.get("artifact_directory_path"))
    lm = await blocking(registry(request).get_logged_model, model_id)
    return _listing(lm.artifact_location, await list_location(request, lm.artifact_location, rel))


@router.get("/api/2.0/mlflow/logged-models/{model_id}/artifacts/files")
@router.get("/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files", include_in_schema=False)
@documented(m.GetLoggedModelArtifact, answer_media_type=BYTES)
async def get_logged_model_artifact(model_id: str, request: Request) -> Response:
    rel = _required_rel(request, "artifact_file_path")
    lm = await blocking(registry(request).get_logged_model, model_id)
    return await send_location(request, lm.artifact_location, rel)


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
@documented(m.MpuCreate, answer=m.MpuCreated, errors=())
async def mpu_create(path: str, request: Request) -> Response:
    body = await json_body(request)
    destination = _destination(path, body)
    num_parts = body.get("num_parts", 1)
    if isinstance(num_parts, float) and num_parts.is_integer():  # JSON's 5.0 is 5
        num_parts = int(num_parts)
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
@documented(request_media_type=BYTES, answer=Empty)
async def mpu_part(upload_id: UploadIdParam, part_number: PartNumberParam, request: Request) -> Response:
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
@documented(answer=m.UploadStatus)
async def mpu_status(upload_id: UploadIdParam, request: Request) -> Response:
    """Which parts arrived (to resume an interrupted upload)."""
    d = _existing_upload(artifacts(request), upload_id)
    parts = sorted(int(n[5:]) for n in os.listdir(d) if n.startswith("part-"))
    return json_response({"upload_id": upload_id, "path": _read_destination(d), "parts": parts})


def _read_destination(d: str) -> str:
    with open(os.path.join(d, "destination"), encoding="utf-8") as f:
        return f.read()


@router.post(PREFIX + "/mpu/complete/{path:path}")
@documented(m.MpuComplete, answer=Empty)
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
@documented(m.MpuAbort, answer=Empty, errors=())
async def mpu_abort(path: str, request: Request) -> Response:
    body = await json_body(request)
    _destination(path, body)
    d = _upload_dir(artifacts(request), str(body.get("upload_id") or ""))
    await blocking(_remove_tree, d)
    return json_response({})


def _remove_tree(d: str) -> None:
    import shutil

    shutil.rmtree(d, ignore_errors=True)
