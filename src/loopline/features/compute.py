"""Where the feature store's data work runs: in this process, or on the server the context names.

Definitions go through a :class:`~loopline.features.registry_store.FeatureRegistryStore`; the
verbs that read sources and the online store (materialisation, training sets, online reads,
pushes) go through a :class:`FeatureCompute`:

- :class:`LocalCompute` does the work here: DuckDB over the sources, the online store opened from
  the settings (``online.db`` beside the metadata database, or ``LOOPLINE_ONLINE_STORE``);
- ``RestFeatureCompute`` (:mod:`loopline.features.rest_compute`; ``FeatureStore.compute`` picks one)
  asks ``loopline server``, whose
  own ``LocalCompute`` does it: the sources are read and the online store written where the server
  is, so what one client materialises every other client (and the server's online route) reads.
  On-demand views are the exception: their input features come from the server and the stored
  function runs here, so the server runs no user code for a client.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loopline.features.catalog import Catalog
from loopline.features.definitions import FeatureService, FeatureView, PostgresSource, PushSource
from loopline.features.online import OnlineStore, open_online_store
from loopline.features.online_read import OnlinePlan, OnlineResponse, read_online
from loopline.features.retrieval import resolve

if TYPE_CHECKING:
    import pyarrow as pa

    from loopline.config import Settings
    from loopline.features.materialize import MaterializeResult
    from loopline.features.sql_store import SqlFeatureRegistry
    from loopline.protocol.jobs import ProgressFn

Features = Sequence[str] | FeatureService | str
EntityRows = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]


class FeatureCompute(Protocol):
    """The feature store's verbs that touch data."""

    def check_sources(self, views: Sequence[FeatureView]) -> None:
        """Fail before ``apply`` writes anything when a view's source lacks a column it names."""
        ...

    def forget(self, views: Sequence[str]) -> None:
        """Drop the online values of views ``apply`` removed."""
        ...

    def materialize(
        self,
        start_us: int | None,
        end_us: int,
        views: Sequence[str] | None,
        *,
        batch_rows: int,
        incremental: bool,
        progress: ProgressFn | None = None,
    ) -> list[MaterializeResult]:
        """Load each view's latest values in the window into the online store; ``progress`` hears the
        rows written so far as batches commit (through a server: as its job reports them)."""
        ...

    def historical(
        self,
        entity: pa.Table,
        features: Features,
        *,
        timestamp_column: str,
        full_feature_names: bool,
        save_as: str | None,
        run_id: str | None,
        memory_limit: str | None,
    ) -> pa.Table:
        """The entity table with the features of each row as of its time (a point-in-time join)."""
        ...

    def online(
        self, features: Features, entity_rows: EntityRows, *, full_feature_names: bool
    ) -> OnlineResponse:
        """The latest materialised values (on-demand views computed on them)."""
        ...

    def push(self, name: str, rows: Any, *, to: str) -> int: ...

    def online_store(self) -> OnlineStore:
        """The online store itself (only where the work runs)."""
        ...

    def close(self) -> None: ...


class LocalCompute:
    """The work done in this process, on the context's database and the configured online store."""

    def __init__(self, catalog: Catalog, online: OnlineStore | str | None = None) -> None:
        self.catalog = catalog
        self._online_arg = online
        self._online: OnlineStore | None = online if isinstance(online, OnlineStore) else None
        self._jobs: SqlFeatureRegistry | None = None
        self._lock = threading.Lock()

    @property
    def jobs(self) -> SqlFeatureRegistry:
        """Materialisation jobs are this process's business: the SQL store of the context's database."""
        if self._jobs is None:
            from loopline.features.sql_store import SqlFeatureRegistry

            ctx = self.catalog.context
            self._jobs = SqlFeatureRegistry(ctx.engine, workspace=ctx.workspace, actor=ctx.actor)
        return self._jobs

    def online_store(self) -> OnlineStore:
        if self._online is None:
            from loopline.config import sqlite_path

            settings = self.catalog.settings
            uri = self._online_arg if isinstance(self._online_arg, str) else settings.online_store
            db = sqlite_path(settings.tracking_uri)
            home = db.parent if db is not None else Path(".loopline")
            with self._lock:  # a server's threads share this object: open the store once
                if self._online is None:
                    self._online = open_online_store(
                        uri, default_dir=home, namespace=self.catalog.context.workspace
                    )
        return self._online

    def check_sources(self, views: Sequence[FeatureView]) -> None:
        for view in views:
            check_source(view, self.catalog.settings)

    def forget(self, views: Sequence[str]) -> None:
        for name in views:
            self.online_store().drop(name)

    def materialize(
        self,
        start_us: int | None,
        end_us: int,
        views: Sequence[str] | None,
        *,
        batch_rows: int,
        incremental: bool,
        progress: ProgressFn | None = None,
    ) -> list[MaterializeResult]:
        from loopline.features.training import materialize

        return materialize(
            self.catalog,
            self.jobs,
            self.online_store(),
            start_us,
            end_us,
            views,
            batch_rows=batch_rows,
            incremental=incremental,
            progress=progress,
        )

    def historical(
        self,
        entity: pa.Table,
        features: Features,
        *,
        timestamp_column: str,
        full_feature_names: bool,
        save_as: str | None,
        run_id: str | None,
        memory_limit: str | None,
    ) -> pa.Table:
        from loopline.features.training import historical

        return historical(
            self.catalog,
            entity,
            features,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            save_as=save_as,
            run_id=run_id,
            memory_limit=memory_limit,
        )

    def online(
        self, features: Features, entity_rows: EntityRows, *, full_feature_names: bool
    ) -> OnlineResponse:
        key = (
            features.name
            if isinstance(features, FeatureService)
            else features
            if isinstance(features, str)
            else tuple(features),
            full_feature_names,
        )
        plan = self.catalog.online_plan(
            key,
            lambda defs: OnlinePlan.build(
                resolve(features, defs, full_feature_names=full_feature_names), defs
            ),
        )
        return read_online(plan, self.online_store(), entity_rows)

    def push(self, name: str, rows: Any, *, to: str) -> int:
        from loopline.features.training import push

        return push(self.catalog, self.online_store(), name, rows, to=to)

    def close(self) -> None:
        if self._online is not None:
            self._online.close()


def check_source(view: FeatureView, settings: Settings | None) -> None:
    """Fail ``apply`` early when the source lacks a column the view names (PostgreSQL is checked on read)."""
    from loopline.features.sources import columns, connect, relation, require_columns

    src = view.source.batch_source if isinstance(view.source, PushSource) else view.source
    if isinstance(src, PostgresSource):
        return
    con = connect()
    try:
        have = columns(con, relation(con, src, "__check", settings))
    finally:
        con.close()
    require_columns(view, src, view.features, have)


__all__ = ["EntityRows", "FeatureCompute", "Features", "LocalCompute", "check_source"]
