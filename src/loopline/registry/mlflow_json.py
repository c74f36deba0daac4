"""Registry entities to and from the JSON of MLflow's model-registry and logged-model APIs.

Shapes follow MLflow's protobuf JSON (``model_registry.proto``, ``service.proto``): a model
version's ``version`` is a string, timestamps are numbers, enums are their names, and empty
repeated fields are left out.

One extension: ``loopline_digests``, an object ``{file path: BLAKE3 hex}`` on a model version
(and accepted by ``model-versions/create``). Loopline's loader checks every downloaded file
against it. MLflow's clients ignore unknown fields, so it costs them nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.types import (
    LoggedModel,
    LoggedModelStatus,
    ModelMetric,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from loopline.tracking.mlflow_json import decode_kv_list, decode_str, metric_from_json, metric_to_json
from loopline.tracking.types import Metric

JSON = dict[str, Any]
DIGESTS_FIELD = "loopline_digests"

# protobuf's JSON mapping accepts an enum's number as well as its name (service.proto numbering).
_LOGGED_MODEL_STATUS_NUMBERS = {
    1: LoggedModelStatus.PENDING,
    2: LoggedModelStatus.READY,
    3: LoggedModelStatus.FAILED,
}
_LOGGED_MODEL_STATUS_NAMES = {s.value: s for s in LoggedModelStatus}


def _kv(items: Mapping[str, str]) -> list[JSON]:
    return [{"key": k, "value": v} for k, v in items.items()]


# ---- encoders ------------------------------------------------------------------------------


def model_version_to_json(mv: ModelVersion) -> JSON:
    out: JSON = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "user_id": mv.user_id,
        "current_stage": mv.current_stage,
        "description": mv.description,
        "source": mv.source,
        "run_id": mv.run_id,
        "status": mv.status.value,
        "run_link": mv.run_link,
    }
    if mv.status_message:
        out["status_message"] = mv.status_message
    if mv.tags:
        out["tags"] = _kv(mv.tags)
    if mv.aliases:
        out["aliases"] = list(mv.aliases)
    if mv.model_id:
        out["model_id"] = mv.model_id
    if mv.digests:
        out[DIGESTS_FIELD] = dict(mv.digests)
    return out


def registered_model_to_json(rm: RegisteredModel) -> JSON:
    out: JSON = {
        "name": rm.name,
        "creation_timestamp": rm.creation_timestamp,
        "last_updated_timestamp": rm.last_updated_timestamp,
    }
    if rm.description:
        out["description"] = rm.description
    if rm.latest_versions:
        out["latest_versions"] = [model_version_to_json(v) for v in rm.latest_versions]
    if rm.tags:
        out["tags"] = _kv(rm.tags)
    if rm.aliases:
        out["aliases"] = [{"alias": a, "version": str(v)} for a, v in rm.aliases.items()]
    return out


def logged_model_to_json(lm: LoggedModel) -> JSON:
    info: JSON = {
        "model_id": lm.model_id,
        "experiment_id": lm.experiment_id,
        "name": lm.name,
        "creation_timestamp_ms": lm.creation_timestamp,
        "last_updated_timestamp_ms": lm.last_updated_timestamp,
        "artifact_uri": lm.artifact_location,
        "status": lm.status.value,
        "model_type": lm.model_type,
        "source_run_id": lm.source_run_id,
        "status_message": lm.status_message,
    }
    if lm.tags:
        info["tags"] = _kv(lm.tags)
    data: JSON = {}
    if lm.params:
        data["params"] = _kv(lm.params)
    if lm.metrics:
        data["metrics"] = [_model_metric_to_json(m, lm.model_id) for m in lm.metrics]
    return {"info": info, "data": data}


def _model_metric_to_json(m: Metric, model_id: str) -> JSON:
    out = {**metric_to_json(m), "model_id": model_id}
    if isinstance(m, ModelMetric):  # MLflow leaves empty fields out
        extra = {"run_id": m.run_id, "dataset_name": m.dataset_name, "dataset_digest": m.dataset_digest}
        out.update({k: v for k, v in extra.items() if v})
    return out


# ---- request decoders (validate, naming the field) -----------------------------------------


def decode_digests(value: object, field: str = DIGESTS_FIELD) -> dict[str, str]:
    """``{path: hex digest}``; None or absent is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"Invalid value for parameter '{field}': expected an object of path -> digest.")
    out = {}
    for path, digest in value.items():
        d = decode_str(digest, f"{field}.{path}")
        if not d or len(d) > 128 or not all(c in "0123456789abcdef" for c in d):
            raise InvalidInput(f"Invalid digest {d!r:.80} for '{path}' in '{field}': expected lowercase hex.")
        out[decode_str(path, field)] = d
    return out


def decode_logged_model_status(value: object, field: str = "status") -> LoggedModelStatus:
    """A ``LoggedModelStatus`` by name (``LOGGED_MODEL_READY``) or number (2), as protobuf allows."""
    if isinstance(value, int) and not isinstance(value, bool) and value in _LOGGED_MODEL_STATUS_NUMBERS:
        return _LOGGED_MODEL_STATUS_NUMBERS[value]
    if isinstance(value, str):
        if value in _LOGGED_MODEL_STATUS_NAMES:
            return _LOGGED_MODEL_STATUS_NAMES[value]
        if value.isdigit() and int(value) in _LOGGED_MODEL_STATUS_NUMBERS:
            return _LOGGED_MODEL_STATUS_NUMBERS[int(value)]
    if value is None:
        raise InvalidInput(f"Missing value for required parameter '{field}'.")
    names = ", ".join(_LOGGED_MODEL_STATUS_NAMES)
    raise InvalidInput(f"Invalid value {value!r:.100} for parameter '{field}'.", hint=f"Use one of {names}.")


# ---- response decoders (what a server sent back) ------------------------------------------


def _int(value: object, default: int = 0) -> int:
    return default if value is None or value == "" else int(str(value))


def model_version_from_json(d: JSON) -> ModelVersion:
    return ModelVersion(
        name=d["name"],
        version=int(d["version"]),
        creation_timestamp=_int(d.get("creation_timestamp")),
        last_updated_timestamp=_int(d.get("last_updated_timestamp")),
        source=d.get("source", ""),
        run_id=d.get("run_id", ""),
        model_id=d.get("model_id", ""),
        user_id=d.get("user_id", ""),
        description=d.get("description", ""),
        current_stage=d.get("current_stage", "None"),
        status=ModelVersionStatus(d.get("status", ModelVersionStatus.READY.value)),
        status_message=d.get("status_message", ""),
        run_link=d.get("run_link", ""),
        tags=dict(decode_kv_list(d.get("tags"), "tags")),
        aliases=tuple(d.get("aliases") or ()),
        digests=decode_digests(d.get(DIGESTS_FIELD)),
    )


def registered_model_from_json(d: JSON) -> RegisteredModel:
    return RegisteredModel(
        name=d["name"],
        creation_timestamp=_int(d.get("creation_timestamp")),
        last_updated_timestamp=_int(d.get("last_updated_timestamp")),
        description=d.get("description", ""),
        tags=dict(decode_kv_list(d.get("tags"), "tags")),
        aliases={a["alias"]: int(a["version"]) for a in d.get("aliases") or ()},
        latest_versions=tuple(model_version_from_json(v) for v in d.get("latest_versions") or ()),
    )


def logged_model_from_json(d: JSON) -> LoggedModel:
    info, data = d.get("info") or {}, d.get("data") or {}
    status = info.get("status")
    return LoggedModel(
        model_id=info["model_id"],
        experiment_id=str(info.get("experiment_id", "")),
        name=info.get("name", ""),
        artifact_location=info.get("artifact_uri", ""),
        creation_timestamp=_int(info.get("creation_timestamp_ms")),
        last_updated_timestamp=_int(info.get("last_updated_timestamp_ms")),
        status=decode_logged_model_status(status) if status else LoggedModelStatus.PENDING,
        status_message=info.get("status_message", ""),
        model_type=info.get("model_type", ""),
        source_run_id=info.get("source_run_id", ""),
        tags=dict(decode_kv_list(info.get("tags"), "tags")),
        params=dict(decode_kv_list(data.get("params"), "params")),
        metrics=tuple(_metric(m) for m in data.get("metrics") or ()),
    )


def _metric(m: object) -> Metric:
    return metric_from_json(m, "metrics")
