"""Where a ``DataClient`` keeps the bytes of dataset files: blobs named by their BLAKE3 digest.

Embedded, that is the configured artifact store itself (``BlobArtifactStore``: a folder, where
files are reflinked or hard-linked in, or a bucket). Through a server it is the server's store,
reached over HTTP (``HttpBlobStore``): the client hashes and builds the manifest here, asks which
blobs the server lacks, and uploads only those. Both answer the calls below, so adding, reading and
materialising a version is one code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

if TYPE_CHECKING:
    from loopline.context import Context


class BlobStore(Protocol):
    """Blobs by digest: what adding, reading and moving dataset versions needs."""

    @property
    def is_local(self) -> bool:
        """Blobs are files on this machine (links and copies are kernel work, no upload)."""
        ...

    @property
    def root_uri(self) -> str: ...

    @property
    def fs(self) -> Any:
        """The fsspec filesystem ``blob_path`` names files on."""
        ...

    def missing(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` have no blob yet (one batched question)."""
        ...

    def has_blob(self, digest: str) -> bool: ...
    def put_blob(self, local_path: str | Path, digest: str, *, link: Any = "auto") -> str:
        """Store the file whose BLAKE3 is ``digest``, atomically; how: present, reflink, hardlink,
        copy or upload."""
        ...

    def put_blob_bytes(self, data: bytes) -> str: ...
    def remove_blob(self, digest: str) -> None: ...
    def pin(self, name: str, manifest: str, record: Mapping[str, Any] | None = None) -> None: ...
    def open_blob(self, digest: str) -> BinaryIO: ...
    def read_blob(self, digest: str) -> bytes: ...
    def get_blob(
        self, digest: str, local_path: str | Path, *, link: bool = False, make_parent: bool = True
    ) -> None: ...
    def blob_path(self, digest: str) -> str: ...
    def staging_dir(self) -> str: ...
    def list_pins(self, prefix: str) -> list[str]: ...
    def read_pin(self, name: str) -> dict[str, Any]: ...
    def unpin(self, name: str) -> None: ...
    def gc(self, grace_seconds: float = 3600.0) -> tuple[int, int]: ...


def open_blob_store(context: Context) -> BlobStore:
    """The context's blob store: its artifact store embedded, the server's over HTTP."""
    if context.is_remote:
        from loopline.data.rest_blobs import HttpBlobStore

        return HttpBlobStore(context.http, context.settings.cache_dir)
    from loopline.artifacts.blobs import BlobArtifactStore

    shared = context.artifacts  # one per workspace of a context family: a server's routes reuse it
    if isinstance(shared, BlobArtifactStore):
        return shared
    from loopline.artifacts.workspaces import workspace_root

    return BlobArtifactStore(workspace_root(context.settings.artifacts_uri, context.workspace))
