"""The feature store's pages: ``/ui/features`` (every definition, the sources, the newest
materialisations) and ``/ui/features/<view>`` (one view, service or on-demand view)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.errors import LooplineError
from loopline.server.http import blocking
from loopline.server.state import context
from loopline.server.ui import feature_view
from loopline.server.ui.pages import error_page
from loopline.server.ui.templating import render

router = APIRouter()


@router.get("/features")
async def features(request: Request) -> Response:
    c = await blocking(feature_view.load, context(request))
    return render(request, "features.html", title="Features", c=c, nav="features")


@router.get("/features/{name}")
async def feature(request: Request, name: str) -> Response:
    try:
        v = await blocking(feature_view.load_view, context(request), name)
    except LooplineError as e:
        return error_page(request, e)
    return render(request, "feature_view.html", title=f"Feature view {name}", v=v, nav="features")


__all__ = ["router"]
