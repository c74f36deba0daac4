"""The monitoring tables (migration 0005), on the shared MetaData of ``loopline.store.schema``."""

from __future__ import annotations
