"""What the app holds for its routes: the stores, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.config import Settings
from loopline.store.sql_registry import SqlRegistryStore
from loopline.store.sql_tracking import SqlTrackingStore


@dataclass
class ServerState:
    settings: Settings
    tracking: SqlTrackingStore
    registry: SqlRegistryStore
    artifacts: BlobArtifactStore


def state(request: Request) -> ServerState:
    st: ServerState = request.app.state.loopline
    return st


def tracking(request: Request) -> SqlTrackingStore:
    """The tracking store as the caller sees it (workspace and actor come from auth, later)."""
    return state(request).tracking


def artifacts(request: Request) -> BlobArtifactStore:
    return state(request).artifacts


def registry(request: Request) -> SqlRegistryStore:
    return state(request).registry
