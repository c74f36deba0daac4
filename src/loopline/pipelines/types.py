"""The records of pipeline runs, steps and schedules, and their JSON form (what the REST API carries).

Both stores (``sql_store``, ``rest_store``) take and return these; ``record_from_json`` is the one
place a record coming over HTTP is checked, field by field, so bad input is a 400 naming the field
and never reaches the database (where an over-long string would be a 500 on PostgreSQL).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

RUN_STATUSES = ("running", "succeeded", "failed")
STEP_STATUSES = ("pending", "running", "succeeded", "cached", "failed", "upstream_failed")


def pipeline_uri(name: str, run_id: str, node: str = "") -> str:
    return f"pipelines:/{name}/{run_id}/{node}" if node else f"pipelines:/{name}/{run_id}"


@dataclass(frozen=True)
class StepRecord:
    """One step of one run, as stored."""

    run_id: str
    pipeline: str
    node: str
    step: str
    status: str  # pending | running | succeeded | cached | failed | upstream_failed
    attempts: int = 0
    cache_key: str = ""
    fingerprint: str = ""
    inputs: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    cached_from: str = ""
    serializer: str = ""
    output_path: str = ""
    output_digest: str = ""
    output_size: int = 0
    output_inline: str | None = None
    output_meta: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    error: str = ""
    start_time: int | None = None
    end_time: int | None = None

    @property
    def duration_ms(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass(frozen=True)
class Finished:
    """A finished step and the lineage it implies (nodes it read, datasets, models it produced)."""

    step: StepRecord
    upstream: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    produced: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """One pipeline run, as stored."""

    run_id: str
    name: str
    target: str
    status: str  # running | succeeded | failed
    params: Mapping[str, Any]
    seed: int
    executor: str
    environment: Mapping[str, Any]
    graph: Mapping[str, Any]
    outputs: Any
    error: str
    rerun_of: str
    sweep_id: str
    schedule: str
    host: str
    pid: int
    start_time: int
    end_time: int | None

    @property
    def uri(self) -> str:
        return pipeline_uri(self.name, self.run_id)


@dataclass(frozen=True)
class ScheduleRecord:
    name: str
    target: str
    cron: str
    params: Mapping[str, Any]
    executor: str
    enabled: bool
    created_time: int


# ---- JSON ----------------------------------------------------------------------------------

# The columns' sizes (metadata/schema_pipelines.py): longer values are refused before the database.
_MAX_LEN = {
    "run_id": 32,
    "rerun_of": 32,
    "sweep_id": 32,
    "cached_from": 32,
    "name": 256,
    "pipeline": 256,
    "node": 256,
    "step": 256,
    "executor": 256,
    "schedule": 256,
    "host": 255,
    "status": 16,
    "cache_key": 64,
    "fingerprint": 64,
    "output_digest": 64,
    "serializer": 32,
    "target": 1024,
    "output_path": 1024,
    "cron": 128,
}
_INT_RANGE = (-(2**63), 2**63 - 1)
_INT32_FIELDS = {"pid", "attempts"}  # Integer columns: a larger value is a 500 on PostgreSQL
_INT32 = (-(2**31), 2**31 - 1)


def _is_int(v: object) -> bool:
    # JSON has one number type: 5.0 is the integer 5 (JavaScript and Python floats send it so).
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return isinstance(v, int) and not isinstance(v, bool) and _INT_RANGE[0] <= v <= _INT_RANGE[1]


def _is_str_map(v: object) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())


def _is_map(v: object) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) for k in v)


# The dataclasses' annotations (strings under ``from __future__ import annotations``) → checks.
_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "int": (_is_int, "an integer"),
    "int | None": (lambda v: v is None or _is_int(v), "an integer or null"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "Mapping[str, str]": (_is_str_map, "an object of strings"),
    "Mapping[str, Any]": (_is_map, "an object"),
    "Any": (lambda v: True, "JSON"),
}

R = TypeVar("R", bound="DataclassInstance")  # a dataclass type


def record_to_json(record: Any) -> dict[str, Any]:
    """A record (or ``Finished``) as JSON data; the inverse of ``record_from_json``."""
    return dataclasses.asdict(record)


def record_from_json(cls: type[R], data: object, where: str) -> R:
    """The ``cls`` record ``data`` describes, every field checked (400 naming ``where.field``)."""
    if not isinstance(data, dict):
        raise InvalidInput(f"Invalid value for '{where}': expected an object.")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = f"{where}.{f.name}"
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InvalidInput(f"Missing value for required parameter '{name}'.")
            continue
        value = data[f.name]
        check, expected = _CHECKS[str(f.type)]
        if not check(value):
            raise InvalidInput(f"Invalid value {value!r:.80} for parameter '{name}': expected {expected}.")
        if isinstance(value, str):
            check_text(value, name, _MAX_LEN.get(f.name))
        elif isinstance(value, float) and str(f.type) in ("int", "int | None"):
            value = int(value)  # integral: checked above
        if f.name in _INT32_FIELDS and isinstance(value, int) and not _INT32[0] <= value <= _INT32[1]:
            raise InvalidInput(f"Invalid value {value} for parameter '{name}': expected a 32-bit integer.")
        values[f.name] = value
    if unknown := set(data) - {f.name for f in dataclasses.fields(cls)}:
        raise InvalidInput(f"Unknown field(s) in '{where}': {', '.join(sorted(unknown))}.")
    return cls(**values)


def check_text(value: str, name: str, limit: int | None = None) -> str:
    """A string a column can hold: no NUL (PostgreSQL's text cannot), at most ``limit`` characters."""
    if "\x00" in value:
        raise InvalidInput(f"Invalid value for parameter '{name}': it contains a NUL character.")
    if limit is not None and len(value) > limit:
        raise InvalidInput(f"Invalid value for parameter '{name}': longer than {limit} characters.")
    return value


def check_status(status: object, allowed: tuple[str, ...], where: str) -> str:
    if status not in allowed:
        raise InvalidInput(
            f"Invalid value {status!r:.40} for '{where}'.", hint=f"Use one of {', '.join(allowed)}."
        )
    return str(status)


def check_run(run: RunRecord) -> RunRecord:
    check_status(run.status, RUN_STATUSES, "run.status")
    return run


def check_step(step: StepRecord, where: str = "step") -> StepRecord:
    check_status(step.status, STEP_STATUSES, f"{where}.status")
    return step


def finished_from_json(data: object, where: str) -> Finished:
    """A ``Finished`` from ``{"step": {…}, "upstream": [node], "datasets": [uri], "produced": [uri]}``."""
    if not isinstance(data, dict):
        raise InvalidInput(f"Invalid value for '{where}': expected an object.")
    step = check_step(record_from_json(StepRecord, data.get("step"), f"{where}.step"), f"{where}.step")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("upstream", "datasets", "produced"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"Invalid value for parameter '{where}.{key}': expected a list of strings.")
        lists[key] = tuple(value)
    return Finished(step, lists["upstream"], lists["datasets"], lists["produced"])


__all__ = [
    "RUN_STATUSES",
    "STEP_STATUSES",
    "Finished",
    "RunRecord",
    "ScheduleRecord",
    "StepRecord",
    "check_run",
    "check_status",
    "check_step",
    "check_text",
    "finished_from_json",
    "pipeline_uri",
    "record_from_json",
    "record_to_json",
]
