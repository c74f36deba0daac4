"""Artifact backends: content-addressed blobs over fsspec (local ▸ S3), or a server over HTTP.

``open_artifact_store(uri)`` picks one: a folder or ``file://`` or ``s3://`` gives a
:class:`BlobArtifactStore`; ``http(s)://`` gives an :class:`HttpArtifactStore` that talks to a
``loopline server`` (or ``mlflow server``) through the ``mlflow-artifacts`` routes.

Names load on first use (PEP 562): ``loopline data status`` reads manifests
(``loopline.artifacts.manifest``) without paying for the blob store's module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.lazy import lazy_names

if TYPE_CHECKING:
    from loopline.artifacts.blobs import BlobArtifactStore, StagedFile
    from loopline.artifacts.digests import hash_file
    from loopline.artifacts.paths import safe_path
    from loopline.artifacts.protocol import ArtifactStore, FileInfo

_LAZY = {
    "ArtifactStore": "loopline.artifacts.protocol",
    "BlobArtifactStore": "loopline.artifacts.blobs",
    "FileInfo": "loopline.artifacts.protocol",
    "StagedFile": "loopline.artifacts.blobs",
    "hash_file": "loopline.artifacts.digests",
    "safe_path": "loopline.artifacts.paths",
}


__getattr__ = lazy_names(__name__, _LAZY)


def open_artifact_store(uri: str, *, workspace: str = "default") -> ArtifactStore:
    """The artifact store of ``workspace`` at ``uri``: its own folder under a root
    (``loopline.artifacts.workspaces``), or a server's proxy asked in that workspace's name."""
    if uri.startswith(("http://", "https://")):
        from loopline.artifacts.http import HttpArtifactStore
        from loopline.protocol.http import RestClient

        named = None if workspace == "default" else workspace  # "default" defers to the server's own
        return HttpArtifactStore(uri, client=RestClient(uri, workspace=named))
    from loopline.artifacts.blobs import BlobArtifactStore
    from loopline.artifacts.workspaces import workspace_root

    return BlobArtifactStore(workspace_root(uri, workspace))


__all__ = [
    "ArtifactStore",
    "BlobArtifactStore",
    "FileInfo",
    "StagedFile",
    "hash_file",
    "open_artifact_store",
    "safe_path",
]
