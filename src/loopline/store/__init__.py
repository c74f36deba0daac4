"""Metadata backends: the tracking store on SQLAlchemy (SQLite ▸ PostgreSQL) or over REST.

``open_tracking_store(settings)`` picks the implementation from the tracking URI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.store.protocol import Page, TrackingStore, ViewType

if TYPE_CHECKING:
    from loopline.config import Settings


def open_tracking_store(settings: Settings) -> TrackingStore:
    """The tracking store that ``settings.tracking_uri`` names."""
    if settings.is_remote:
        from loopline.store.rest import RestTrackingStore

        return RestTrackingStore(settings.tracking_uri)
    from loopline.store.engine import create_store_engine
    from loopline.store.sql_tracking import SqlTrackingStore

    engine = create_store_engine(settings.tracking_uri)
    return SqlTrackingStore(engine, workspace=settings.workspace, actor=settings.user)


__all__ = ["Page", "TrackingStore", "ViewType", "open_tracking_store"]
