"""What the app holds for its routes: the stores, opened once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.auth.authenticator import Authenticator, store_lookup
from loopline.auth.oidc import OidcProvider, oidc_provider
from loopline.auth.sql_store import SqlAuthStore
from loopline.config import Settings
from loopline.context import Context
from loopline.names import WORKSPACE, check_name
from loopline.registry.sql_store import SqlRegistryStore
from loopline.server.auth import identity_of, requested_workspace
from loopline.tracking.sql_store import SqlTrackingStore


@dataclass
class ServerState:
    settings: Settings
    tracking: SqlTrackingStore
    registry: SqlRegistryStore
    artifacts: BlobArtifactStore
    context: Context  # the process's; routes build domain clients from it (per request, with auth)
    auth: SqlAuthStore  # users, tokens and roles (consulted on every request when auth is on)
    authenticator: Authenticator
    oidc: OidcProvider | None  # the UI's sign-in through the organisation's identity provider
    _scoped: dict[tuple[str, str], tuple[Context, SqlTrackingStore, SqlRegistryStore]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def open(cls, settings: Settings) -> ServerState:
        """The process's context and stores on ``settings``' database and artifact store."""
        context = Context(settings)
        engine = context.engine
        auth = SqlAuthStore(engine, workspace=settings.workspace, actor=settings.user)
        oidc = oidc_provider(settings, auth)
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
            auth=auth,
            authenticator=Authenticator(store_lookup(auth, None if oidc is None else oidc.identity)),
            oidc=oidc,
        )

    def in_workspace(
        self, workspace: str, actor: str | None = None
    ) -> tuple[Context, SqlTrackingStore, SqlRegistryStore]:
        """The context and stores of ``workspace`` acting as ``actor`` (default: the server's user),
        made once per pair and process (the tracking store creates the workspace, with its Default
        experiment, on first use)."""
        actor = actor or self.context.actor
        if workspace == self.context.workspace and actor == self.context.actor:
            return self.context, self.tracking, self.registry
        found = self._scoped.get((workspace, actor))
        if found is None:
            found = self._scoped[(workspace, actor)] = (
                self.context.scoped(workspace=workspace, actor=actor),
                self.tracking.scoped(workspace=workspace, actor=actor),
                self.registry.scoped(workspace=workspace, actor=actor),
            )
        return found


def state(request: Request) -> ServerState:
    st: ServerState = request.app.state.loopline
    return st


def workspace(request: Request) -> str:
    """The workspace a request acts in: the one its ``Loopline-Workspace`` header names (Loopline's
    client sends its ``LOOPLINE_WORKSPACE``; the web UI's pages, the one its selector chose), else
    the server's own (MLflow's client sends none). With auth on, the auth middleware has checked the
    caller's role in it before the route runs."""
    named = requested_workspace(request.scope)
    if named is None:
        return state(request).context.workspace
    return check_name("workspace", named, WORKSPACE)


def actor(request: Request) -> str | None:
    """Who the request acts as: the authenticated user (None with auth off: the server's user)."""
    who = identity_of(request.scope)
    return None if who is None else who.user


def context(request: Request) -> Context:
    """The context a request acts in: the server's, scoped to the request's workspace and caller."""
    return state(request).in_workspace(workspace(request), actor(request))[0]


def tracking(request: Request) -> SqlTrackingStore:
    """The tracking store as the caller sees it: scoped to the request's workspace and caller."""
    return state(request).in_workspace(workspace(request), actor(request))[1]


def artifacts(request: Request) -> BlobArtifactStore:
    """The artifact store a request reads and writes: its workspace's own (``artifacts.workspaces``),
    so a path or a content hash named by one workspace never opens another's files. Every artifact
    route (MLflow's proxy, multipart uploads, dataset blobs, model version digests) goes through it."""
    store = context(request).artifacts
    assert isinstance(store, BlobArtifactStore)  # the server's context is a database's, never remote
    return store


def registry(request: Request) -> SqlRegistryStore:
    return state(request).in_workspace(workspace(request), actor(request))[2]
