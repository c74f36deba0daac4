"""Features fetched by the inference server: requests carry entity keys, the server adds the features.

``loopline serve models:/churn@champion`` with ``LOOPLINE_SERVE_FEATURE_SERVICE=churn_features``
turns an MLflow scoring request such as::

    {"dataframe_records": [{"customer_id": 17, "basket": 3.5}]}

into the model's input by reading the service's features for ``customer_id`` 17 from the online
store (:meth:`loopline.features.FeatureStore.get_online_features`: on-demand views run on the
request's own fields) and adding them as columns. A column the request carries itself wins over a
fetched one of the same name. The lookup runs on the event loop: an in-process SQLite read takes
tens of microseconds, less than a thread hop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from loopline.errors import BadRequest, InvalidInput
from loopline.serving.schema import InputSchema, Rows

Decode = Callable[[InputSchema], Rows]


def request_columns(body: bytes) -> dict[str, list[Any]]:
    """The request's rows as columns, from ``dataframe_records``, ``dataframe_split`` or ``inputs``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"Malformed JSON in the request body: {e}.") from None
    if not isinstance(payload, dict):
        raise BadRequest(
            "The input must be a JSON object with one of dataframe_records, dataframe_split, inputs."
        )
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        if (
            not isinstance(split, dict)
            or not isinstance(split.get("columns"), list)
            or not isinstance(split.get("data"), list)
        ):
            raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data'.")
        names = split["columns"]
        rows = split["data"]
        if not all(isinstance(r, list) and len(r) == len(names) for r in rows):
            raise InvalidInput("Every row of 'dataframe_split.data' needs one value per column.")
        return {n: [r[i] for r in rows] for i, n in enumerate(names)}
    records = payload.get("dataframe_records", payload.get("instances", payload.get("inputs")))
    if isinstance(records, dict):  # {"inputs": {column: [values]}}
        if not all(isinstance(v, list) for v in records.values()):
            raise InvalidInput("'inputs' as an object must map each column to a list of values.")
        return {k: list(v) for k, v in records.items()}
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInput(
            "With a feature service, send rows as objects that carry the entity keys.",
            hint='e.g. {"dataframe_records": [{"customer_id": 17}]}',
        )
    names = list(dict.fromkeys(k for r in records for k in r))
    return {n: [r.get(n) for r in records] for n in names}


class FeatureLookup:
    """Adds a feature service's online features to each request (one per server process)."""

    def __init__(self, service: str, store: Any = None) -> None:
        self.service = service
        self._store = store

    @property
    def store(self) -> Any:
        if self._store is None:
            from loopline.features import FeatureStore

            self._store = FeatureStore()
        return self._store

    def check(self) -> None:
        """Fail at start-up, not on the first request, when the service is not registered."""
        from loopline.features.definitions import FeatureService

        if not isinstance(self.store.get(self.service), FeatureService):
            raise InvalidInput(f"{self.service!r} is a feature view, not a feature service.")

    def columns(self, columns: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        fetched = self.store.get_online_features(self.service, columns).to_dict()
        return {**fetched, **columns}

    def decode(self, body: bytes, content_type: str | None) -> Decode:
        mime = (content_type or "").split(";")[0].strip().lower()
        if mime != "application/json":
            raise InvalidInput(
                f"With a feature service the server takes JSON, not {mime or 'a body without Content-Type'}.",
                hint="Send application/json rows that carry the entity keys.",
            )
        merged = self.columns(request_columns(body))
        return lambda schema: schema.from_columns(merged)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
