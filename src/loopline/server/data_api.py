"""The data routes under ``/api/2.0/loopline/data``: blobs, dataset versions, aliases, validations.

A client adds a version through the server in four steps. The bytes are hashed where they are (the
client's hash cache makes an unchanged file free), and the server checks every digest it is given:

1. ``POST data/blobs/missing`` ``{"digests": [...]}`` → ``{"missing": [...]}``: the blobs the
   server's store lacks (up to 100,000 per request).
2. ``POST data/blobs/batch``, a body of ``application/x-loopline-blobs`` frames (the magic line
   ``loopline-blobs/1``, then per blob: 32 bytes of raw BLAKE3, 8 of big-endian size, the bytes;
   ``loopline.data.blob_frames``; up to 10,000 blobs) → ``{"received": n, "stored": new}``. Each
   blob is hashed as it streams in and moved into place only whole and verified; the first whose
   bytes are not its digest's is refused (400, nothing of it stored; the blobs before it stay,
   each correct by construction). A body cut short stores nothing of the blob it was in. The
   client packs small blobs into batches of ~16 MiB and sends a few batches at once; a big blob
   travels alone. ``PUT data/blobs/<blake3>`` with the raw bytes does the same for one blob
   (→ ``{"digest", "stored"}``), through the same code.
3. The manifest, uploaded like any blob.
4. ``POST data/versions`` (``CreateVersion``: name, digest of the manifest, format, source,
   num_files, size_bytes, num_rows, schema, profile, description) →
   ``{"version": {...}, "created": bool}``. The manifest and every blob it names must be on the
   server, and the counts must match it; the tree is pinned, then the version made if the content
   differs from the latest version's (else ``created: false``: retries make no duplicates).

Reads and the rest:

- ``GET data/blobs/<blake3>``: the blob's bytes, streamed (404 if absent).
- ``GET data/datasets`` → ``{"datasets": [...]}``: each with its latest version and aliases.
- ``GET data/versions?name=`` → ``{"versions": [...]}``, newest first.
- ``GET data/version?uri=datasets:/<name>/<v>`` (also ``@alias``, ``@latest``, a digest prefix)
  → ``{"version": {...}}``; ``PATCH data/version`` ``{name, version, description}``.
- ``GET data/files?uri=`` → ``{"files": [{path, size, digest}]}``.
- ``GET data/diff?a=<uri>&b=<uri>``: schema, rows, profile and file changes.
- ``POST data/aliases`` ``{name, alias, version}``; ``DELETE data/aliases`` ``{name, alias}``.
- ``GET data/validations?uri=`` (or ``name`` and ``version``) → ``{"validations": [...]}``;
  ``POST data/validations`` ``{name, version, suite, success, result}`` → ``{"id": n}``.
- ``POST data/lineage`` ``{from_uri, to_uri, relation}``: an edge, e.g. ``input_of`` a run.
- ``POST data/gc`` ``{older_than_s}`` → ``{"removed", "freed_bytes"}``: the workspace's ``data gc``
  (pins no version names, then blobs nothing uses, each older than ``older_than_s``), as a job.

Errors are 4xx JSON ``{"error_code", "message"}``. Each request builds the data store from the
request's context (``server.state.context``); blobs live in the server's artifact store. Creating a
version costs one stat per blob (one listing on S3), quick even for 10,000 files; uploads are
received on the event loop and hashed and written on a thread of their own
(``loopline.server.blob_uploads``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from loopline.artifacts.digests import CHUNK, check_digest
from loopline.artifacts.manifest import Manifest
from loopline.data.blob_frames import MEDIA_TYPE
from loopline.errors import InvalidInput, NotFound
from loopline.protocol.jobs import ProgressFn
from loopline.server.blob_uploads import receive_blobs
from loopline.server.http import (
    blocking,
    json_body,
    json_response,
    optional_int,
    optional_str,
    params,
    required_str,
)
from loopline.server.jobs import ACCEPTED, run_job
from loopline.server.openapi_models import Answer, DocumentedRoute, Empty, Name, documented
from loopline.server.state import context
from loopline.server.workspace_artifacts import artifacts

router = APIRouter(prefix="/api/2.0/loopline", tags=["data"], route_class=DocumentedRoute)
MAX_MISSING = 100_000  # digests per `blobs/missing` request


def _store(request: Request) -> Any:
    from loopline.data.store import open_data_store

    return open_data_store(context(request))


def _client(request: Request) -> Any:
    from loopline.data.client import DataClient

    return DataClient(context=context(request))


# ---- typed bodies (they document the routes in /docs) --------------------------------------


class VersionOut(Answer):
    uri: str
    name: str
    version: int
    digest: str
    manifest_digest: str
    format: str
    source: str
    num_files: int
    size_bytes: int
    num_rows: int | None
    schema_: dict[str, str] = Field(alias="schema")
    profile: dict[str, Any]
    description: str
    created_by: str
    creation_time: int
    aliases: list[str]


# Documented here, checked by check_digest, whose refusal says what a digest is.
Digest = Annotated[
    str,
    Field(
        description="a BLAKE3 digest: 64 lowercase hex digits",
        json_schema_extra={"pattern": "^[0-9a-f]{64}$"},
    ),
]
DigestPath = Annotated[
    str,
    Path(
        description="the blob's BLAKE3: 64 lowercase hex digits",
        json_schema_extra={"pattern": "^[0-9a-f]{64}$"},
    ),
]


class CreateVersion(BaseModel):
    name: Name
    digest: Digest = Field(description="BLAKE3 of the manifest blob, already uploaded.")
    format: Literal["parquet", "csv", "json", "files"]
    source: str = ""
    num_files: int = Field(ge=1)
    size_bytes: int = Field(ge=0)
    num_rows: int | None = Field(default=None, ge=0)
    schema_: dict[str, str] = Field(default_factory=dict, alias="schema")
    profile: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class CreatedVersion(Answer):
    version: VersionOut
    created: bool = Field(description="False: the content equals the latest version's.")


class VersionReply(Answer):
    version: VersionOut


class VersionsReply(Answer):
    versions: list[VersionOut]


class SummaryOut(Answer):
    name: str
    description: str
    latest_version: int
    num_versions: int
    aliases: dict[str, int] = Field(description="alias -> version")
    last_updated_time: int


class DatasetsReply(Answer):
    datasets: list[SummaryOut]


class FileOut(Answer):
    path: str
    size: int
    digest: str


class FilesReply(Answer):
    files: list[FileOut]


class Change(Answer):
    from_: Any = Field(alias="from")
    to: Any


class SchemaDiff(Answer):
    added: dict[str, str]
    removed: dict[str, str]
    type_changed: dict[str, list[str]] = Field(description="column -> [type in a, type in b]")


class FilesDiff(Answer):
    added: list[str]
    removed: list[str]
    changed: list[str]


class DiffReply(Answer):
    from_: str = Field(alias="from")
    to: str
    same_content: bool
    rows: Change
    size_bytes: Change
    schema_: SchemaDiff = Field(alias="schema")
    files: FilesDiff
    profile: dict[str, Any] | None = Field(None, description="per-column profile changes (tables)")


class ValidationOut(Answer):
    id: int
    name: str
    version: int
    suite: str
    success: bool
    result: dict[str, Any]
    created_by: str
    creation_time: int


class ValidationsReply(Answer):
    validations: list[ValidationOut]


class IdReply(Answer):
    id: int


class BlobStored(Answer):
    digest: str
    stored: bool = Field(description="False: the server had it already.")


class BlobsStored(Answer):
    received: int
    stored: int = Field(description="how many were new to the server")


class MissingBlobs(BaseModel):
    digests: list[Digest] = Field(max_length=MAX_MISSING)


class MissingBlobsOut(Answer):
    missing: list[str]


Uri = Annotated[str, Field(min_length=1, max_length=2048, description="datasets:/<name>/<version|@alias>")]


class NameQuery(BaseModel):
    name: Name


class UriQuery(BaseModel):
    uri: Uri


class DiffQuery(BaseModel):
    a: Uri
    b: Uri


class ValidationsQuery(BaseModel):
    uri: Uri | None = Field(None, description="the version; or name (and version)")
    name: Name | None = None
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class SetDescription(BaseModel):
    name: Name
    version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    description: str


class AliasRef(BaseModel):
    name: Name
    alias: Name


class SetAlias(BaseModel):
    name: Name
    alias: Name
    version: int = Field(ge=1, le=2**31 - 1)


class RecordValidation(BaseModel):
    name: Name
    version: int = Field(ge=1, le=2**31 - 1)
    suite: str
    success: bool
    result: dict[str, Any]


class LineageEdge(BaseModel):
    from_uri: str = Field(pattern=r"^[a-z][a-z0-9+.-]*:/")
    to_uri: str = Field(pattern=r"^[a-z][a-z0-9+.-]*:/")
    relation: str = Field(min_length=1, max_length=64)


def _version_json(v: Any) -> dict[str, Any]:
    from loopline.data.wire import version_to_json

    return version_to_json(v)


# ---- blobs ---------------------------------------------------------------------------------


@router.post("/data/blobs/missing", response_model=MissingBlobsOut)
async def missing_blobs(body: MissingBlobs, request: Request) -> Response:
    absent = await blocking(artifacts(request).missing, body.digests)
    return json_response({"missing": sorted(absent)})


_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put("/data/blobs/{digest}", response_model=BlobStored, openapi_extra=_RAW_BODY)
async def put_blob(digest: DigestPath, request: Request) -> Response:
    """Store the raw body as the blob ``digest``: hashed as it streams in, refused (400) if it is
    not that digest's bytes, moved into place only whole."""
    writer = await receive_blobs(request, artifacts(request), check_digest(digest))
    return json_response({"digest": digest, "stored": bool(writer.stored)})


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/data/blobs/batch", response_model=BlobsStored, openapi_extra=_BATCH_BODY)
async def put_blobs(request: Request) -> Response:
    """Store many blobs sent in one body (``loopline.data.blob_frames``): each hashed as it
    streams in and moved into place only whole and verified; 400 for the first one that is not
    its digest's bytes (nothing of it is stored) or for a malformed body."""
    writer = await receive_blobs(request, artifacts(request))
    return json_response({"received": writer.received, "stored": writer.stored})


@router.get("/data/blobs/{digest}")
@documented(answer_media_type="application/octet-stream")
async def get_blob(digest: DigestPath, request: Request) -> Response:
    digest = check_digest(digest)
    store = artifacts(request)
    if store.is_local:
        path = store.blob_path(digest)
        if not os.path.isfile(path):
            raise NotFound(f"No blob {digest[:12]}… on this server.")
        return FileResponse(path, media_type="application/octet-stream")  # sendfile
    stream = await blocking(store.open_blob, digest)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await blocking(stream.read, CHUNK):
                yield chunk
        finally:
            stream.close()

    return StreamingResponse(chunks(), media_type="application/octet-stream")


# ---- versions ------------------------------------------------------------------------------


@router.post("/data/versions", response_model=CreatedVersion)
async def create_version(body: CreateVersion, request: Request) -> Response:
    ctx = context(request)
    store = artifacts(request)

    def create() -> tuple[Any, bool]:
        import time

        from loopline.data.io import format_of
        from loopline.data.types import VersionContent
        from loopline.names import check_name

        name = check_name("dataset", body.name)
        digest = check_digest(body.digest)
        try:
            manifest = Manifest.decode(store.read_blob(digest))
        except NotFound:
            raise InvalidInput(
                f"The manifest {digest[:12]}… is not on the server.",
                hint="Upload it (POST data/blobs/batch) before creating the version.",
            ) from None
        if manifest.digest != digest:  # a blob named by its content cannot differ, but be sure
            raise InvalidInput(f"The blob {digest[:12]}… is not a canonical manifest.")
        # Pinned first, then checked: gc cannot take a blob between the check and the version row.
        # A pin left by a refused request names no version; `data gc` drops it after its grace.
        store.pin(f"datasets/{ctx.workspace}/{name}/{digest}", digest, {"dataset": name, "time": time.time()})
        absent = store.missing(manifest.digests())
        if absent:
            raise InvalidInput(
                f"{len(absent)} of the version's {len(manifest)} files are not on the server "
                f"(e.g. {sorted(absent)[0][:12]}…): no version was made.",
                hint="Upload the missing blobs first (POST data/blobs/missing lists them).",
            )
        if body.num_files != len(manifest) or body.size_bytes != manifest.size:
            raise InvalidInput(
                f"num_files/size_bytes ({body.num_files}, {body.size_bytes}) disagree with the manifest "
                f"({len(manifest)}, {manifest.size})."
            )
        expected = format_of([e.path for e in manifest])
        if body.format not in (expected, "files"):
            raise InvalidInput(f"format {body.format!r} does not fit the files (they are {expected}).")
        content = VersionContent(
            digest=digest,
            format=body.format,
            source=body.source,
            num_files=body.num_files,
            size_bytes=body.size_bytes,
            num_rows=body.num_rows,
            schema=body.schema_,
            profile=body.profile,
            description=body.description,
        )
        result: tuple[Any, bool] = _store(request).create_version(name, content)
        return result

    version, created = await blocking(create)
    return json_response({"version": _version_json(version), "created": created})


@router.get("/data/datasets", response_model=DatasetsReply)
async def list_datasets(request: Request) -> Response:
    from loopline.data.wire import summary_to_json

    items = await blocking(_store(request).list_datasets)
    return json_response({"datasets": [summary_to_json(d) for d in items]})


@router.get("/data/versions", response_model=VersionsReply)
@documented(NameQuery)
async def list_versions(request: Request) -> Response:
    body = await params(request)
    items = await blocking(_store(request).list_versions, required_str(body, "name"))
    return json_response({"versions": [_version_json(v) for v in items]})


@router.get("/data/version", response_model=VersionReply)
@documented(UriQuery)
async def get_version(request: Request) -> Response:
    body = await params(request)
    uri = required_str(body, "uri")
    v = await blocking(_store(request).resolve, uri if uri.startswith("datasets:/") else f"datasets:/{uri}")
    return json_response({"version": _version_json(v)})


@router.patch("/data/version", response_model=Empty)
@documented(SetDescription)
async def set_description(request: Request) -> Response:
    body = await json_body(request)
    version = optional_int(body, "version")
    if version is None:
        raise InvalidInput("Missing value for required parameter 'version'.")
    description = body.get("description")
    if not isinstance(description, str):
        raise InvalidInput("Invalid value for parameter 'description': expected a string.")
    await blocking(_store(request).set_description, required_str(body, "name"), version, description)
    return json_response({})


@router.get("/data/files", response_model=FilesReply)
@documented(UriQuery)
async def list_files(request: Request) -> Response:
    body = await params(request)
    client = _client(request)

    def files() -> list[dict[str, Any]]:
        manifest = client.manifest(client.get_version(required_str(body, "uri")))
        return [{"path": e.path, "size": e.size, "digest": e.digest} for e in manifest.entries]

    return json_response({"files": await blocking(files)})


@router.get("/data/diff", response_model=DiffReply)
@documented(DiffQuery)
async def diff(request: Request) -> Response:
    body = await params(request)
    out = await blocking(_client(request).diff, required_str(body, "a"), required_str(body, "b"))
    return json_response(out)


# ---- aliases, validations, lineage ---------------------------------------------------------


@router.post("/data/aliases", response_model=Empty)
async def set_alias(body: SetAlias, request: Request) -> Response:
    await blocking(_store(request).set_alias, body.name, body.alias, body.version)
    return json_response({})


@router.delete("/data/aliases", response_model=Empty)
@documented(AliasRef)
async def delete_alias(request: Request) -> Response:
    body = await json_body(request) or dict(request.query_params)
    await blocking(_store(request).delete_alias, required_str(body, "name"), required_str(body, "alias"))
    return json_response({})


@router.get("/data/validations", response_model=ValidationsReply)
@documented(ValidationsQuery)
async def validations(request: Request) -> Response:
    from loopline.data.wire import validation_to_json

    body = await params(request)
    store = _store(request)
    uri = optional_str(body, "uri")

    def find() -> list[Any]:
        if uri is not None:
            v = store.resolve(uri if uri.startswith("datasets:/") else f"datasets:/{uri}")
            found: list[Any] = store.list_validations(v.name, v.version)
        else:
            found = store.list_validations(required_str(body, "name"), optional_int(body, "version"))
        return found

    items = await blocking(find)
    return json_response({"validations": [validation_to_json(r) for r in items]})


@router.post("/data/validations", response_model=IdReply)
async def record_validation(body: RecordValidation, request: Request) -> Response:
    vid = await blocking(
        _store(request).record_validation,
        body.name,
        body.version,
        suite=body.suite,
        success=body.success,
        result=body.result,
    )
    return json_response({"id": vid})


@router.post("/data/lineage", response_model=Empty)
async def add_edge(body: LineageEdge, request: Request) -> Response:
    await blocking(_store(request).add_edge, body.from_uri, body.to_uri, body.relation)
    return json_response({})


class GcRequest(BaseModel):
    older_than_s: float = Field(3600.0, ge=0, description="grace period: newer unused blobs stay")


class GcReply(Answer):
    removed: int = Field(description="blobs deleted")
    freed_bytes: int


@router.post("/data/gc", response_model=GcReply, responses=ACCEPTED)
async def collect_garbage(body: GcRequest, request: Request) -> Response:
    """``loopline data gc`` on the server's store, for the request's workspace, as a job
    (``server/jobs.py``): its answer when done within the wait, else ``202 {"job_id"}`` to poll."""
    ctx = context(request)

    def run(progress: ProgressFn) -> dict[str, Any]:
        from loopline.data.client import DataClient

        removed, freed = DataClient(context=ctx).gc(body.older_than_s)
        return {"removed": removed, "freed_bytes": freed}

    return await run_job(request, "data.gc", run)
