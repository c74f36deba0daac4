"""What the closed loop did, as reports: DORA metrics for models, and why a prediction came out so.

- ``GET /api/2.0/loopline/dora?window=30d&model=&until_ms=``: deployment frequency, lead time,
  change failure rate and time to restore (``automation/dora.py``), overall and per model;
- ``GET /api/2.0/loopline/why/{request_id}``: the deployment state, model version, run, data and
  loop events behind one served request (``automation/why.py``); 404 when the log has no record.

A client whose tracking URI is this server gets both through here: the inference log and the events
live on the server's side.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from loopline.automation.timespec import DURATION_PATTERN, parse_duration_ms
from loopline.automation.why import REQUEST_ID_PATTERN
from loopline.clock import now_ms
from loopline.errors import InvalidInput
from loopline.server.http import blocking, json_response, optional_int, optional_str, params
from loopline.server.mlflow_models import SAFE, Millis
from loopline.server.openapi_models import Answer, DocumentedRoute, documented
from loopline.server.state import context

PREFIX = "/api/2.0/loopline"
router = APIRouter(prefix=PREFIX, route_class=DocumentedRoute)


# ---- shapes, for the OpenAPI document ---------------------------------------------------------------


class DoraQuery(BaseModel):
    window: str = Field("30d", pattern=DURATION_PATTERN, description="how far back: 90m, 12h, 30d, 2w")
    model: str | None = Field(None, description="only this registered model (the events' payload model)")
    until_ms: Millis | None = Field(None, description="the window's end (default: now)")


class Durations(Answer):
    count: int
    median_ms: float | None
    p90_ms: float | None


class DoraFigures(Answer):
    deployments: int = Field(description="loop.promote events in the window")
    deployments_per_day: float
    lead_time: Durations = Field(description="promotion time - payload change_ms")
    rollouts: int = Field(description="rollouts that reached traffic (a canary step or a promotion)")
    failures: int = Field(description="of those, rolled back")
    change_failure_rate: float | None = Field(description="failures / rollouts; null without rollouts")
    time_to_restore: Durations = Field(description="loop.restored time - payload detected_ms")


class DoraAnswer(Answer):
    since_ms: int
    until_ms: int
    model: str | None
    overall: DoraFigures
    models: dict[str, DoraFigures]


class LoopEvent(Answer):
    id: int
    time_ms: int
    actor: str
    action: str
    object_uri: str
    payload: dict[str, Any]
    reason: str


class Served(Answer):
    request_id: str
    time_ms: int
    deployment: str
    model: str
    version: str
    model_uri: str
    role: str
    rows: int
    status: int
    latency_ms: float
    error: str
    inputs: Any
    outputs: Any


class DeploymentState(Answer):
    name: str
    revision: int
    time_ms: int
    actor: str
    comment: str
    routes: dict[str, float]
    resolved: dict[str, str]
    shadow: str | None
    route: str | None


class VersionFacts(Answer):
    uri: str
    source: str
    run_id: str
    created_ms: int
    aliases: list[str]
    tags: dict[str, str]
    description: str


class DatasetUse(Answer):
    name: str
    digest: str
    source: str
    context: str


class RunFacts(Answer):
    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_ms: int | None
    params: dict[str, str]
    metrics: dict[str, Any]  # a NaN metric arrives as a string
    tags: dict[str, str]
    code_commit: str
    code_dirty: bool
    datasets: list[DatasetUse]


class Upstream(Answer):
    datasets: list[str]
    features: list[str]
    pipelines: list[str]
    code: list[str]
    runs: list[str]


class Explanation(Answer):
    served: Served
    deployment: DeploymentState | None
    version: VersionFacts | None
    run: RunFacts | None
    upstream: Upstream
    gate: LoopEvent | None
    rollout: list[LoopEvent]
    shadows: list[str]
    notes: list[str]


# ---- routes ---------------------------------------------------------------------------------------


@router.get("/dora")
@documented(DoraQuery, answer=DoraAnswer, errors=())
async def dora(request: Request) -> Response:
    """DORA metrics over the window: overall, and per model under ``models``."""
    from loopline.automation.dora import compute_dora

    body = await params(request)
    window_ms = parse_duration_ms(optional_str(body, "window") or "30d")
    until = optional_int(body, "until_ms")
    if until is not None and not 0 <= until <= SAFE:
        raise InvalidInput(f"Invalid until_ms {until}: it must be between 0 and {SAFE}.")
    end = now_ms() if until is None else until
    ctx = context(request)
    report = await blocking(
        compute_dora,
        ctx.engine,
        ctx.workspace,
        since_ms=end - window_ms,
        until_ms=end,
        model=optional_str(body, "model"),
    )
    return json_response(report.to_json())


@router.get("/why/{request_id}")
@documented(answer=Explanation, errors=(404,))
async def why(
    request_id: Annotated[
        str,
        Path(
            description="the X-Request-Id the inference server answered with",
            json_schema_extra={"pattern": REQUEST_ID_PATTERN},
        ),
    ],
    request: Request,
) -> Response:
    """The deployment state, model version, run, data and loop events behind one served request."""
    from loopline.automation.why import explain

    found = await blocking(explain, context(request), request_id)
    return json_response(found.to_json())
