"""The features tables (migration 0007), on the shared MetaData of ``loopline.store.schema``."""

from __future__ import annotations
