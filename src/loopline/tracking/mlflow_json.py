"""Entities to and from the JSON shapes of MLflow's REST API (protobuf JSON, snake_case).

int64 fields are JSON numbers (as MLflow's server writes them); non-finite doubles are the
strings "NaN", "Infinity" and "-Infinity" (as protobuf's JSON mapping writes them).
Decoders validate types and raise ``InvalidInput`` naming the field, so a malformed request
becomes a 400 with MLflow's ``INVALID_PARAMETER_VALUE``, never a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from loopline.errors import InvalidInput
from loopline.tracking.types import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
)

JSON = dict[str, Any]
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# int64 fields (timestamps, steps): larger values would overflow the database's BIGINT.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# orjson reads an integer beyond int64/uint64 (-2**63-1, 2**64) as a float, rounded onto a value that
# may fit (-2**63): a float is an int64 only where doubles are exact integers.
_EXACT = 2**53


def invalid_value(field: str, value: object, expected: str) -> InvalidInput:
    """A wrong-typed argument, worded as MLflow's server words it (its clients and tests match on
    the text: ``Invalid value <JSON> for parameter '<field>' supplied``), then what was expected."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    shown = shown if len(shown) <= 100 else shown[:100] + "…"
    return InvalidInput(f"Invalid value {shown} for parameter '{field}' supplied: expected {expected}.")


def missing_value(field: str) -> InvalidInput:
    return InvalidInput(f"Missing value for required parameter '{field}'.")


def encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def decode_float(value: object, field: str) -> float:
    if value is None:
        raise missing_value(field)
    if isinstance(value, bool):
        raise invalid_value(field, value, "a number")
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except (ValueError, OverflowError):  # "abc"; an int too large for a double
            pass
    raise invalid_value(field, value, "a number")


def decode_int(value: object, field: str, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    n: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and value.removeprefix("-").isascii() and value.removeprefix("-").isdigit():
        n = int(value)  # protobuf's JSON mapping writes int64 as a string
    elif isinstance(value, float) and value.is_integer() and -_EXACT <= value <= _EXACT:
        n = int(value)
    if value is None:
        raise missing_value(field)
    if n is None or not INT64_MIN <= n <= INT64_MAX:
        raise invalid_value(field, value, "a 64-bit integer")
    return n


def decode_str(value: object, field: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        if value is None:
            raise missing_value(field)
        raise invalid_value(field, value, "a string")
    if "\x00" in value:  # PostgreSQL's text cannot hold NUL: refuse it on every backend alike
        raise InvalidInput(f"Invalid value for parameter '{field}': it contains a NUL character.")
    return value


def _kv(items: Mapping[str, str]) -> list[JSON]:
    return [{"key": k, "value": v} for k, v in items.items()]


def decode_kv_list(value: object, field: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_value(field, value, "a list")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise InvalidInput(f"Invalid entry {item!r} in '{field}': expected an object.")
        out.append(
            (decode_str(item.get("key"), f"{field}.key"), decode_str(item.get("value", ""), f"{field}.value"))
        )
    return out


# ---- encoders ------------------------------------------------------------------------------


def experiment_to_json(e: Experiment) -> JSON:
    out: JSON = {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage.value,
    }
    if e.creation_time is not None:
        out["creation_time"] = e.creation_time
    if e.last_update_time is not None:
        out["last_update_time"] = e.last_update_time
    if e.tags:
        out["tags"] = _kv(e.tags)
    return out


def metric_to_json(m: Metric) -> JSON:
    return {"key": m.key, "value": encode_float(m.value), "timestamp": m.timestamp, "step": m.step}


def run_info_to_json(i: RunInfo) -> JSON:
    out: JSON = {
        "run_id": i.run_id,
        "run_uuid": i.run_id,
        "run_name": i.run_name,
        "experiment_id": i.experiment_id,
        "user_id": i.user_id,
        "status": i.status.value,
        "artifact_uri": i.artifact_uri,
        "lifecycle_stage": i.lifecycle_stage.value,
    }
    if i.start_time is not None:
        out["start_time"] = i.start_time
    if i.end_time is not None:
        out["end_time"] = i.end_time
    return out


def run_to_json(r: Run) -> JSON:
    data: JSON = {}
    if r.data.latest_metrics:
        data["metrics"] = [metric_to_json(m) for m in r.data.latest_metrics]
    if r.data.params:
        data["params"] = _kv(r.data.params)
    if r.data.tags:
        data["tags"] = _kv(r.data.tags)
    out: JSON = {"info": run_info_to_json(r.info), "data": data}
    inputs: JSON = {"dataset_inputs": [dataset_input_to_json(d) for d in r.inputs]} if r.inputs else {}
    if r.model_inputs:
        inputs["model_inputs"] = [{"model_id": m} for m in r.model_inputs]
    out["inputs"] = inputs
    if r.model_outputs:
        out["outputs"] = {"model_outputs": [{"model_id": m, "step": s} for m, s in r.model_outputs]}
    return out


def dataset_input_to_json(d: DatasetInput) -> JSON:
    ds = d.dataset
    dataset = {"name": ds.name, "digest": ds.digest, "source_type": ds.source_type, "source": ds.source}
    if ds.schema:
        dataset["schema"] = ds.schema
    if ds.profile:
        dataset["profile"] = ds.profile
    out: JSON = {"dataset": dataset}
    if d.tags:
        out["tags"] = _kv(d.tags)
    return out


# ---- decoders ------------------------------------------------------------------------------


_I64 = 2**63


def metric_from_json(d: object, field: str = "metrics", index: int | None = None) -> Metric:
    if type(d) is dict:  # the ingest hot path: well-formed points skip the general decoders
        key, value, ts, step = d.get("key"), d.get("value"), d.get("timestamp"), d.get("step", 0)
        if (
            type(key) is str
            and type(value) is float
            and type(ts) is int
            and type(step) is int
            and -_I64 <= ts < _I64
            and -_I64 <= step < _I64
            and "\x00" not in key
        ):
            return Metric(key, value, ts, step)
    if index is not None:  # MLflow names the entry: metrics[3].timestamp
        field = f"{field}[{index}]"
    if not isinstance(d, dict):
        raise invalid_value(field, d, "an object")
    return Metric(
        key=decode_str(d.get("key"), f"{field}.key"),
        value=decode_float(d.get("value"), f"{field}.value"),
        timestamp=decode_int(d.get("timestamp"), f"{field}.timestamp"),
        step=decode_int(d.get("step"), f"{field}.step", default=0),
    )


def metrics_from_json(raw: list[Any], field: str = "metrics") -> list[Metric]:
    return [metric_from_json(m, field, i) for i, m in enumerate(raw)]


def params_from_json(value: object, field: str = "params") -> list[Param]:
    return [Param(k, v) for k, v in decode_kv_list(value, field)]


def tags_from_json(value: object, field: str = "tags") -> list[RunTag]:
    return [RunTag(k, v) for k, v in decode_kv_list(value, field)]


def model_inputs_from_json(value: object) -> list[str]:
    """The model IDs of log-inputs' ``models`` ([{"model_id": …}])."""
    out = []
    for i, m in enumerate(value if isinstance(value, list) else [] if value is None else [value]):
        if not isinstance(m, dict):
            raise invalid_value(f"models[{i}]", m, "an object {'model_id': …}")
        out.append(decode_str(m.get("model_id"), f"models[{i}].model_id"))
    return out


def dataset_input_from_json(d: object) -> DatasetInput:
    if not isinstance(d, dict) or not isinstance(d.get("dataset"), dict):
        raise InvalidInput("Invalid dataset input: expected {'dataset': {...}, 'tags': [...]}.")
    ds = d["dataset"]
    dataset = Dataset(
        name=decode_str(ds.get("name"), "dataset.name"),
        digest=decode_str(ds.get("digest"), "dataset.digest"),
        source_type=decode_str(ds.get("source_type"), "dataset.source_type", required=False),
        source=decode_str(ds.get("source"), "dataset.source", required=False),
        schema=decode_str(ds.get("schema"), "dataset.schema", required=False),
        profile=decode_str(ds.get("profile"), "dataset.profile", required=False),
    )
    return DatasetInput(dataset, dict(decode_kv_list(d.get("tags"), "tags")))


def experiment_from_json(d: JSON) -> Experiment:
    return Experiment(
        experiment_id=str(d["experiment_id"]),
        name=d["name"],
        artifact_location=d.get("artifact_location", ""),
        lifecycle_stage=LifecycleStage(d.get("lifecycle_stage", "active")),
        tags=dict(decode_kv_list(d.get("tags"), "tags")),
        creation_time=d.get("creation_time"),
        last_update_time=d.get("last_update_time"),
    )


def run_info_from_json(i: JSON) -> RunInfo:
    return RunInfo(
        run_id=i.get("run_id") or i["run_uuid"],
        experiment_id=str(i["experiment_id"]),
        run_name=i.get("run_name", ""),
        user_id=i.get("user_id", ""),
        status=RunStatus(i.get("status", "RUNNING")),
        start_time=int(i["start_time"]) if i.get("start_time") is not None else None,
        end_time=int(i["end_time"]) if i.get("end_time") is not None else None,
        artifact_uri=i.get("artifact_uri", ""),
        lifecycle_stage=LifecycleStage(i.get("lifecycle_stage", "active")),
    )


def _kv_fast(items: object, field: str) -> dict[str, str]:
    """A list of {"key", "value"} as a dict; well-formed lists skip the per-item checks."""
    try:
        out = {i["key"]: i["value"] for i in items} if isinstance(items, list) else None
    except (KeyError, TypeError):
        out = None
    if out is not None and all(type(k) is str and type(v) is str for k, v in out.items()):
        return out
    return dict(decode_kv_list(items, field))


def run_from_json(d: JSON) -> Run:
    data = d.get("data") or {}
    inputs = (d.get("inputs") or {}).get("dataset_inputs") or []
    model_inputs = (d.get("inputs") or {}).get("model_inputs") or []
    model_outputs = (d.get("outputs") or {}).get("model_outputs") or []
    return Run(
        run_info_from_json(d["info"]),
        RunData(
            params=_kv_fast(data.get("params") or [], "params"),
            tags=_kv_fast(data.get("tags") or [], "tags"),
            latest_metrics=tuple(metric_from_json(m) for m in data.get("metrics") or []),
        ),
        tuple(dataset_input_from_json(x) for x in inputs),
        tuple(str(m["model_id"]) for m in model_inputs),
        tuple((str(m["model_id"]), int(m.get("step") or 0)) for m in model_outputs),
    )
