"""``push``/``pull``: move dataset versions between this store and a remote one (``s3://…``, a folder).

Only missing blobs travel. A blob is uploaded whole or not at all (one PUT, or a completed
multipart upload), and the version record is written last, so an interrupted push leaves no
half version on the remote; running it again resumes with what is still missing. Pull mirrors
it: blobs first, the version row last.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.digests import hash_file
from loopline.artifacts.manifest import Manifest
from loopline.data.client import DataClient
from loopline.data.hashing import WORKERS
from loopline.data.types import DatasetVersion, VersionContent
from loopline.errors import InvalidInput, NotFound

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Transfer:
    versions: list[str]  # URIs moved
    blobs: int  # blobs sent or fetched
    bytes: int
    skipped_blobs: int  # already there


def open_remote(client: DataClient, remote: str | None) -> BlobArtifactStore:
    uri = remote or client.settings.data_remote
    if not uri:
        raise InvalidInput(
            "No data remote is set.", hint="Pass --remote s3://bucket/path or set LOOPLINE_DATA_REMOTE."
        )
    return BlobArtifactStore(uri)


def _record_name(workspace: str, name: str, version: int) -> str:
    return f"dataset-versions/{workspace}/{name}/{version:08d}.json"


def push(
    client: DataClient, uris: Iterable[str], remote: BlobArtifactStore, progress: Progress | None = None
) -> Transfer:
    """Send the versions ``uris`` name (and every blob they need) to ``remote``."""
    versions = [client.get_version(u) for u in uris]
    sent = skipped = nbytes = 0
    for version in versions:
        manifest = client.manifest(version)
        absent = remote.missing(manifest.digests())
        todo = {e.digest: e.size for e in manifest if e.digest in absent}
        skipped += len(manifest.digests()) - len(todo)

        def send(item: tuple[str, int]) -> int:
            digest, size = item
            if client.blobs.is_local:
                remote.put_blob(client.blobs.blob_path(digest), digest, link="copy")
            else:  # through a local file, streamed both ways (a blob may not fit in memory)
                fd, tmp = tempfile.mkstemp(dir=client.blobs.staging_dir(), prefix="push-")
                os.close(fd)
                try:
                    client.blobs.get_blob(digest, tmp)
                    remote.put_blob(tmp, digest, link="copy")
                finally:
                    os.unlink(tmp)
            if progress:
                progress(size)
            return size

        with ThreadPoolExecutor(WORKERS) as pool:
            for size in pool.map(send, todo.items()):
                sent += 1
                nbytes += size
        remote.put_blob_bytes(manifest.encode())
        record = _record(version)
        remote.pin(
            _record_name(client.settings.workspace, version.name, version.version), version.digest, record
        )
    return Transfer([v.uri for v in versions], sent, nbytes, skipped)


def pull(
    client: DataClient,
    name: str,
    version: int | None,
    remote: BlobArtifactStore,
    progress: Progress | None = None,
) -> Transfer:
    """Fetch a version of ``name`` (default: every version the remote has) into this store."""
    prefix = f"dataset-versions/{client.settings.workspace}/{name}"
    records = [remote.read_pin(p) for p in remote.list_pins(prefix)]
    if version is not None:
        records = [r for r in records if int(r["version"]) == version]
    if not records:
        raise NotFound(
            f"The remote {remote.root_uri} has no dataset {name!r}"
            + (f" version {version}." if version else "."),
            hint="`loopline data push` sends versions there first.",
        )
    fetched = skipped = nbytes = 0
    moved = []
    for record in sorted(records, key=lambda r: int(r["version"])):
        manifest = Manifest.decode(remote.read_blob(record["manifest"]))
        if manifest.digest != record["manifest"]:
            raise InvalidInput(
                f"The remote's manifest for {name} v{record['version']} does not match its digest."
            )
        absent = client.blobs.missing(manifest.digests())  # one question, even to a server
        todo = {e.digest: e.size for e in manifest if e.digest in absent}
        skipped += len(manifest.digests()) - len(todo)

        def fetch(item: tuple[str, int]) -> int:
            digest, size = item
            fd, tmp = tempfile.mkstemp(dir=client.blobs.staging_dir(), prefix="pull-")
            os.close(fd)
            try:  # streamed to disk, never whole in memory
                remote.fs.get_file(remote.blob_path(digest), tmp)
                if hash_file(tmp) != digest:  # never trust what came over the wire
                    raise InvalidInput(f"A blob fetched from {remote.root_uri} is corrupt ({digest[:12]}…).")
                client.blobs.put_blob(tmp, digest)
            finally:
                os.unlink(tmp)
            if progress:
                progress(size)
            return size

        with ThreadPoolExecutor(WORKERS) as pool:
            for size in pool.map(fetch, todo.items()):
                fetched += 1
                nbytes += size
        client.blobs.put_blob_bytes(manifest.encode())
        client.blobs.pin(f"datasets/{client.settings.workspace}/{name}/{manifest.digest}", manifest.digest)
        content = VersionContent(
            digest=manifest.digest,
            format=record["format"],
            source=f"{remote.root_uri} ({record['uri']})",
            num_files=int(record["num_files"]),
            size_bytes=int(record["size_bytes"]),
            num_rows=record.get("num_rows"),
            schema=record.get("schema") or {},
            profile=record.get("profile") or {},
            description=record.get("description") or "",
        )
        created, _ = client.store.create_version(name, content)
        moved.append(created.uri)
    return Transfer(moved, fetched, nbytes, skipped)


def _record(v: DatasetVersion) -> dict[str, object]:
    return {
        "uri": v.uri,
        "name": v.name,
        "version": v.version,
        "digest": v.digest,
        "format": v.format,
        "num_files": v.num_files,
        "size_bytes": v.size_bytes,
        "num_rows": v.num_rows,
        "schema": dict(v.schema),
        "profile": dict(v.profile),
        "description": v.description,
        "created_by": v.created_by,
        "creation_time": v.creation_time,
    }
