"""The web UI's workspace selector: the workspaces the caller may open (with auth on, those they
hold a role in; a server admin, all), the current one chosen. The choice is a cookie
(``loopline_workspace``) that the UI's own requests carry instead of the ``Loopline-Workspace``
header a browser cannot send (``server/auth.py: requested_workspace``); the page's htmx requests to
the API send it as that header."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.server.auth import identity_of
from loopline.server.http import blocking
from loopline.server.state import state, workspace
from loopline.server.ui.templating import render
from loopline.tracking.workspaces import SqlWorkspaces

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/workspace-menu")
async def workspace_menu(request: Request) -> Response:
    """The selector's options (a fragment the base page loads once it is shown)."""
    names = [w.name for w in await blocking(SqlWorkspaces(state(request).context.engine).list_workspaces)]
    who = identity_of(request.scope)
    if who is not None:
        names = [n for n in names if who.role(n) is not None]
    current = workspace(request)
    if current not in names:
        names.insert(0, current)
    return render(request, "_workspace_menu.html", names=names, current=current)
