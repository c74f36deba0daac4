"""Artifacts through a server's ``mlflow-artifacts`` routes: streamed both ways, never buffered whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from loopline.artifacts.paths import safe_path
from loopline.artifacts.protocol import FileInfo
from loopline.protocol.http import RestClient, raise_for_error

_ROOT = "/api/2.0/mlflow-artifacts/artifacts"


class HttpArtifactStore:
    """``ArtifactStore`` over HTTP, addressed from the server's artifact root."""

    def __init__(self, base_url: str, client: RestClient | None = None) -> None:
        self.rest = client or RestClient(base_url)

    def put_file(self, local_path: str | Path, path: str) -> FileInfo:
        path = safe_path(path)
        size = os.path.getsize(local_path)
        with open(local_path, "rb") as f:
            self.rest.request(
                "PUT", f"{_ROOT}/{path}", content=f, headers={"Content-Type": "application/octet-stream"}
            )
        return FileInfo(path, False, size)

    def put_bytes(self, data: bytes, path: str) -> FileInfo:
        path = safe_path(path)
        self.rest.request("PUT", f"{_ROOT}/{path}", content=data)
        return FileInfo(path, False, len(data))

    def open(self, path: str) -> BinaryIO:
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - returned to caller
        self._download_to(path, spool)
        spool.seek(0)
        return spool  # type: ignore[return-value]  # typeshed types SpooledTemporaryFile apart from BinaryIO

    def _download_to(self, path: str, out: Any) -> None:
        path = safe_path(path)
        with self.rest.http.stream("GET", f"{_ROOT}/{path}") as resp:
            if resp.status_code >= 400:
                resp.read()
                raise_for_error(resp)
            # Raw chunks as they arrive (no re-chunking copy) unless the body is content-encoded.
            chunks = resp.iter_bytes(1 << 20) if resp.headers.get("content-encoding") else resp.iter_raw()
            for chunk in chunks:
                out.write(chunk)

    def get_file(self, path: str, local_path: str | Path) -> Path:
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = local_path.with_name(f".{local_path.name}.part")
        with open(tmp, "wb") as f:
            self._download_to(path, f)
        shutil.move(tmp, local_path)
        return local_path

    def list(self, prefix: str = "") -> list[FileInfo]:
        prefix = safe_path(prefix, allow_root=True)
        body = self.rest.call("GET", _ROOT, {"path": prefix})
        base = f"{prefix}/" if prefix else ""
        return [
            FileInfo(base + f["path"], bool(f.get("is_dir")), f.get("file_size"))
            for f in body.get("files", [])
        ]

    def walk(self, prefix: str = "") -> Iterator[FileInfo]:
        entries = self.list(prefix)
        if not entries and prefix:  # a file lists as nothing; a missing path 404s on download
            yield FileInfo(safe_path(prefix), False)
            return
        for entry in entries:
            if entry.is_dir:
                yield from self.walk(entry.path)
            else:
                yield entry

    def delete(self, prefix: str) -> int:
        self.rest.request("DELETE", f"{_ROOT}/{safe_path(prefix)}")
        return 1
