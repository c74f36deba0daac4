"""``FeatureStore``: one object for definitions, training sets, materialisation and online reads.

    store = loopline.FeatureStore()
    store.apply("features/defs.py")                      # prints nothing; returns the Plan
    train = store.get_historical_features(entity_df, ["driver_stats:conv_rate", "adjusted:value"])
    store.materialize_incremental(datetime.now(UTC))
    store.get_online_features(["driver_stats:conv_rate"], [{"driver_id": 1001}]).to_dict()

Definitions live in the metadata database (``feature_objects``); the store reads them once and
again after ``registry_ttl`` seconds, so a long-lived server sees a new ``apply`` without a
restart. Online reads resolve a feature list once and keep the plan.

The same calls work with ``LOOPLINE_TRACKING_URI=http://server:5000``: definitions go through the
registry store (:mod:`~loopline.features.registry_store`) and the data work through the compute
(:mod:`~loopline.features.compute`), each picked once from the context, so materialisation,
training sets and online reads then run on the server, against its sources and online store.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopline.errors import InvalidInput, NotFound
from loopline.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    PushSource,
    from_spec,
    source_uri,
)
from loopline.features.online import OnlineStore
from loopline.features.online_read import OnlinePlan, OnlineResponse
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
        self.registry_ttl = registry_ttl
        self._online_arg = online_store
        self._registry: FeatureRegistryStore | None = None
        self._compute: FeatureCompute | None = None
        self._defs: dict[str, Definition] = {}
        self._entities: dict[str, Entity] = {}
        self._loaded_at = -1e18
        self._generation = ""
        self._plans: dict[Any, OnlinePlan] = {}

    # ---- backends ------------------------------------------------------------------------------

    @property
    def registry(self) -> FeatureRegistryStore:
        """The definitions' store: SQL on a database, REST on a server."""
        if self._registry is None:
            from loopline.features.registry_store import open_feature_registry_store

            self._registry = open_feature_registry_store(self.context)
        return self._registry

    @property
    def compute(self) -> FeatureCompute:
        """Where materialisation, training sets and online reads run: here, or on the server."""
        if self._compute is None:
            from loopline.features.compute import open_feature_compute

            self._compute = open_feature_compute(self.context, self, self._online_arg)
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

    def _load(self, force: bool = False) -> dict[str, Definition]:
        now = time.monotonic()
        if not force and now - self._loaded_at < self.registry_ttl:
            return self._defs
        stored = self.registry.list_definitions()
        generation = digest({f"{d.kind}:{d.name}": d.digest for d in stored})
        if generation != self._generation:
            defs: dict[str, Definition] = {}
            entities: dict[str, Entity] = {}
            for d in stored:
                obj = from_spec(d.kind, d.name, d.spec)
                if isinstance(obj, Entity):
                    entities[d.name] = obj
                else:
                    defs[d.name] = obj
            self._defs, self._entities, self._generation = defs, entities, generation
            self._plans = {}
        self._loaded_at = now
        return self._defs

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
        self._loaded_at = -1e18
        return p

    def definitions(self, *, fresh: bool = True) -> dict[str, Definition]:
        """Every registered view, on-demand view and service by name (entities: :meth:`list_entities`).

        ``fresh=False`` may answer from the copy read within ``registry_ttl`` (the online path).
        """
        return dict(self._load(force=fresh))

    def list_entities(self) -> list[Entity]:
        self._load(force=True)
        return list(self._entities.values())

    def list_feature_views(self) -> list[FeatureView | OnDemandFeatureView]:
        return [
            d for d in self._load(force=True).values() if isinstance(d, (FeatureView, OnDemandFeatureView))
        ]

    def list_feature_services(self) -> list[FeatureService]:
        return [d for d in self._load(force=True).values() if isinstance(d, FeatureService)]

    def get(self, name: str) -> Definition:
        """A registered view, on-demand view or service by name."""
        d = self._load().get(name) or self._load(force=True).get(name)
        if d is None:
            raise NotFound(
                f"No feature view or service named {name!r}.",
                hint=f"Registered: {', '.join(sorted(self._defs)) or 'none'}.",
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

    def push_views(self, name: str) -> list[FeatureView]:
        views = [
            d
            for d in self._load(force=True).values()
            if isinstance(d, FeatureView)
            and (d.name == name or (isinstance(d.source, PushSource) and d.source.name == name))
        ]
        if not views:
            raise NotFound(
                f"No push source or feature view named {name!r}.", hint="Define a PushSource and apply it."
            )
        return views


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


def check_source(view: FeatureView, settings: Settings | None) -> None:
    """Fail ``apply`` early when the source lacks a column the view names (PostgreSQL is checked on read)."""
    from loopline.features.definitions import PostgresSource
    from loopline.features.sources import columns, connect, relation

    src = view.source.batch_source if isinstance(view.source, PushSource) else view.source
    if isinstance(src, PostgresSource):
        return
    con = connect()
    try:
        have = columns(con, relation(con, src, "__check", settings))
    finally:
        con.close()
    need = [*view.join_keys, src.timestamp_field, *view.features]
    if src.created_timestamp_column:
        need.append(src.created_timestamp_column)
    missing = [c for c in need if c not in have]
    if missing:
        raise InvalidInput(
            f"The source of feature view {view.name!r} has no column(s) {missing}.",
            hint=f"It has {sorted(have)}. Fix the schema, the entities' join keys or timestamp_field.",
        )
