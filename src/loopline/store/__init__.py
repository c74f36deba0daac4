"""Metadata backends: the tracking store on SQLAlchemy (SQLite ▸ PostgreSQL) or over REST.

``open_tracking_store(settings)`` picks the implementation from the tracking URI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.store.protocol import Page, TrackingStore, ViewType

if TYPE_CHECKING:
    from sqlalchemy import Engine

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


def open_sql_engine(settings: Settings, *, what: str) -> Engine:
    """The engine of the metadata database ``settings.tracking_uri`` names, for a domain's SQL store.

    ``what`` names the capability in the error a remote tracking URI gets: data, features, pipelines
    and monitors keep their metadata in the database directly (their REST routes come later).
    """
    if settings.is_remote:
        from loopline.errors import InvalidInput

        raise InvalidInput(
            f"{what} needs the metadata database, not a server URI: {settings.tracking_uri}.",
            hint="Set LOOPLINE_TRACKING_URI to the server's database (sqlite:///… or postgresql://…).",
        )
    from loopline.store.engine import create_store_engine

    return create_store_engine(settings.tracking_uri)


__all__ = ["Page", "TrackingStore", "ViewType", "open_sql_engine", "open_tracking_store"]
