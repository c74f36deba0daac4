"""The tracking store over HTTP: MLflow's REST API, spoken to ``loopline server`` (or ``mlflow server``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loopline.errors import InvalidInput, LooplineError, NotFound
from loopline.metadata.pages import Page
from loopline.protocol.http import RestClient
from loopline.tracking import mlflow_json as mj
from loopline.tracking.types import (
    DatasetInput,
    Experiment,
    Metric,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)

_API = "/api/2.0/mlflow"


class RestTrackingStore:
    """``TrackingStore`` over MLflow's REST API."""

    def __init__(self, base_url: str, client: RestClient | None = None) -> None:
        self.client = client or RestClient(base_url)
        self._loopline: bool | None = None

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.call("POST", _API + path, body)

    def _get(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.call("GET", _API + path, body)

    # experiments
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        body: dict[str, Any] = {
            "name": name,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
        }
        if artifact_location:
            body["artifact_location"] = artifact_location
        return str(self._post("/experiments/create", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return mj.experiment_from_json(
            self._get("/experiments/get", {"experiment_id": experiment_id})["experiment"]
        )

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            body = self._get("/experiments/get-by-name", {"experiment_name": name})
        except NotFound:
            return None
        return mj.experiment_from_json(body["experiment"])

    def search_experiments(
        self,
        view_type: ViewType = "ACTIVE_ONLY",
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        body = self._post(
            "/experiments/search",
            {
                "view_type": view_type,
                "max_results": max_results,
                "filter": filter_string,
                "order_by": list(order_by or []),
                "page_token": page_token,
            },
        )
        return Page(
            [mj.experiment_from_json(e) for e in body.get("experiments", [])], body.get("next_page_token")
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._post("/experiments/delete", {"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        self._post("/experiments/restore", {"experiment_id": experiment_id})

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._post("/experiments/update", {"experiment_id": experiment_id, "new_name": new_name})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._post(
            "/experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": key, "value": value}
        )

    # runs
    def accepts_run_ids(self) -> bool:
        return self._is_loopline()

    def create_run(
        self,
        experiment_id: str,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        *,
        run_id: str | None = None,
        params: Sequence[Param] = (),
        metrics: Sequence[Metric] = (),
        status: RunStatus = RunStatus.RUNNING,
        end_time: int | None = None,
    ) -> Run:
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": user_id,
            "start_time": start_time,
            "tags": [{"key": t.key, "value": t.value} for t in tags],
            "run_name": run_name,
        }
        status = RunStatus(status)
        batch = bool(params or metrics) or status.is_terminal
        if (run_id is not None or batch) and self._is_loopline():  # one request for all of it
            body |= {
                "run_id": run_id,
                "params": [{"key": p.key, "value": p.value} for p in params],
                "metrics": [mj.metric_to_json(m) for m in metrics],
                "status": status.value,
                "end_time": end_time,
            }
            return mj.run_from_json(self.client.call("POST", "/api/2.0/loopline/runs/create", body)["run"])
        if run_id is not None:
            raise InvalidInput(
                "This server chooses run IDs itself (it is not a Loopline server).",
                hint="Create the run without a run_id.",
            )
        run = mj.run_from_json(self._post("/runs/create", body)["run"])
        if not batch:
            return run
        run_id = run.info.run_id
        if params or metrics:
            self.log_batch(run_id, metrics, params)
        if status.is_terminal:
            self.update_run_info(run_id, status, end_time)
        return self.get_run(run_id)  # MLflow's server: a rare path, so one more request for exact data

    def get_run(self, run_id: str) -> Run:
        return mj.run_from_json(self._get("/runs/get", {"run_id": run_id})["run"])

    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body = self._post(
            "/runs/update",
            {
                "run_id": run_id,
                "status": status.value if status else None,
                "end_time": end_time,
                "run_name": run_name,
            },
        )
        return mj.run_info_from_json(body["run_info"])

    def finish_run(
        self, run_id: str, status: RunStatus, end_time: int, metrics: Sequence[Metric] = ()
    ) -> RunInfo:
        if self._is_loopline():  # one request instead of two
            body = self.client.call(
                "POST",
                "/api/2.0/loopline/runs/finish",
                {
                    "run_id": run_id,
                    "status": status.value,
                    "end_time": end_time,
                    "metrics": [mj.metric_to_json(m) for m in metrics],
                },
            )
            return mj.run_info_from_json(body["run_info"])
        if metrics:
            self.log_batch(run_id, metrics)
        return self.update_run_info(run_id, status, end_time)

    def delete_run(self, run_id: str) -> None:
        self._post("/runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._post("/runs/restore", {"run_id": run_id})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        self._post(
            "/runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [mj.metric_to_json(m) for m in metrics],
                "params": [{"key": p.key, "value": p.value} for p in params],
                "tags": [{"key": t.key, "value": t.value} for t in tags],
            },
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        self._post("/runs/delete-tag", {"run_id": run_id, "key": key})

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        self._post(
            "/runs/log-inputs",
            {"run_id": run_id, "datasets": [mj.dataset_input_to_json(d) for d in datasets]},
        )

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = "ACTIVE_ONLY",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        body = self._post(
            "/runs/search",
            {
                "experiment_ids": list(experiment_ids),
                "filter": filter_string,
                "run_view_type": run_view_type,
                "max_results": max_results,
                "order_by": list(order_by or []),
                "page_token": page_token,
            },
        )
        return Page([mj.run_from_json(r) for r in body.get("runs", [])], body.get("next_page_token"))

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]:
        args = {"run_id": run_id, "metric_key": key, "max_results": max_results, "page_token": page_token}
        if self._is_loopline():  # columnar: a tenth of the decoding work
            body = self.client.call("GET", "/api/2.0/loopline/metrics/history", args)
            special = {int(i): mj.decode_float(v, "value") for i, v in (body.get("non_finite") or {}).items()}
            points = zip(body.get("timestamp", []), body.get("step", []), body.get("value", []), strict=True)
            items = [Metric(key, special.get(i, v), ts, step) for i, (ts, step, v) in enumerate(points)]
            return Page(items, body.get("next_page_token"))
        body = self._get("/metrics/get-history", args)
        return Page([mj.metric_from_json(m) for m in body.get("metrics", [])], body.get("next_page_token"))

    def _is_loopline(self) -> bool:
        """Whether the server is Loopline's (its extra routes exist) rather than MLflow's; asked once."""
        if self._loopline is None:
            try:
                info = self.client.call("GET", "/api/3.0/mlflow/server-info")
            except LooplineError:
                info = {}
            self._loopline = info.get("server") == "loopline"
        return self._loopline
