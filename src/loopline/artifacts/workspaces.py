"""Each workspace's own artifact store, below the configured root.

The ``default`` workspace keeps the root itself (stores made before workspaces keep working); every
other workspace has a store of its own at ``<root>/workspaces/<name>``, with its own refs, pins and
blobs. So an artifact path (``mlflow-artifacts:/<experiment>/…``, a monitor's files, a pipeline's
outputs, a dataset's blobs) means the same in every workspace yet never reaches another's files,
and a content hash one workspace knows opens only the blobs its own store holds: blobs are not
shared between workspaces (the price is that equal files in two workspaces are stored twice).
The mapping depends only on the workspace's name, so an embedded client and a server agree on it.
"""

from __future__ import annotations

from loopline.names import WORKSPACE, check_name

DEFAULT_WORKSPACE = "default"
FOLDER = "workspaces"


def workspace_root(root_uri: str, workspace: str) -> str:
    """The artifact root of ``workspace`` (a checked workspace name) under ``root_uri``.

    >>> workspace_root("/srv/artifacts", "team-a")
    '/srv/artifacts/workspaces/team-a'
    """
    if workspace == DEFAULT_WORKSPACE:
        return root_uri
    check_name("workspace", workspace, WORKSPACE)  # a path segment: never '..' or a '/'
    return f"{root_uri.rstrip('/')}/{FOLDER}/{workspace}"
