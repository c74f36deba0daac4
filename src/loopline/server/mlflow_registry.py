"""MLflow's model-registry REST API: registered models, versions, aliases and logged models."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
