"""What a deployment store does, whichever backend does it, and which one a context gets.

``SqlDeploymentStore`` keeps deployments and their revisions in the metadata database;
``RestDeploymentStore`` asks a ``loopline server`` to, so that every serving process, embedded or
remote, reads the same deployments.

Writes are optimistic: pass the ``expected_revision`` you read (0: "it must not exist yet") and a
deployment changed meanwhile by someone else is a ``Conflict`` (409) instead of being overwritten.
Without it the write applies to whatever revision is current, and the history still shows both.
Writing the spec a deployment already has, with its models resolving as they did, changes nothing
(a retried request is no error and adds no revision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from loopline.metadata.pages import Page
from loopline.serving.types import Deployment, DeploymentRevision, DeploymentSpec

if TYPE_CHECKING:
    from loopline.context import Context


class DeploymentStore(Protocol):
    """Deployments and their history, scoped to one workspace."""

    def set_deployment(
        self, spec: DeploymentSpec, *, expected_revision: int | None = None, comment: str = ""
    ) -> Deployment:
        """Create or change ``spec.name`` as its next revision, resolving its model URIs now; every
        ``models:/`` version must exist (``NotFound`` otherwise)."""
        ...

    def get_deployment(self, name: str) -> Deployment: ...

    def get_revision(self, name: str) -> int:
        """The current revision of ``name``: what a serving process polls (one small read)."""
        ...

    def list_deployments(self, max_results: int = 100, page_token: str | None = None) -> Page[Deployment]:
        """Deployments by name."""
        ...

    def delete_deployment(self, name: str, *, expected_revision: int | None = None) -> None:
        """Delete ``name`` and its history (its events and lineage stay)."""
        ...

    def list_revisions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> Page[DeploymentRevision]:
        """The history of ``name``, newest first."""
        ...

    def rollback(
        self, name: str, to_revision: int, *, expected_revision: int | None = None, comment: str = ""
    ) -> Deployment:
        """A new revision of ``name`` with the spec of ``to_revision`` (its aliases resolved now)."""
        ...


def open_deployment_store(context: Context) -> DeploymentStore:
    """The deployment store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        from loopline.serving.rest_store import RestDeploymentStore

        return RestDeploymentStore(context.http)
    from loopline.serving.sql_store import SqlDeploymentStore

    return SqlDeploymentStore(context)
