"""Workspaces (tenants): list, create and show them, from a database or through a server.

Every object belongs to one workspace, and nothing crosses between workspaces: each store filters by
it, and each has its own artifact store (``loopline.artifacts.workspaces``). A workspace is made on
first use (a client's ``LOOPLINE_WORKSPACE``, a request's ``Loopline-Workspace`` header), with its
Default experiment, or explicitly with a description by ``create``. ``open_workspaces(context)``
gives ``SqlWorkspaces`` on a database and ``RestWorkspaces`` on a ``loopline server`` (routes under
``/api/2.0/loopline/workspaces``), with the same methods and answers. Who may see or use which
workspace is for authentication to decide; without it, every caller sees every workspace's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select, update

from loopline.errors import AlreadyExists, NotFound
from loopline.metadata import schema as t
from loopline.metadata.schema_automation import automation_policies
from loopline.metadata.schema_data import versioned_datasets
from loopline.metadata.schema_deployments import deployments
from loopline.metadata.schema_features import feature_objects
from loopline.metadata.schema_monitoring import monitors
from loopline.metadata.schema_pipelines import pipeline_runs
from loopline.names import WORKSPACE, check_name

if TYPE_CHECKING:
    from sqlalchemy import Engine, Table

    from loopline.context import Context
    from loopline.protocol.http import RestClient

API = "/api/2.0/loopline/workspaces"
# What `show` counts, per kind of object (a workspace's size at a glance).
_COUNTED: dict[str, Table] = {
    "experiments": t.experiments,
    "runs": t.runs,
    "registered_models": t.registered_models,
    "datasets": versioned_datasets,
    "feature_objects": feature_objects,
    "pipeline_runs": pipeline_runs,
    "deployments": deployments,
    "monitors": monitors,
    "policies": automation_policies,
}


@dataclass(frozen=True, slots=True)
class Workspace:
    name: str
    description: str
    created_at: int  # ms since the epoch
    counts: Mapping[str, int] = field(default_factory=dict)  # objects per kind (``show`` only)


def workspace_to_json(w: Workspace) -> dict[str, Any]:
    out: dict[str, Any] = {"name": w.name, "description": w.description, "created_at": w.created_at}
    if w.counts:
        out["counts"] = dict(w.counts)
    return out


def workspace_from_json(d: Mapping[str, Any]) -> Workspace:
    counts = d.get("counts") or {}
    return Workspace(str(d["name"]), str(d.get("description") or ""), int(d["created_at"]), dict(counts))


class WorkspaceStore(Protocol):
    def list_workspaces(self) -> list[Workspace]:
        """Every workspace, by name."""
        ...

    def get_workspace(self, name: str) -> Workspace:
        """One workspace with its object counts; ``NotFound`` if there is none of that name."""
        ...

    def create_workspace(self, name: str, description: str = "") -> Workspace:
        """A new workspace (with its Default experiment); ``AlreadyExists`` if it exists."""
        ...


def _missing(name: str) -> NotFound:
    return NotFound(f"No workspace named {name!r}.", hint="`loopline workspaces list` shows them.")


class SqlWorkspaces:
    def __init__(self, engine: Engine, *, actor: str = "unknown") -> None:
        self.engine = engine
        self.actor = actor

    def list_workspaces(self) -> list[Workspace]:
        w = t.workspaces.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.workspaces).order_by(w.name)).all()
        return [Workspace(r.name, r.description, r.created_at) for r in rows]

    def get_workspace(self, name: str) -> Workspace:
        check_name("workspace", name, WORKSPACE)
        with self.engine.connect() as conn:
            row = conn.execute(select(t.workspaces).where(t.workspaces.c.name == name)).first()
            if row is None:
                raise _missing(name)
            counts = {
                kind: int(
                    conn.execute(
                        select(func.count()).select_from(table).where(table.c.workspace == name)
                    ).scalar_one()
                )
                for kind, table in _COUNTED.items()
            }
        return Workspace(row.name, row.description, row.created_at, counts)

    def create_workspace(self, name: str, description: str = "") -> Workspace:
        from loopline.tracking.sql_store import SqlTrackingStore

        check_name("workspace", name, WORKSPACE)
        w = t.workspaces.c
        with self.engine.connect() as conn:
            if conn.execute(select(w.name).where(w.name == name)).first() is not None:
                raise AlreadyExists(
                    f"Workspace {name!r} exists already.", hint=f"`loopline workspaces show {name}` shows it."
                )
        # The tracking store makes a workspace on first use, with its Default experiment and event.
        SqlTrackingStore(self.engine, workspace=name, actor=self.actor)
        if description:
            with self.engine.begin() as conn:
                conn.execute(update(t.workspaces).where(w.name == name).values(description=description))
        return self.get_workspace(name)


class RestWorkspaces:
    def __init__(self, client: RestClient) -> None:
        self.client = client

    def list_workspaces(self) -> list[Workspace]:
        body = self.client.call("GET", API)
        return [workspace_from_json(x) for x in body["workspaces"]]

    def get_workspace(self, name: str) -> Workspace:
        check_name("workspace", name, WORKSPACE)
        return workspace_from_json(self.client.call("GET", f"{API}/{name}")["workspace"])

    def create_workspace(self, name: str, description: str = "") -> Workspace:
        check_name("workspace", name, WORKSPACE)
        body = self.client.call("POST", API, {"name": name, "description": description})
        return workspace_from_json(body["workspace"])


def open_workspaces(context: Context) -> WorkspaceStore:
    """The workspace store the context's tracking URI names: SQL on a database, REST on a server."""
    if context.is_remote:
        return RestWorkspaces(context.http)
    return SqlWorkspaces(context.engine, actor=context.actor)


__all__ = [
    "RestWorkspaces",
    "SqlWorkspaces",
    "Workspace",
    "WorkspaceStore",
    "open_workspaces",
    "workspace_from_json",
    "workspace_to_json",
]
