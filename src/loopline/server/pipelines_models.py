"""Request shapes of the pipelines routes (``pipelines_api.py``), for the OpenAPI document.

The routes check records by hand with ``record_from_json`` (a 400 names the wrong field); the record
models here are made from the same dataclasses and the same column limits, so the document says
exactly what that check takes: every field of the record, of its type, no other field.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from loopline.pipelines import types as pt
from loopline.server.mlflow_models import SAFE

Int = Annotated[int, Field(ge=-SAFE, le=SAFE)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
_TYPES: dict[str, Any] = {
    "int": Int,
    "int | None": Int | None,
    "bool": bool,
    "Mapping[str, str]": dict[str, str],
    "Mapping[str, Any]": dict[str, Any],
    "Any": Any,
}


def _record_model(cls: type, **narrowed: Any) -> type[BaseModel]:
    """A pydantic model of the record dataclass ``cls`` as ``record_from_json`` checks it."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        if f.name in narrowed:
            annotation = narrowed[f.name]
        elif kind in ("str", "str | None"):
            text = Annotated[str, Field(max_length=pt._MAX_LEN.get(f.name))]
            annotation = text if kind == "str" else text | None
        else:
            annotation = _TYPES[kind]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = ... if required else (f.default if f.default is not dataclasses.MISSING else None)
        fields[f.name] = (annotation, default)
    return create_model(f"{cls.__name__}In", __config__=ConfigDict(extra="forbid"), **fields)


RunRecordIn = _record_model(pt.RunRecord, status=Literal[pt.RUN_STATUSES], pid=Int32)
StepRecordIn = _record_model(pt.StepRecord, status=Literal[pt.STEP_STATUSES], attempts=Int32)
ScheduleRecordIn = _record_model(
    pt.ScheduleRecord,
    name=Annotated[str, Field(min_length=1, max_length=256)],
    cron=Annotated[str, Field(max_length=128, description="five cron fields, e.g. '0 3 * * *'")],
)
Node = Annotated[str, Field(max_length=256)]
Uri = Annotated[str, Field(max_length=2048)]


class CreateRun(BaseModel):
    run: RunRecordIn  # type: ignore[valid-type]  # made by create_model: mypy sees a value
    steps: list[Annotated[list[Node], Field(min_length=2, max_length=2)]] = Field(
        [], description="[node, step] pairs, each node once"
    )


class RestartRun(BaseModel):
    host: Annotated[str, Field(max_length=255)] = ""
    pid: Int32
    executor: Annotated[str, Field(min_length=1, max_length=256)]


class AddInputs(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    dataset_uris: list[Uri] = []


class FinishRun(BaseModel):
    status: Literal[pt.RUN_STATUSES[1:]]  # type: ignore[valid-type]  # a Literal of a tuple's values
    outputs: Any = None
    error: str = ""


class FinishedStep(BaseModel):
    step: StepRecordIn  # type: ignore[valid-type]  # made by create_model: mypy sees a value
    upstream: list[str] = []
    datasets: list[str] = []
    produced: list[str] = []


class Progress(BaseModel):
    finished: list[FinishedStep] = Field([], description="each step's run_id must be the run's")
    started: list[Node] = []
    start_time: Int | None = None


class KnownKeys(BaseModel):
    fingerprints: list[Annotated[str, Field(max_length=64)]] = []
    limit: Annotated[int, Field(ge=0, le=1_000_000)] = 100_000


class ListRuns(BaseModel):
    name: str | None = None
    status: str | None = None
    sweep_id: str | None = None
    max_results: Annotated[int, Field(ge=1, le=1000)] = 50
    include_packages: bool = False


class IncludePackages(BaseModel):
    include_packages: bool = False


class CachedStepQuery(BaseModel):
    cache_key: Annotated[str, Field(min_length=1, max_length=64)]


class LastStepsQuery(BaseModel):
    pipeline: Annotated[str, Field(min_length=1, max_length=256)]
    before_run: Annotated[str, Field(max_length=32)] = ""


class ListSchedules(BaseModel):
    enabled_only: bool = False


class AddSchedule(BaseModel):
    schedule: ScheduleRecordIn  # type: ignore[valid-type]  # made by create_model: mypy sees a value


class ScheduleName(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=256)]


class EnableSchedule(ScheduleName):
    enabled: bool


class ClaimSlot(ScheduleName):
    slot_ms: Int
    claimed_by: Annotated[str, Field(min_length=1, max_length=255)]


class SlotResult(ScheduleName):
    slot_ms: Int
    run_id: Annotated[str, Field(max_length=32)] = ""
    error: str = ""


class CreateSweep(BaseModel):
    sweep_id: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=256)]
    target: Annotated[str, Field(min_length=1, max_length=1024)]
    method: Annotated[str, Field(min_length=1, max_length=16)]
    metric: Annotated[str, Field(min_length=1, max_length=256)]
    direction: Annotated[str, Field(min_length=1, max_length=8)]
    space: Any = None


class FinishSweep(BaseModel):
    status: Annotated[str, Field(min_length=1, max_length=16)]
    best_run_id: Annotated[str, Field(max_length=32)] = ""
    best_value: float | None = None
