"""The pipelines tables (migration 0006), on the shared MetaData of ``loopline.store.schema``."""

from __future__ import annotations
