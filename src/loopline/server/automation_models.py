"""The shapes of the loop's routes (``automation_api``), for the OpenAPI document and for checking
requests: a policy as ``loopline.automation.types`` defines it, each kind of trigger and gate rule
with just the fields it takes (a discriminated union on ``kind``).

Bounds are documented (``json_schema_extra``) and checked by the value types themselves, whose
refusals name the field and the fix; a pydantic constraint would answer first with less.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from loopline.server.openapi_models import Name, whole_number


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _between(low: float, high: float | None = None) -> dict[str, Any]:
    return {"minimum": low} | ({"maximum": high} if high is not None else {})


Number = float | int  # strict: JSON's 5 and 5.0 are both numbers here
Share = Annotated[Number, Field(json_schema_extra=_between(0, 1))]


class AlertTrigger(_Strict):
    kind: Literal["alert"]
    monitor: Name


class DatasetTrigger(_Strict):
    kind: Literal["dataset"]
    dataset: Name


class ScheduleTrigger(_Strict):
    kind: Literal["schedule"]
    cron: str = Field(description="a cron expression, UTC (0 3 * * *)", json_schema_extra={"minLength": 1})


Trigger = Annotated[AlertTrigger | DatasetTrigger | ScheduleTrigger, Field(discriminator="kind")]


class _Judged(_Strict):
    max_loss: Annotated[Number, Field(json_schema_extra=_between(0))] = 0.0
    higher_is_better: bool | None = Field(None, description="default: the metric's own direction")
    method: Literal["bootstrap", "point"] = "bootstrap"
    confidence: Annotated[Number, Field(json_schema_extra=_between(0.5, 0.9999))] = 0.95
    resamples: Annotated[
        int, Field(json_schema_extra=_between(100, 100_000)), BeforeValidator(whole_number)
    ] = 1000


class MetricRule(_Judged):
    kind: Literal["metric"]
    metric: str = Field(
        description="a metric loopline.evaluate computes (roc_auc, f1_score, …)", min_length=1
    )


class LatencyRule(_Strict):
    kind: Literal["latency"]
    p99_ms: Annotated[Number, Field(json_schema_extra=_between(0))]


class ValidationRule(_Strict):
    kind: Literal["validation"]
    suite: str = Field(description="a validation suite file", min_length=1)


class SignatureRule(_Strict):
    kind: Literal["signature"]


GateRule = Annotated[MetricRule | LatencyRule | ValidationRule | SignatureRule, Field(discriminator="kind")]


class GateIn(_Strict):
    rules: list[GateRule] = Field(description="all must pass")
    dataset: str = Field("", description="the held-out datasets:/ URI (empty: found through lineage)")
    target: str = "label"
    model_type: Literal["classifier", "regressor"] = "classifier"


class RolloutStepIn(_Strict):
    stage: Literal["shadow", "canary"]
    weight: Annotated[Number, Field(json_schema_extra=_between(0.0001, 100))]
    bake_s: Annotated[Number, Field(json_schema_extra=_between(0))] = 60.0


class HealthIn(_Strict):
    max_error_rate: Share = 0.01
    max_p99_ms: Annotated[Number, Field(json_schema_extra=_between(0))] | None = None
    min_agreement: Share | None = None
    max_accuracy_drop: Share | None = None
    min_requests: Annotated[
        int, Field(json_schema_extra=_between(0, 2**31 - 1)), BeforeValidator(whole_number)
    ] = 20


class PolicyIn(_Strict):
    name: Name
    model: Name
    deployment: Name
    pipeline: str = Field(
        description="path/to/file.py:function or package.module:function",
        json_schema_extra={"pattern": "^.+:.+$"},
    )
    gate: GateIn
    triggers: list[Trigger] = []
    params: dict[str, Any] = {}
    rollout: list[RolloutStepIn] = []
    health: HealthIn = HealthIn()
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    approval: bool = False
    webhooks: list[Annotated[str, Field(json_schema_extra={"pattern": "^https?://"})]] = []
    debounce_s: Annotated[Number, Field(json_schema_extra=_between(0))] = 60.0
    labels: dict[str, str] = {}
