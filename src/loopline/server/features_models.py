"""The shapes of the features routes (``features_api.py``), for the OpenAPI document.

``apply``, ``lineage/record`` and ``materialize`` take their bodies as these models (FastAPI checks
them: those routes are not hot); the other routes read their arguments by hand and are documented
with ``@documented``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from loopline.features.types import LineageEdge, Materialization, StoredDefinition
from loopline.server.openapi_models import Answer, whole_number

Uri = Annotated[str, Field(min_length=1, max_length=512)]
Relation = Annotated[str, Field(min_length=1, max_length=64)]
# Numbers and flags as sent (no true for 1, no "5" for 5); epoch microseconds past 2**53 are typos.
Micros = Annotated[int, Field(strict=True, ge=0, le=2**53 - 1), BeforeValidator(whole_number)]
Rows = Annotated[int, Field(strict=True, ge=1, le=1_000_000), BeforeValidator(whole_number)]
Flag = Annotated[bool, Field(strict=True)]


class ChangeIn(BaseModel):
    op: Literal["add", "change", "remove"]
    kind: Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
    name: str = Field(min_length=1, max_length=128)
    spec: dict[str, Any] | None = None
    digest: str | None = None  # recomputed here from the spec; accepted for the record's shape


class ApplyRequest(BaseModel):
    changes: list[ChangeIn]
    edges: list[tuple[Uri, Uri, Relation]] = []


class ApplyResponse(BaseModel):
    applied: int


class MaterializeRequest(BaseModel):
    # start_us is needed unless the materialisation is incremental.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["start_us"], "properties": {"start_us": {"type": "integer"}}},
                {"required": ["incremental"], "properties": {"incremental": {"const": True}}},
            ]
        }
    )

    views: list[str] | None = None
    start_us: Micros | None = None
    end_us: Micros
    incremental: Flag = False
    batch_rows: Rows = 50_000


class MaterializedView(BaseModel):
    view: str
    start_us: int
    end_us: int
    rows: int
    resumed_from: list[Any] | None = None


class MaterializeResponse(BaseModel):
    results: list[MaterializedView]


class WrittenResponse(BaseModel):
    written: int


class SavedResponse(BaseModel):
    uri: str


class RecordLineageRequest(BaseModel):
    action: Relation
    uri: Uri
    edges: list[tuple[Uri, Uri, Relation]] = []
    payload: dict[str, Any] = {}


Kind = Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
FeatureRef = Annotated[str, Field(pattern=r"^[^:]+:[^:]+$", description="view:feature")]


class ListDefinitions(BaseModel):
    kind: Kind | None = None


_KIND = "(?:entity|feature_view|on_demand_feature_view|feature_service)"


class GetDefinition(BaseModel):
    name: Annotated[str, Field(min_length=1)]
    kinds: str | None = Field(
        None, pattern=f"^{_KIND}(?:,{_KIND})*$", description="comma-separated kinds (default: the view kinds)"
    )


class Definitions(Answer):
    definitions: list[StoredDefinition]


class DefinitionAnswer(Answer):
    definition: StoredDefinition


class LineageQuery(BaseModel):
    uri: Annotated[str, Field(min_length=1)]


class LineageEdges(Answer):
    edges: list[LineageEdge]


class ListMaterializations(BaseModel):
    view: str | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 50


class Materializations(Answer):
    materializations: list[Materialization]


class ViewQuery(BaseModel):
    view: Annotated[str, Field(min_length=1)]


class LastEnd(Answer):
    end_ms: int | None


class HistoricalQuery(BaseModel):
    """The entity frame: an Arrow IPC stream with the join keys and ``timestamp_column``. Send
    ``features`` (repeated) or ``feature_service``, not both."""

    features: list[FeatureRef] | None = None
    feature_service: str | None = None
    timestamp_column: str = "event_timestamp"
    full_feature_names: bool = False
    save_as: str | None = Field(None, description="also version the training set as this dataset")
    run_id: str | None = None


class PushQuery(BaseModel):
    """The rows: an Arrow IPC stream with the push source's columns."""

    name: Annotated[str, Field(min_length=1, description="the push source")]
    to: Literal["online", "offline", "online_and_offline"] = "online"


class TrainingSetQuery(BaseModel):
    """The training set: an Arrow IPC stream."""

    name: Annotated[str, Field(min_length=1)]
    refs: Annotated[list[FeatureRef], Field(min_length=1)]
    run_id: str | None = None


class OnlineRequest(BaseModel):
    """Exactly one of ``features`` and ``feature_service``; ``entities`` ({key: [values]}) or
    ``entity_rows`` ([{key: value}])."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["features"]}, {"required": ["feature_service"]}],
            "anyOf": [{"required": ["entities"]}, {"required": ["entity_rows"]}],
        }
    )

    features: Annotated[list[FeatureRef], Field(min_length=1)] = []
    feature_service: Annotated[str, Field(min_length=1)] = ""
    entities: dict[str, list[Any]] = {}
    entity_rows: list[dict[str, Any]] = []
    full_feature_names: bool = False


class OnlineAnswer(Answer):
    features: dict[str, list[Any]] = Field(description="column -> values, one per entity row")
    timestamps: list[str] | None = Field(None, description="the columns holding ISO 8601 times")
