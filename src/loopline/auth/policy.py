"""Which role each route of ``loopline server`` needs: one table, read by the auth middleware and by
the test that walks every route of the OpenAPI document.

The default follows HTTP: reading (GET, HEAD) needs a viewer, changing anything an editor. The
table lists the exceptions: POSTs that only read (MLflow's searches), the changes that move
production (aliases, stages, deployments, the loop's policies and approvals: a maintainer), and
identity management (users: an administrator of the server; roles: an admin of the workspace).
Registry routes name a model: a user's role on that model, when bound, overrides the workspace's.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.auth.types import Role

MLFLOW_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/preview/mlflow/")


@dataclass(frozen=True)
class Rule:
    role: Role | None  # the least role in the workspace; None: any signed-in user
    public: bool = False  # no credentials needed
    superuser: bool = False  # only the server's administrators (users, workspaces)
    model_scoped: bool = False  # the request names a registered model: its override applies


PUBLIC = Rule(None, public=True)
SIGNED_IN = Rule(None)
VIEW, EDIT, MAINTAIN, ADMIN = (Rule(r) for r in Role)
SUPERUSER = Rule(Role.ADMIN, superuser=True)

# Probes, the API's description and the UI's sign-in page and static files.
_PUBLIC_EXACT = frozenset({"/", "/health", "/ping", "/ready", "/version", "/openapi.json", "/ui/login"})
_PUBLIC_PREFIXES = ("/docs", "/static/", "/ui/static/", "/ui/login/")

# MLflow routes (after the prefix) that are POSTs but only read.
_MLFLOW_READS = frozenset(
    {
        "experiments/search",
        "runs/search",
        "logged-models/search",
        "registered-models/get-latest-versions",
    }
)
# MLflow routes that move production: who serves what.
_MLFLOW_MAINTAIN = frozenset({"registered-models/alias", "model-versions/transition-stage"})

_LOOPLINE = "/api/2.0/loopline/"
_LOOPLINE_READS = frozenset(
    {
        "runs/search",
        "runs/count",
        "data/blobs/missing",
        "data/blobs/batch",
        "features/historical",
        "features/online",
        "pipelines/steps/known-keys",
    }
)
_LOOPLINE_MAINTAIN_PREFIXES = (
    "deployments/set",
    "deployments/rollback",
    "deployments/delete",
    "automation/policies/",
    "automation/applies/",
    "automation/rollouts/approve",
)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def rule(method: str, path: str) -> Rule:
    """The rule of a request to ``path`` with ``method``."""
    if path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PREFIXES):
        return PUBLIC
    writes = method in _WRITES
    for prefix in MLFLOW_PREFIXES:
        if path.startswith(prefix):
            name = path[len(prefix) :]
            scoped = name.startswith(("registered-models/", "model-versions/"))
            if name in _MLFLOW_MAINTAIN and writes:
                return Rule(Role.MAINTAINER, model_scoped=True)
            if not writes or name in _MLFLOW_READS:
                return Rule(Role.VIEWER, model_scoped=scoped)
            return Rule(Role.EDITOR, model_scoped=scoped)
    if path in ("/ui/logout", "/ui/workspace-menu"):
        return SIGNED_IN  # a user with no role in the current workspace may still sign out or switch
    if path.startswith(_LOOPLINE):
        name = path[len(_LOOPLINE) :]
        if name.startswith("auth/users") or (name.startswith("workspaces") and writes):
            return SUPERUSER
        if name.startswith("workspaces"):
            return SIGNED_IN  # the routes show each caller the workspaces they hold a role in
        if name.startswith("auth/roles"):
            return ADMIN if writes else VIEW
        if name.startswith(("auth/tokens", "auth/whoami")):
            return SIGNED_IN  # one's own tokens; another user's need a server admin (the route checks)
        if writes and name.startswith(_LOOPLINE_MAINTAIN_PREFIXES):
            return MAINTAIN
        if not writes or name in _LOOPLINE_READS:
            return VIEW
        return EDIT
    return EDIT if writes else VIEW
