"""The datasets' pages: ``/ui/datasets`` and ``/ui/datasets/<name>?version=&a=&b=``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.errors import LooplineError
from loopline.server.http import blocking
from loopline.server.state import context
from loopline.server.ui import dataset_view
from loopline.server.ui.pages import error_page, int_param
from loopline.server.ui.templating import render

router = APIRouter()


@router.get("/datasets")
async def datasets(request: Request) -> Response:
    rows = await blocking(dataset_view.list_all, context(request))
    return render(request, "datasets.html", title="Datasets", rows=rows, nav="datasets")


@router.get("/datasets/{name}")
async def dataset(request: Request, name: str) -> Response:
    """``version``: the version shown (default the latest); ``a`` and ``b``: two versions to diff."""
    qp = request.query_params
    try:
        version, a, b = (int_param(qp.get(k), 0, k) or None for k in ("version", "a", "b"))
        d = await blocking(dataset_view.load, context(request), name, version, a, b)
    except LooplineError as e:
        return error_page(request, e)
    return render(request, "dataset.html", title=f"Dataset {name}", d=d, nav="datasets")


__all__ = ["router"]
