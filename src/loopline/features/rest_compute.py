"""The feature store's data work done by ``loopline server``: ``FeatureCompute`` over REST.

``RestFeatureCompute`` is :class:`~loopline.features.compute.FeatureCompute` on the routes of
:mod:`loopline.server.features_api`: the server materialises (it reads the sources and writes its
own online store), joins training sets (entity frames go up and come back as Arrow IPC streams)
and answers online reads. On-demand views run here, on the input features the server sent back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from loopline.errors import InvalidInput
from loopline.features.arrow_ipc import MEDIA_TYPE, from_ipc, to_ipc
from loopline.features.catalog import Catalog
from loopline.features.compute import EntityRows, Features
from loopline.features.definitions import FeatureService, FeatureView
from loopline.features.materialize import MaterializeResult
from loopline.features.online_read import OnlineResponse, with_on_demand
from loopline.features.rest_store import API
from loopline.features.retrieval import Resolved, resolve
from loopline.protocol.http import RestClient
from loopline.protocol.jobs import ProgressFn, request_job

if TYPE_CHECKING:
    import pyarrow as pa

    from loopline.features.online import OnlineStore

# Materialisations and saved training sets run as server jobs (202, then polled: protocol/jobs.py);
# a server of before jobs answers when done, so the read may still take that long.
LONG = httpx.Timeout(60.0, read=6 * 3600.0)


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: numpy scalars as Python numbers, pandas times as datetimes."""
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _refs(features: Features) -> dict[str, Any]:
    """A feature list or a service name as the routes take it (a service object as its refs)."""
    if isinstance(features, FeatureService):
        return {"features": features.refs()}
    if isinstance(features, str):
        return {"feature_service": features}
    return {"features": list(features)}


def _base_refs(res: Resolved) -> list[str]:
    """What the server reads for a resolved request: the views' features, on-demand inputs included."""
    return [f"{v}:{f}" for v, feats in res.views.items() for f in feats]


class RestFeatureCompute:
    """Materialisation, training sets, online reads and pushes, done by the server.

    On-demand views run here, on the values the server read: the server runs no user code for a
    client (see ``loopline.server.features_api``), and the client's registry holds their source.
    """

    def __init__(self, client: RestClient, catalog: Catalog) -> None:
        self.client = client
        self.catalog = catalog

    def check_sources(self, views: Sequence[FeatureView]) -> None:
        """Nothing here: the server checks the sources it will read when it applies (``features/apply``)."""

    def forget(self, views: Sequence[str]) -> None:
        """Nothing here: the server drops removed views from its online store when it applies."""

    def online_store(self) -> OnlineStore:
        raise InvalidInput(
            f"The online store is the server's ({self.client.base_url}), not this process's.",
            hint="Read it with get_online_features, or run where the server's database is.",
        )

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
        request = {
            "views": list(views) if views is not None else None,
            "start_us": start_us,
            "end_us": end_us,
            "incremental": incremental,
            "batch_rows": batch_rows,
        }
        body = request_job(
            self.client, "POST", f"{API}/materialize", json=request, progress=progress, timeout=LONG
        )
        return [
            MaterializeResult(r["view"], r["start_us"], r["end_us"], r["rows"], r.get("resumed_from"))
            for r in body["results"]
        ]

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
        from loopline.features.training import assemble, check_names

        res = resolve(features, self.catalog.definitions(), full_feature_names=full_feature_names)
        check_names(entity, res)
        # The server joins the views' features (named view__feature: no clash with the frame's
        # columns); memory_limit is the server's to set (LOOPLINE_FEATURES_MEMORY_LIMIT there).
        resp = self.client.request(
            "POST",
            f"{API}/historical",
            params={
                "features": _base_refs(res),
                "timestamp_column": timestamp_column,
                "full_feature_names": "true",
            },
            content=to_ipc(entity),
            headers={"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE},
            timeout=LONG,
        )
        joined = from_ipc(resp.content, "server's answer")
        values = {(v, f): joined.column(f"{v}__{f}") for v, feats in res.views.items() for f in feats}
        result = assemble(entity, res, values)
        if save_as:
            params = {"name": save_as, "refs": [f"{v}:{f}" for v, f in res.refs], "run_id": run_id}
            request_job(
                self.client,
                "POST",
                f"{API}/training-sets",
                params={k: v for k, v in params.items() if v},
                content=to_ipc(result),
                headers={"Content-Type": MEDIA_TYPE},
                timeout=LONG,
            )
        return result

    def online(
        self, features: Features, entity_rows: EntityRows, *, full_feature_names: bool
    ) -> OnlineResponse:
        res = resolve(features, self.catalog.definitions(), full_feature_names=full_feature_names)
        rows: Any = (
            {k: [_plain(x) for x in v] for k, v in entity_rows.items()}
            if isinstance(entity_rows, Mapping)
            else [{k: _plain(x) for k, x in r.items()} for r in entity_rows]
        )
        key = "entities" if isinstance(rows, dict) else "entity_rows"
        asked: dict[str, Any] = {"features": _base_refs(res), "full_feature_names": True}
        if not res.on_demand:
            asked = {**_refs(features), "full_feature_names": full_feature_names}
        body = self.client.call("POST", f"{API}/online", {**asked, key: rows})
        columns: dict[str, list[Any]] = body["features"]
        for name in body.get("timestamps", ()):  # times travel as ISO 8601 text
            columns[name] = [None if v is None else dt.datetime.fromisoformat(v) for v in columns[name]]
        if not res.on_demand:
            return OnlineResponse(columns)
        values = {(v, f): columns.pop(f"{v}__{f}") for v, feats in res.views.items() for f in feats}
        return with_on_demand(res, columns, values, entity_rows)

    def push(self, name: str, rows: Any, *, to: str) -> int:
        import pyarrow as pa

        from loopline.features.offline import to_arrow

        table = pa.Table.from_pylist(rows) if isinstance(rows, list) else to_arrow(rows)
        resp = self.client.request(
            "POST",
            f"{API}/push",
            params={"name": name, "to": to},
            content=to_ipc(table),
            headers={"Content-Type": MEDIA_TYPE},
            timeout=LONG,
        )
        written: int = resp.json()["written"]
        return written

    def close(self) -> None:
        """The HTTP client is the context's: it stays open for the other stores."""


__all__ = ["RestFeatureCompute"]
