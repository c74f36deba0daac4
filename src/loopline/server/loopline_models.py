"""The shapes of Loopline's own tracking routes (``loopline_api.py``), for the OpenAPI document.

MLflow's request and answer shapes (``mlflow_models.py``) with what Loopline adds: a client-chosen run
ID and a run's first batch on create, the final batch on finish, ``include`` on search, counts,
columnar metric histories, events and lineage.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopline.server.mlflow_models import (
    SAFE,
    CreateRun,
    Filter,
    GetRun,
    Key,
    MetricIn,
    Millis,
    PageToken,
    ParamIn,
    SearchRuns,
    ViewType,
)
from loopline.server.openapi_models import Answer, NonEmpty
from loopline.tracking.lineage import MAX_EVENTS

Include = Literal["params", "tags", "metrics", "inputs"]
Uri = Annotated[str, Field(min_length=1, description="an object URI: runs:/…, models:/…, datasets:/…")]


class SearchRunsIncluding(SearchRuns):
    include: list[Include] = Field(
        ["inputs", "metrics", "params", "tags"], description="what to load of each run (default: all)"
    )


class CountRuns(BaseModel):
    experiment_ids: list[Annotated[str, Field(pattern=r"^[0-9]{1,18}$")]] = []
    filter: Filter | None = None
    run_view_type: ViewType = "ACTIVE_ONLY"


class Count(Answer):
    count: int


class ListEvents(BaseModel):
    object_uri: str | None = None
    action: str | None = Field(None, description="an action (monitor.run) or a kind (monitor)")
    max_results: Annotated[int, Field(ge=1, le=MAX_EVENTS)] = 100
    since_ms: Millis | None = Field(None, description="only events at or after this time")
    until_ms: Millis | None = Field(None, description="only events before this time")


class Event(Answer):
    id: int
    time_ms: int
    actor: str
    action: str
    object_uri: str
    payload: dict[str, Any]
    reason: str | None


class Events(Answer):
    events: list[Event]


class WalkLineage(BaseModel):
    uri: Uri


class Edge(Answer):
    from_uri: str
    to_uri: str
    relation: str
    time_ms: int
    external: bool = Field(description="the source is not in this store (another tracking server's run)")


class Edges(Answer):
    edges: list[Edge]


class MetricHistory(GetRun):
    metric_key: Key
    max_results: Annotated[int, Field(ge=1, le=SAFE)] = 100_000
    page_token: PageToken | None = None


class MetricColumns(Answer):
    timestamp: list[int]
    step: list[int]
    value: list[float]
    non_finite: dict[str, Literal["NaN", "Infinity", "-Infinity"]] | None = Field(
        None, description='{"<index>": "NaN" | "Infinity" | "-Infinity"} for values sent as 0'
    )
    next_page_token: str | None = None


class FinishRun(BaseModel):
    run_id: NonEmpty
    status: Literal["FINISHED", "FAILED", "KILLED"]
    end_time: Millis
    metrics: Annotated[list[MetricIn], Field(max_length=1000)] = []


class CreateRunWithBatch(CreateRun):
    """MLflow's runs/create, plus a client-chosen ``run_id`` (reusing one is a 409 unless the request
    repeats the call that took it), the first ``params`` and ``metrics``, and for a run created
    already ended, ``status`` and ``end_time``."""

    # A final status needs an end_time.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"status": {"enum": ["RUNNING", "SCHEDULED"]}}},
                {"required": ["end_time"], "properties": {"end_time": {"type": "integer"}}},
            ]
        }
    )

    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    params: Annotated[list[ParamIn], Field(max_length=100)] = []
    metrics: Annotated[list[MetricIn], Field(max_length=800)] = []
    status: Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] = "RUNNING"
    end_time: Millis | None = Field(None, description="required with a final status")
