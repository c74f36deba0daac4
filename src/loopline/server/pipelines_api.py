"""The pipelines routes under ``/api/2.0/loopline``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

router = APIRouter(prefix="/api/2.0/loopline")


@contextlib.asynccontextmanager
async def background(app: FastAPI) -> AsyncIterator[None]:
    """Work the long-running server does for pipelines while it is up (entered by the app's lifespan)."""
    yield
