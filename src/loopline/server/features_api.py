"""The features routes under ``/api/2.0/loopline/features``.

``POST features/online`` reads materialised features, the HTTP face of
``FeatureStore.get_online_features``::

    {"features": ["driver_stats:conv_rate", …] | "feature_service": "driver_activity",
     "entities": {"driver_id": [1001, 1002]} | "entity_rows": [{"driver_id": 1001}, …],
     "full_feature_names": false}
    → {"features": {"driver_id": [1001, 1002], "conv_rate": [0.52, null]}}

``GET features/definitions`` lists what is registered. The server keeps one ``FeatureStore`` (its
online-store connections and resolved feature lists) for the process.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.errors import InvalidInput
from loopline.server.http import blocking, json_body, json_response, params
from loopline.server.state import state

router = APIRouter(prefix="/api/2.0/loopline")


def _features(request: Request) -> Any:
    store = getattr(request.app.state, "loopline_features", None)
    if store is None:
        from loopline.features import FeatureStore

        store = FeatureStore(state(request).settings)
        request.app.state.loopline_features = store
    return store


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


@router.post("/features/online")
async def online_features(request: Request) -> Response:
    body = await json_body(request)
    features = body.get("features")
    service = body.get("feature_service")
    if (features is None) == (service is None):
        raise InvalidInput("Send exactly one of 'features' (a list of 'view:feature') or 'feature_service'.")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(f, str) for f in features)
    ):
        raise InvalidInput("'features' must be a list of 'view:feature' strings.")
    if service is not None and not isinstance(service, str):
        raise InvalidInput("'feature_service' must be a string.")
    entities = body.get("entities", body.get("entity_rows"))
    if isinstance(entities, dict):
        if not all(isinstance(v, list) for v in entities.values()):
            raise InvalidInput("'entities' must map each join key to a list of values.")
    elif not isinstance(entities, list) or not all(isinstance(r, dict) for r in entities):
        raise InvalidInput(
            "Send 'entities' ({key: [values]}) or 'entity_rows' ([{key: value}, …]).",
            hint='e.g. {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}',
        )
    full = body.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise InvalidInput("'full_feature_names' must be true or false.")
    store = _features(request)
    out = await blocking(
        store.get_online_features,
        features if features is not None else service,
        entities,
        full_feature_names=full,
    )
    columns = {k: [_jsonable(v) for v in vs] for k, vs in out.to_dict().items()}
    return json_response({"features": columns})


@router.get("/features/definitions")
async def definitions(request: Request) -> Response:
    await params(request)
    store = _features(request)
    stored = await blocking(store.registry.list_definitions)
    return json_response(
        {
            "definitions": [
                {"kind": d.kind, "name": d.name, "spec": d.spec, "digest": d.digest} for d in stored
            ]
        }
    )
