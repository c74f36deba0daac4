"""The data tables (migration 0004), on the shared MetaData of ``loopline.store.schema``."""

from __future__ import annotations
