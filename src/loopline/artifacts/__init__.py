"""Artifact backends: content-addressed blobs over fsspec (local ▸ S3), or a server over HTTP.

``open_artifact_store(uri)`` picks one: a folder or ``file://`` or ``s3://`` gives a
:class:`BlobArtifactStore`; ``http(s)://`` gives an :class:`HttpArtifactStore` that talks to a
``loopline server`` (or ``mlflow server``) through the ``mlflow-artifacts`` routes.
"""

from __future__ import annotations

from loopline.artifacts.blobs import BlobArtifactStore, StagedFile, hash_file
from loopline.artifacts.paths import safe_path
from loopline.artifacts.protocol import ArtifactStore, FileInfo


def open_artifact_store(uri: str) -> ArtifactStore:
    if uri.startswith(("http://", "https://")):
        from loopline.artifacts.http import HttpArtifactStore

        return HttpArtifactStore(uri)
    return BlobArtifactStore(uri)


__all__ = [
    "ArtifactStore",
    "BlobArtifactStore",
    "FileInfo",
    "StagedFile",
    "hash_file",
    "open_artifact_store",
    "safe_path",
]
