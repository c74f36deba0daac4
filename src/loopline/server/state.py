"""What the app holds for its routes: the stores, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.config import Settings
from loopline.context import Context
from loopline.names import WORKSPACE, check_name
from loopline.protocol.http import WORKSPACE_HEADER
from loopline.registry.sql_store import SqlRegistryStore
from loopline.tracking.sql_store import SqlTrackingStore


@dataclass
class ServerState:
    settings: Settings
    tracking: SqlTrackingStore
    registry: SqlRegistryStore
    artifacts: BlobArtifactStore
    context: Context  # the process's; routes build domain clients from it (per request, with auth)
    _scoped: dict[str, tuple[Context, SqlTrackingStore, SqlRegistryStore]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def open(cls, settings: Settings) -> ServerState:
        """The process's context and stores on ``settings``' database and artifact store."""
        context = Context(settings)
        engine = context.engine
        return cls(
            settings=settings,
            context=context,
            tracking=SqlTrackingStore(
                engine,
                workspace=settings.workspace,
                actor=settings.user,
                artifact_root=settings.direct_artifacts_root or None,
            ),
            registry=SqlRegistryStore(engine, workspace=settings.workspace, actor=settings.user),
            artifacts=BlobArtifactStore(settings.artifacts_uri),
        )

    def in_workspace(self, workspace: str) -> tuple[Context, SqlTrackingStore, SqlRegistryStore]:
        """The context and stores of ``workspace``, made once per workspace and process (the tracking
        store creates the workspace, with its Default experiment, on first use)."""
        if workspace == self.context.workspace:
            return self.context, self.tracking, self.registry
        found = self._scoped.get(workspace)
        if found is None:
            found = self._scoped[workspace] = (
                self.context.scoped(workspace=workspace),
                self.tracking.scoped(workspace=workspace),
                self.registry.scoped(workspace=workspace),
            )
        return found


def state(request: Request) -> ServerState:
    st: ServerState = request.app.state.loopline
    return st


def workspace(request: Request) -> str:
    """The workspace a request acts in: the one its ``Loopline-Workspace`` header names (Loopline's
    client sends its ``LOOPLINE_WORKSPACE``), else the server's own (MLflow's client sends none).
    Who may act in which workspace is for authentication to decide, here, when it lands."""
    named = request.headers.get(WORKSPACE_HEADER)
    if named is None:
        return state(request).context.workspace
    return check_name("workspace", named, WORKSPACE)


def context(request: Request) -> Context:
    """The context a request acts in: the server's, scoped to the request's workspace."""
    return state(request).in_workspace(workspace(request))[0]


def tracking(request: Request) -> SqlTrackingStore:
    """The tracking store as the caller sees it: scoped to the request's workspace."""
    return state(request).in_workspace(workspace(request))[1]


def artifacts(request: Request) -> BlobArtifactStore:
    return state(request).artifacts


def registry(request: Request) -> SqlRegistryStore:
    return state(request).in_workspace(workspace(request))[2]
