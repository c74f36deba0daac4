"""MLflow's tracking REST API: ``/api/2.0/mlflow/experiments/*``, ``runs/*``, ``metrics/*``.

Shapes and error codes follow MLflow's server so an unmodified ``mlflow`` client works.
Each route also answers under ``/ajax-api/2.0/mlflow`` (the prefix MLflow's UI uses).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.errors import InvalidInput
from loopline.server import mlflow_models as m
from loopline.server.artifact_roots import confine
from loopline.server.http import (
    blocking,
    experiment_id,
    json_response,
    list_arg,
    max_results,
    mlflow_route,
    optional_int,
    optional_str,
    params,
    required_str,
    str_list,
    view_type,
)
from loopline.server.openapi_models import DocumentedRoute, Empty, documented
from loopline.server.state import registry, state, tracking
from loopline.tracking import mlflow_json as mj
from loopline.tracking.types import Metric, Param, RunStatus, RunTag

router = APIRouter(route_class=DocumentedRoute)
route = mlflow_route(router)


# protobuf's JSON mapping accepts an enum's number as well as its name.
_STATUSES = {**{s.value: s for s in RunStatus}, **{str(i): s for i, s in enumerate(RunStatus, 1)}}


# ---- experiments ---------------------------------------------------------------------------


@route("POST", "/experiments/create")
@documented(m.CreateExperiment, answer=m.ExperimentIdAnswer, errors=())
async def create_experiment(request: Request) -> Response:
    body = await params(request)
    name = required_str(body, "name")
    tags = dict(mj.decode_kv_list(body.get("tags"), "tags"))
    artifact_location = optional_str(body, "artifact_location")
    if artifact_location is not None and len(artifact_location) > 1024:  # the column's size
        raise InvalidInput("Invalid value for parameter 'artifact_location': longer than 1024 characters.")
    confine(artifact_location, state(request).settings)  # under the configured roots, if any
    exp_id = await blocking(tracking(request).create_experiment, name, artifact_location, tags)
    return json_response({"experiment_id": exp_id})


@route("GET", "/experiments/get")
@documented(m.GetExperiment, answer=m.ExperimentAnswer)
async def get_experiment(request: Request) -> Response:
    body = await params(request)
    exp = await blocking(tracking(request).get_experiment, required_str(body, "experiment_id"))
    return json_response({"experiment": mj.experiment_to_json(exp)})


@route("GET", "/experiments/get-by-name")
@documented(m.GetExperimentByName, answer=m.ExperimentAnswer)
async def get_experiment_by_name(request: Request) -> Response:
    from loopline.errors import NotFound

    body = await params(request)
    name = required_str(body, "experiment_name")
    exp = await blocking(tracking(request).get_experiment_by_name, name)
    if exp is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": mj.experiment_to_json(exp)})


@route("POST", "/experiments/search")
@route("GET", "/experiments/search")
@documented(m.SearchExperiments, answer=m.ExperimentsPage, errors=())
async def search_experiments(request: Request) -> Response:
    body = await params(request)
    page = await blocking(
        tracking(request).search_experiments,
        view_type(body, "view_type"),
        max_results(body, 1000, 50_000),
        optional_str(body, "filter"),
        str_list(body.get("order_by"), "order_by"),
        optional_str(body, "page_token"),
    )
    out: dict[str, Any] = {"experiments": [mj.experiment_to_json(e) for e in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return json_response(out)


@route("POST", "/experiments/delete")
@documented(m.DeleteExperiment, answer=Empty)
async def delete_experiment(request: Request) -> Response:
    body = await params(request)
    await blocking(tracking(request).delete_experiment, required_str(body, "experiment_id"))
    return json_response({})


@route("POST", "/experiments/restore")
@documented(m.ExperimentRef, answer=Empty)
async def restore_experiment(request: Request) -> Response:
    body = await params(request)
    await blocking(tracking(request).restore_experiment, required_str(body, "experiment_id"))
    return json_response({})


@route("POST", "/experiments/update")
@documented(m.UpdateExperiment, answer=Empty)
async def update_experiment(request: Request) -> Response:
    body = await params(request)
    await blocking(
        tracking(request).rename_experiment,
        required_str(body, "experiment_id"),
        required_str(body, "new_name"),
    )
    return json_response({})


@route("POST", "/experiments/set-experiment-tag")
@documented(m.SetExperimentTag, answer=Empty)
async def set_experiment_tag(request: Request) -> Response:
    body = await params(request)
    await blocking(
        tracking(request).set_experiment_tag,
        required_str(body, "experiment_id"),
        required_str(body, "key"),
        mj.decode_str(body.get("value", ""), "value"),
    )
    return json_response({})


@route("POST", "/experiments/delete-experiment-tag")
@documented(m.DeleteExperimentTag, answer=Empty)
async def delete_experiment_tag(request: Request) -> Response:
    body = await params(request)
    await blocking(
        tracking(request).delete_experiment_tag,
        required_str(body, "experiment_id"),
        required_str(body, "key"),
    )
    return json_response({})


# ---- runs ----------------------------------------------------------------------------------


@route("POST", "/runs/create")
@documented(m.CreateRun, answer=m.RunAnswer)
async def create_run(request: Request) -> Response:
    body = await params(request)
    run = await blocking(
        tracking(request).create_run,
        experiment_id(body.get("experiment_id"), default="0"),
        optional_str(body, "user_id"),
        optional_int(body, "start_time"),
        mj.tags_from_json(body.get("tags")),
        optional_str(body, "run_name"),
    )
    return json_response({"run": mj.run_to_json(run)})


@route("GET", "/runs/get")
@documented(m.GetRun, answer=m.RunAnswer)
async def get_run(request: Request) -> Response:
    body = await params(request)
    run = await blocking(tracking(request).get_run, required_str(body, "run_id", "run_uuid"))
    return json_response({"run": mj.run_to_json(run)})


@route("POST", "/runs/update")
@documented(m.UpdateRun, answer=m.RunInfoAnswer)
async def update_run(request: Request) -> Response:
    body = await params(request)
    status = body.get("status")
    if status is not None and (isinstance(status, bool) or str(status) not in _STATUSES):
        raise InvalidInput(
            f"Invalid value {status!r:.100} for parameter 'status'.",
            hint=f"Use one of {', '.join(RunStatus.__members__)}.",
        )
    info = await blocking(
        tracking(request).update_run_info,
        required_str(body, "run_id", "run_uuid"),
        _STATUSES[str(status)] if status is not None else None,
        optional_int(body, "end_time"),
        optional_str(body, "run_name"),
    )
    return json_response({"run_info": mj.run_info_to_json(info)})


@route("POST", "/runs/delete")
@documented(m.RunRef, answer=Empty)
async def delete_run(request: Request) -> Response:
    body = await params(request)
    await blocking(tracking(request).delete_run, required_str(body, "run_id"))
    return json_response({})


@route("POST", "/runs/restore")
@documented(m.RunRef, answer=Empty)
async def restore_run(request: Request) -> Response:
    body = await params(request)
    await blocking(tracking(request).restore_run, required_str(body, "run_id"))
    return json_response({})


@route("POST", "/runs/log-metric")
@documented(m.LogMetric, answer=Empty)
async def log_metric(request: Request) -> Response:
    body = await params(request)
    run_id = required_str(body, "run_id", "run_uuid")
    metric = Metric(
        key=required_str(body, "key"),
        value=mj.decode_float(body.get("value"), "value"),
        timestamp=mj.decode_int(body.get("timestamp"), "timestamp"),
        step=mj.decode_int(body.get("step"), "step", default=0),
    )
    await blocking(tracking(request).log_batch, run_id, [metric])
    if model_id := optional_str(body, "model_id"):  # MLflow 3: a point of a logged model's metric too
        await blocking(
            registry(request).log_logged_model_metrics, model_id, [metric], run_id, _dataset_of(body)
        )
    return json_response({})


def _dataset_of(item: dict[str, Any]) -> tuple[str, str]:
    """The (name, digest) of the dataset a logged model's metric was measured on ("" when none)."""
    return (
        mj.decode_str(item.get("dataset_name"), "dataset_name", required=False),
        mj.decode_str(item.get("dataset_digest"), "dataset_digest", required=False),
    )


@route("POST", "/runs/log-parameter")
@documented(m.LogParam, answer=Empty)
async def log_param(request: Request) -> Response:
    body = await params(request)
    run_id = required_str(body, "run_id", "run_uuid")
    param = Param(required_str(body, "key"), mj.decode_str(body.get("value"), "value"))
    await blocking(tracking(request).log_batch, run_id, (), [param])
    return json_response({})


@route("POST", "/runs/set-tag")
@documented(m.SetTag, answer=Empty)
async def set_tag(request: Request) -> Response:
    body = await params(request)
    run_id = required_str(body, "run_id", "run_uuid")
    tag = RunTag(required_str(body, "key"), mj.decode_str(body.get("value"), "value"))
    await blocking(tracking(request).log_batch, run_id, (), (), [tag])
    return json_response({})


@route("POST", "/runs/delete-tag")
@documented(m.DeleteTag, answer=Empty)
async def delete_tag(request: Request) -> Response:
    body = await params(request)
    await blocking(tracking(request).delete_tag, required_str(body, "run_id"), required_str(body, "key"))
    return json_response({})


@route("POST", "/runs/log-batch")
@documented(m.LogBatch, answer=Empty)
async def log_batch(request: Request) -> Response:
    body = await params(request)
    run_id = required_str(body, "run_id")
    raw = list_arg(body, "metrics")
    metrics = mj.metrics_from_json(raw)
    await blocking(
        tracking(request).log_batch,
        run_id,
        metrics,
        mj.params_from_json(body.get("params")),
        mj.tags_from_json(body.get("tags")),
    )
    # MLflow 3's log_model re-logs the run's metrics tagged with the logged model they describe.
    by_model: dict[tuple[str, tuple[str, str]], list[Metric]] = {}
    for item, metric in zip(raw, metrics, strict=True):
        model_id = item.get("model_id") if isinstance(item, dict) else None
        if isinstance(model_id, str) and model_id:
            by_model.setdefault((model_id, _dataset_of(item)), []).append(metric)
    for (model_id, dataset), model_metrics in by_model.items():
        await blocking(registry(request).log_logged_model_metrics, model_id, model_metrics, run_id, dataset)
    return json_response({})


@route("POST", "/runs/log-inputs")
@documented(m.LogInputs, answer=Empty)
async def log_inputs(request: Request) -> Response:
    body = await params(request)
    await blocking(
        tracking(request).log_inputs,
        required_str(body, "run_id"),
        [mj.dataset_input_from_json(d) for d in list_arg(body, "datasets")],
        mj.model_inputs_from_json(list_arg(body, "models")),
    )
    return json_response({})


@route("POST", "/runs/search")
@documented(m.SearchRuns, answer=m.RunsPage, errors=())
async def search_runs(request: Request) -> Response:
    body = await params(request)
    page = await blocking(
        tracking(request).search_runs,
        str_list(body.get("experiment_ids"), "experiment_ids"),
        optional_str(body, "filter"),
        view_type(body, "run_view_type"),
        max_results(body, 1000, 50_000),
        str_list(body.get("order_by"), "order_by"),
        optional_str(body, "page_token"),
    )
    out: dict[str, Any] = {"runs": [mj.run_to_json(r) for r in page.items]}
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return json_response(out)


@route("GET", "/metrics/get-history")
@documented(m.GetMetricHistory, answer=m.MetricsPage)
async def get_metric_history(request: Request) -> Response:
    body = await params(request)
    max_results = optional_int(body, "max_results")
    if max_results is not None and max_results < 1:
        raise InvalidInput(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            "It must be a positive integer."
        )
    key = required_str(body, "metric_key")
    rows, token = await blocking(
        tracking(request).metric_history_rows,
        required_str(body, "run_id", "run_uuid"),
        key,
        max_results,
        optional_str(body, "page_token"),
    )
    # Straight from the rows to metric_to_json's shape: a Metric per point cost as much as the query.
    out: dict[str, Any] = {
        "metrics": [
            {
                "key": key,
                "value": "NaN" if is_nan else (value if math.isfinite(value) else mj.encode_float(value)),
                "timestamp": ts,
                "step": step,
            }
            for ts, step, value, is_nan in rows
        ]
    }
    if token:
        out["next_page_token"] = token
    return json_response(out)
