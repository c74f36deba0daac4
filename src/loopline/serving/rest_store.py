"""``DeploymentStore`` over ``loopline server``'s REST API (``loopline.server.deployments_api``).

The server answers with its SQL store, so revisions, conflicts, events and lineage are the same as
on an embedded database; aliases resolve in the server's registry.
"""

from __future__ import annotations

from typing import Any

from loopline.metadata.pages import Page
from loopline.names import check_name
from loopline.protocol.http import RestClient
from loopline.serving.types import (
    Deployment,
    DeploymentRevision,
    DeploymentSpec,
    deployment_from_json,
    revision_from_json,
)

API = "/api/2.0/loopline/deployments"


class RestDeploymentStore:
    """Deployments of the server's workspace, through its REST API."""

    def __init__(self, client: RestClient) -> None:
        self.rest = client  # the context's: one connection pool for every domain

    def set_deployment(
        self, spec: DeploymentSpec, *, expected_revision: int | None = None, comment: str = ""
    ) -> Deployment:
        body: dict[str, Any] = {**spec.to_dict(), "expected_revision": expected_revision, "comment": comment}
        return deployment_from_json(self.rest.call("POST", f"{API}/set", body)["deployment"])

    def get_deployment(self, name: str) -> Deployment:
        body = self.rest.call("GET", f"{API}/get", {"name": check_name("deployment", name)})
        return deployment_from_json(body["deployment"])

    def get_revision(self, name: str) -> int:
        return int(
            self.rest.call("GET", f"{API}/revision", {"name": check_name("deployment", name)})["revision"]
        )

    def list_deployments(self, max_results: int = 100, page_token: str | None = None) -> Page[Deployment]:
        body = self.rest.call("GET", f"{API}/list", {"max_results": max_results, "page_token": page_token})
        items = [deployment_from_json(d) for d in body.get("deployments", [])]
        return Page(items, body.get("next_page_token"))

    def delete_deployment(self, name: str, *, expected_revision: int | None = None) -> None:
        self.rest.call("POST", f"{API}/delete", {"name": name, "expected_revision": expected_revision})

    def list_revisions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> Page[DeploymentRevision]:
        query = {"name": check_name("deployment", name), "max_results": max_results, "page_token": page_token}
        body = self.rest.call("GET", f"{API}/revisions", query)
        return Page([revision_from_json(r) for r in body.get("revisions", [])], body.get("next_page_token"))

    def rollback(
        self, name: str, to_revision: int, *, expected_revision: int | None = None, comment: str = ""
    ) -> Deployment:
        body = {
            "name": name,
            "to_revision": to_revision,
            "expected_revision": expected_revision,
            "comment": comment,
        }
        return deployment_from_json(self.rest.call("POST", f"{API}/rollback", body)["deployment"])
