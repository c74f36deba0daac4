"""The data routes under ``/api/2.0/loopline/data``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/2.0/loopline")
