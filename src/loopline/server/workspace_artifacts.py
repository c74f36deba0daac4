"""The artifact store a request reads and writes: its workspace's own (``artifacts.workspaces``).

Every artifact route (MLflow's proxy and its owner-scoped reads, multipart uploads, the dataset blob
routes, model version digests) goes through ``artifacts(request)``, so a path or a content hash
named by one workspace never opens another's files.
"""

from __future__ import annotations

from fastapi import Request

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.server.state import context


def artifacts(request: Request) -> BlobArtifactStore:
    """The request's workspace's artifact store (made once per workspace and process)."""
    store = context(request).artifacts
    assert isinstance(store, BlobArtifactStore)  # the server's context is a database's, never remote
    return store
