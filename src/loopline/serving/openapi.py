"""The OpenAPI document of ``loopline serve`` (``/openapi.json``, shown at ``/docs``).

The inference server is bare ASGI (see :mod:`loopline.serving.http`), so its routes are described
here by hand, with the served model's input columns or tensors from its signature; the test of the
page checks that every route of the app is in it.
"""

from __future__ import annotations

from typing import Any

from loopline._version import __version__

_JSON = "application/json"


def _error() -> dict[str, Any]:
    return {
        "description": "refused: the message says what was wrong and how to fix it",
        "content": {
            _JSON: {
                "schema": {
                    "type": "object",
                    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
                }
            }
        },
    }


def _answer(description: str, media: str = _JSON, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or {"type": "object"}}}}


def _get(summary: str, media: str = _JSON, *, tag: str = "health") -> dict[str, Any]:
    ok = _answer(summary, media, {"type": "string"} if media != _JSON else None)
    return {"get": {"summary": summary, "tags": [tag], "responses": {"200": ok, "503": _error()}}}


def document(model_inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The document; ``model_inputs``: OIP input metadata of the served model, when it is loaded."""
    columns = [i["name"] for i in model_inputs or [] if i.get("shape") == [-1]]
    refused = {"400": _error(), "413": _error(), "415": _error(), "429": _error(), "503": _error()}
    scoring: dict[str, Any] = {
        "oneOf": [
            {"type": "object", "required": ["dataframe_split"], "properties": {"dataframe_split": {
                "type": "object", "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                                                 "data": {"type": "array", "items": {"type": "array"}}}}}},
            {"type": "object", "required": ["dataframe_records"],
             "properties": {"dataframe_records": {"type": "array", "items": {"type": "object"}}}},
            {"type": "object", "required": ["inputs"], "properties": {"inputs": {}}},
            {"type": "object", "required": ["instances"], "properties": {"instances": {"type": "array"}}},
        ]
    }  # fmt: skip
    if columns:
        scoring["example"] = {"dataframe_records": [dict.fromkeys(columns, 0)]}
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string", "example": "FP64"},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    infer_body: dict[str, Any] = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor},
            "outputs": {"type": "array", "items": {"type": "object"}},
            "parameters": {"type": "object"},
        },
    }
    if model_inputs:
        infer_body["description"] = "This model's inputs: " + ", ".join(
            f"{i['name']} ({i['datatype']}, shape {i['shape']})" for i in model_inputs
        )
    infer = {
        "post": {
            "summary": "Open Inference Protocol inference (JSON, or the binary tensor extension)",
            "tags": ["Open Inference Protocol"],
            "requestBody": {"content": {_JSON: {"schema": infer_body}}},
            "responses": {"200": _answer("the output tensors"), **refused},
        }
    }
    model = {"parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]}
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    oip = "Open Inference Protocol"
    both = [*model["parameters"], version]
    predictions = {"type": "object", "properties": {"predictions": {}}}
    paths: dict[str, Any] = {
        "/invocations": {
            "post": {
                "summary": "MLflow scoring: dataframe_split, dataframe_records, inputs or instances; "
                "CSV; Parquet. Content-Encoding gzip or deflate is decoded.",
                "tags": ["MLflow scoring"],
                "requestBody": {
                    "content": {
                        _JSON: {"schema": scoring},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                    }
                },
                "responses": {
                    "200": _answer("predictions", schema=predictions),
                    **refused,
                },
            }
        },
        "/ping": _get("200 once every model is loaded"),
        "/health": _get("200 once every model is loaded"),
        "/version": _get("the server's version", "text/plain"),
        "/v2/health/live": _get("liveness", tag=oip),
        "/v2/health/ready": _get("readiness", tag=oip),
        "/v2": _get("server metadata", tag=oip),
        "/v2/models/{name}": {**_get("model metadata: inputs, outputs, versions", tag=oip), **model},
        "/v2/models/{name}/ready": {**_get("model readiness", tag=oip), **model},
        "/v2/models/{name}/infer": {**infer, **model},
        "/v2/models/{name}/versions/{version}": {
            **_get("metadata of one version", tag=oip),
            "parameters": both,
        },
        "/v2/models/{name}/versions/{version}/ready": {
            **_get("readiness of one version", tag=oip),
            "parameters": both,
        },
        "/v2/models/{name}/versions/{version}/infer": {
            **infer,
            "parameters": both,
        },
        "/metrics": _get("Prometheus metrics", "text/plain", tag="operations"),
        "/api/2.0/loopline/feedback": {
            "post": {
                "summary": 'ground truth for earlier predictions: {"request_id", "ground_truth"} or a list',
                "tags": ["operations"],
                "requestBody": {"content": {_JSON: {"schema": {"type": "object"}}}},
                "responses": {"200": _answer("how many were accepted"), "400": _error()},
            }
        },
        "/api/2.0/loopline/deployment": _get("what is served now, with weights", tag="operations"),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "loopline serve",
            "version": __version__,
            "description": "The inference server: MLflow's scoring protocol and the Open Inference Protocol.",
        },
        "paths": paths,
    }
