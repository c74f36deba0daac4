"""What the app holds for its routes: the stores, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.config import Settings
from loopline.context import Context
from loopline.registry.sql_store import SqlRegistryStore
from loopline.tracking.sql_store import SqlTrackingStore


@dataclass
class ServerState:
    settings: Settings
    tracking: SqlTrackingStore
    registry: SqlRegistryStore
    artifacts: BlobArtifactStore
    context: Context  # the process's; routes build domain clients from it (per request, with auth)


def state(request: Request) -> ServerState:
    st: ServerState = request.app.state.loopline
    return st


def context(request: Request) -> Context:
    """The context a request acts in: the server's, scoped to the caller's workspace and actor once
    authentication lands."""
    return state(request).context


def tracking(request: Request) -> SqlTrackingStore:
    """The tracking store as the caller sees it (workspace and actor come from auth, later)."""
    return state(request).tracking


def artifacts(request: Request) -> BlobArtifactStore:
    return state(request).artifacts


def registry(request: Request) -> SqlRegistryStore:
    return state(request).registry
