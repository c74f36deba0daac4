"""Features: one definition of each feature, used for training sets and for serving.

Definitions (:mod:`~loopline.features.definitions`, Feast's shapes) are registered with
``FeatureStore.apply`` or ``loopline features apply defs.py``. ``get_historical_features`` builds
point-in-time-correct training sets on DuckDB's ASOF join (:mod:`~loopline.features.offline`);
``materialize`` streams the latest values into an online store (SQLite by default, Redis for
scale: :mod:`~loopline.features.online`); ``get_online_features`` reads them in microseconds.
On-demand views run the same function in both paths.
"""

from loopline.features.definitions import (
    Bool,
    DatasetSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Float64,
    Int32,
    Int64,
    OnDemandFeatureView,
    PostgresSource,
    Projection,
    PushSource,
    RequestSource,
    SqlSource,
    String,
    UnixTimestamp,
    on_demand_feature_view,
)
from loopline.features.online import OnlineStore, open_online_store
from loopline.features.online_read import OnlineResponse
from loopline.features.registry import Plan, load_definitions
from loopline.features.store import FeatureStore

__all__ = [
    "Bool",
    "DatasetSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "OnDemandFeatureView",
    "OnlineResponse",
    "OnlineStore",
    "Plan",
    "PostgresSource",
    "Projection",
    "PushSource",
    "RequestSource",
    "SqlSource",
    "String",
    "UnixTimestamp",
    "load_definitions",
    "on_demand_feature_view",
    "open_online_store",
]
