"""Which registry store a context gets: SQL on a database, REST on a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.context import Context


def open_registry_store(context: Context) -> Any:
    """``SqlRegistryStore`` on the context's database, ``RestRegistryStore`` on its server (sharing
    the context's HTTP client)."""
    if context.is_remote:
        from loopline.registry.rest_store import RestRegistryStore

        return RestRegistryStore(context.settings.tracking_uri, client=context.http)
    from loopline.registry.sql_store import SqlRegistryStore

    return SqlRegistryStore(context.engine, workspace=context.workspace, actor=context.actor)
