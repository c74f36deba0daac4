"""``FeatureStore``: one object for definitions, training sets, materialisation and online reads.

    store = loopline.FeatureStore()
    store.apply("features/defs.py")                      # prints nothing; returns the Plan
    train = store.get_historical_features(entity_df, ["driver_stats:conv_rate", "adjusted:value"])
    store.materialize_incremental(datetime.now(UTC))
    store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}]).to_dict()

Definitions live in the metadata database (``feature_objects``); the store's ``Catalog``
(:mod:`~loopline.features.catalog`) reads them once and again after ``registry_ttl`` seconds, so a
long-lived server sees a new ``apply`` without a restart. Online reads resolve a feature list once
and keep the plan.

The same calls work with ``LOOPLINE_TRACKING_URI=http://server:5000``: definitions go through the
registry store (:mod:`~loopline.features.registry_store`) and the data work through the compute
(:mod:`~loopline.features.compute`), each picked once from the context, so materialisation,
training sets and online reads then run on the server, against its sources and online store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopline.errors import InvalidInput, NotFound
from loopline.features.catalog import Catalog
from loopline.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    source_uri,
)
from loopline.features.online import OnlineStore
from loopline.features.online_read import OnlineResponse
from loopline.features.registry import Plan, digest, load_definitions, plan
from loopline.features.types import DefinitionChange

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.context import Context
    from loopline.features.compute import FeatureCompute
    from loopline.features.materialize import MaterializeResult
    from loopline.features.registry_store import FeatureRegistryStore
    from loopline.protocol.jobs import ProgressFn

Format = Literal["pandas", "polars", "arrow"]
TimeLike = dt.datetime | str


def to_utc_us(value: TimeLike) -> int:
    """A datetime (naive means UTC), pandas Timestamp or ISO string as epoch microseconds."""
    from loopline.features.online.codec import to_us

    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"Not a time: {value!r}.", hint="Use ISO 8601, e.g. 2026-01-31T00:00:00."
            ) from None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"Not a time: {value!r}.", hint="Pass a datetime or an ISO 8601 string.")
    us = to_us(value)
    assert us is not None
    return us


class FeatureStore:
    """Feature definitions, offline retrieval, materialisation and online reads for one workspace.

    Args:
        settings: where the metadata lives (default ``Settings.from_env()``); a server URI
            (``http://…``) makes every verb go through that server.
        context: instead of ``settings``, the :class:`~loopline.context.Context` to act in.
        online_store: an :class:`OnlineStore` or its URI (default ``settings.online_store``:
            ``sqlite`` puts ``online.db`` beside the metadata database). Not with a server URI:
            the online store is then the server's.
        registry_ttl: seconds a loaded registry is trusted before it is read again.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        context: Context | None = None,
        online_store: OnlineStore | str | None = None,
        registry_ttl: float = 10.0,
    ) -> None:
        from loopline.context import Context

        self.context = context or Context(settings)
        self.settings = self.context.settings
        self.catalog = Catalog(self.context, ttl=registry_ttl)
        self._online_arg = online_store
        self._compute: FeatureCompute | None = None

    # ---- backends ------------------------------------------------------------------------------

    @property
    def registry(self) -> FeatureRegistryStore:
        """The definitions' store: SQL on a database, REST on a server."""
        return self.catalog.registry

    @property
    def compute(self) -> FeatureCompute:
        """Where materialisation, training sets and online reads run: here (``LocalCompute``), or on
        the server (``RestFeatureCompute``, whose online store is the server's own)."""
        if self._compute is None:
            if self.context.is_remote:
                from loopline.features.rest_compute import RestFeatureCompute

                if self._online_arg is not None:
                    raise InvalidInput(
                        "Through a server the online store is the server's: do not pass online_store.",
                        hint="Configure it on the server (LOOPLINE_ONLINE_STORE), or use a database URI.",
                    )
                self._compute = RestFeatureCompute(self.context.http, self.catalog)
            else:
                from loopline.features.compute import LocalCompute

                self._compute = LocalCompute(self.catalog, self._online_arg)
        return self._compute

    @property
    def online(self) -> OnlineStore:
        return self.compute.online_store()

    def close(self) -> None:
        if self._compute is not None:
            self._compute.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- the registry --------------------------------------------------------------------------

    def plan(self, definitions: Iterable[Definition] | str | Path) -> Plan:
        """What :meth:`apply` would change: added, changed and removed objects."""
        defs = load_definitions(definitions) if isinstance(definitions, (str, Path)) else list(definitions)
        current = {(d.kind, d.name): d.spec for d in self.registry.list_definitions()}
        return plan(defs, current)

    def apply(self, definitions: Iterable[Definition] | str | Path) -> Plan:
        """Make the registry hold exactly ``definitions`` (a list, or a definitions file). Idempotent."""
        p = self.plan(definitions)
        if p.empty:
            return p
        views = {d.name: d for d in p.definitions if isinstance(d, FeatureView)}
        self.compute.check_sources(
            [views[c.name] for c in p.changes if c.op != "remove" and c.kind == "feature_view"]
        )
        self.registry.apply(changes(p), edges(p))
        self.compute.forget([c.name for c in p.removed if c.kind == "feature_view"])
        self.catalog.expire()
        return p

    def definitions(self, *, fresh: bool = True) -> dict[str, Definition]:
        """Every registered view, on-demand view and service by name (entities: :meth:`list_entities`).

        ``fresh=False`` may answer from the copy read within ``registry_ttl`` (the online path).
        """
        return dict(self.catalog.definitions(fresh=fresh))

    def list_entities(self) -> list[Entity]:
        return self.catalog.entities()

    def list_feature_views(self) -> list[FeatureView | OnDemandFeatureView]:
        return [
            d
            for d in self.catalog.definitions(fresh=True).values()
            if isinstance(d, (FeatureView, OnDemandFeatureView))
        ]

    def list_feature_services(self) -> list[FeatureService]:
        return [d for d in self.catalog.definitions(fresh=True).values() if isinstance(d, FeatureService)]

    def get(self, name: str) -> Definition:
        """A registered view, on-demand view or service by name."""
        d = self.catalog.definitions().get(name)
        if d is None:
            registered = self.catalog.definitions(fresh=True)
            d = registered.get(name)
            if d is None:
                raise NotFound(
                    f"No feature view or service named {name!r}.",
                    hint=f"Registered: {', '.join(sorted(registered)) or 'none'}.",
                )
        return d

    def get_feature_view(self, name: str) -> FeatureView:
        d = self.get(name)
        if not isinstance(d, FeatureView):
            raise NotFound(f"{name!r} is not a feature view.")
        return d

    # ---- offline -------------------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any,
        features: Sequence[str] | FeatureService | str,
        *,
        timestamp_column: str = "event_timestamp",
        full_feature_names: bool = False,
        format: Format = "pandas",
        save_as: str | None = None,
        run_id: str | None = None,
        memory_limit: str | None = None,
    ) -> Any:
        """For each entity row, each feature's latest value at or before its time, within the view's TTL.

        Every row of ``entity_df`` comes back, in its order, with nulls where no value was in range.
        ``save_as`` stores the result as a dataset version with lineage to the views and sources (and
        to ``run_id`` or the active run).

        Example:
            >>> store.get_historical_features(orders, ["driver_stats:conv_rate"])  # doctest: +SKIP
        """
        from loopline.features.offline import to_arrow

        if format not in ("pandas", "polars", "arrow"):
            raise InvalidInput(f"Unknown format {format!r}.", hint="Use pandas, polars or arrow.")
        result = self.compute.historical(
            to_arrow(entity_df),
            features,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            save_as=save_as,
            run_id=run_id,
            memory_limit=memory_limit,
        )
        if format == "arrow":
            return result
        if format == "polars":
            import polars as pl

            return pl.from_arrow(result)
        return result.to_pandas()

    # ---- online --------------------------------------------------------------------------------

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        *,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The latest materialised values for ``entity_rows`` (a list of dicts or a dict of columns).

        Example:
            >>> rows = [{"driver_id": 1001}]
            >>> store.get_online_features(["driver_stats:conv_rate"], rows).to_dict()  # doctest: +SKIP
            {'driver_id': [1001], 'conv_rate': [0.52]}
        """
        return self.compute.online(features, entity_rows, full_feature_names=full_feature_names)

    def push(
        self, name: str, rows: Any, *, to: Literal["online", "offline", "online_and_offline"] = "online"
    ) -> int:
        """Write fresh rows (a frame or a list of dicts) to every view fed by push source ``name``."""
        return self.compute.push(name, rows, to=to)

    # ---- materialisation -----------------------------------------------------------------------

    def materialize(
        self,
        start: TimeLike,
        end: TimeLike,
        views: Sequence[str] | None = None,
        *,
        batch_rows: int = 50_000,
        progress: ProgressFn | None = None,
    ) -> list[MaterializeResult]:
        """Load the latest value per entity in ``[start, end]`` of each online view into the online store.

        ``progress`` is called with a :class:`~loopline.protocol.jobs.Progress` (rows written so far,
        the view) as batches commit, here or on the server.
        """
        return self.compute.materialize(
            to_utc_us(start),
            to_utc_us(end),
            views,
            batch_rows=batch_rows,
            incremental=False,
            progress=progress,
        )

    def materialize_incremental(
        self,
        end: TimeLike,
        views: Sequence[str] | None = None,
        *,
        batch_rows: int = 50_000,
        progress: ProgressFn | None = None,
    ) -> list[MaterializeResult]:
        """Materialise from where each view's last run ended (or ``end - ttl``) up to ``end``."""
        return self.compute.materialize(
            None, to_utc_us(end), views, batch_rows=batch_rows, incremental=True, progress=progress
        )


def changes(p: Plan) -> list[DefinitionChange]:
    """The plan's changes as the registry store writes them (specs with their digests)."""
    return [
        DefinitionChange(c.op, c.kind, c.name, c.spec, digest(c.spec) if c.spec else None) for c in p.changes
    ]


def edges(p: Plan) -> list[tuple[str, str, str]]:
    """The lineage edges the plan's definitions imply: sources into views, views into services."""
    out: list[tuple[str, str, str]] = []
    for d in p.definitions:
        if isinstance(d, FeatureView):
            out.append((source_uri(d.source), f"features:/{d.name}", "input_of"))
        elif isinstance(d, OnDemandFeatureView):
            out.extend((f"features:/{v}", f"features:/{d.name}", "input_of") for v, _ in d.inputs())
        elif isinstance(d, FeatureService):
            members = {r.split(":")[0] for r in d.refs()}
            out.extend((f"features:/{v}", f"features:/{d.name}", "member_of") for v in sorted(members))
    return out
