"""The features routes under ``/api/2.0/loopline/features``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/2.0/loopline")
