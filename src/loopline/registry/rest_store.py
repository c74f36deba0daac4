"""The registry over HTTP: ``SqlRegistryStore``'s methods on MLflow's model-registry REST API.

Spoken to ``loopline server`` (or an MLflow server, minus the digests). A model version's
per-file BLAKE3 digests travel in the extra field ``loopline_digests`` of
``model-versions/create`` and come back on every model version the server returns; MLflow's
server and clients ignore the field.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from loopline.errors import InvalidInput
from loopline.metadata.pages import Page
from loopline.protocol.http import RestClient
from loopline.registry import mlflow_json as rj
from loopline.registry.types import LoggedModel, LoggedModelStatus, ModelVersion, RegisteredModel
from loopline.tracking import mlflow_json as mj
from loopline.tracking.types import Metric

_API = "/api/2.0/mlflow"


def _kv(items: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in (items or {}).items()]


def _logged(model_id: str, suffix: str = "") -> str:
    return f"/logged-models/{urllib.parse.quote(model_id, safe='')}{suffix}"


class RestRegistryStore:
    """Registered models, versions, aliases and logged models over MLflow's REST API."""

    def __init__(self, base_url: str, client: RestClient | None = None) -> None:
        self.client = client or RestClient(base_url)  # share the tracking store's: one connection pool

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.client.call(method, _API + path, body)

    # ---- registered models -----------------------------------------------------------------

    def create_registered_model(
        self, name: str, tags: Mapping[str, str] | None = None, description: str = ""
    ) -> RegisteredModel:
        body = self._call(
            "POST",
            "/registered-models/create",
            {"name": name, "tags": _kv(tags), "description": description or ""},
        )
        return rj.registered_model_from_json(body["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        body = self._call("GET", "/registered-models/get", {"name": name})
        return rj.registered_model_from_json(body["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        body = self._call("POST", "/registered-models/rename", {"name": name, "new_name": new_name})
        return rj.registered_model_from_json(body["registered_model"])

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        body = self._call("PATCH", "/registered-models/update", {"name": name, "description": description})
        return rj.registered_model_from_json(body["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        self._call("DELETE", "/registered-models/delete", {"name": name})

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._call("POST", "/registered-models/set-tag", {"name": name, "key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._call("DELETE", "/registered-models/delete-tag", {"name": name, "key": key})

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        body = self._call(
            "GET",
            "/registered-models/search",
            {
                "filter": filter_string,
                "max_results": max_results,
                "order_by": list(order_by or []),
                "page_token": page_token,
            },
        )
        return Page(
            [rj.registered_model_from_json(m) for m in body.get("registered_models", [])],
            body.get("next_page_token"),
        )

    # ---- aliases ---------------------------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: object) -> None:
        self._call(
            "POST", "/registered-models/alias", {"name": name, "alias": alias, "version": str(version)}
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._call("DELETE", "/registered-models/alias", {"name": name, "alias": alias})

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        body = self._call("GET", "/registered-models/alias", {"name": name, "alias": alias})
        return rj.model_version_from_json(body["model_version"])

    # ---- versions --------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str = "",
        tags: Mapping[str, str] | None = None,
        run_link: str = "",
        description: str = "",
        model_id: str = "",
        digests: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register ``source`` as the next version of ``name``; ``digests`` pin its files."""
        request: dict[str, Any] = {
            "name": name,
            "source": source,
            "run_id": run_id or "",
            "tags": _kv(tags),
            "run_link": run_link or "",
            "description": description or "",
            "model_id": model_id or "",
        }
        if digests:
            request[rj.DIGESTS_FIELD] = dict(digests)
        body = self._call("POST", "/model-versions/create", request)
        return rj.model_version_from_json(body["model_version"])

    def get_model_version(self, name: str, version: object) -> ModelVersion:
        body = self._call("GET", "/model-versions/get", {"name": name, "version": str(version)})
        return rj.model_version_from_json(body["model_version"])

    def update_model_version(self, name: str, version: object, description: str) -> ModelVersion:
        body = self._call(
            "PATCH",
            "/model-versions/update",
            {"name": name, "version": str(version), "description": description},
        )
        return rj.model_version_from_json(body["model_version"])

    def transition_model_version_stage(
        self, name: str, version: object, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        body = self._call(
            "POST",
            "/model-versions/transition-stage",
            {
                "name": name,
                "version": str(version),
                "stage": stage,
                "archive_existing_versions": archive_existing_versions,
            },
        )
        return rj.model_version_from_json(body["model_version"])

    def delete_model_version(self, name: str, version: object) -> None:
        self._call("DELETE", "/model-versions/delete", {"name": name, "version": str(version)})

    def set_model_version_tag(self, name: str, version: object, key: str, value: str) -> None:
        self._call(
            "POST",
            "/model-versions/set-tag",
            {"name": name, "version": str(version), "key": key, "value": value},
        )

    def delete_model_version_tag(self, name: str, version: object, key: str) -> None:
        self._call(
            "DELETE", "/model-versions/delete-tag", {"name": name, "version": str(version), "key": key}
        )

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        body = self._call(
            "POST", "/registered-models/get-latest-versions", {"name": name, "stages": list(stages or [])}
        )
        return [rj.model_version_from_json(v) for v in body.get("model_versions", [])]

    def get_model_version_download_uri(self, name: str, version: object) -> str:
        body = self._call("GET", "/model-versions/get-download-uri", {"name": name, "version": str(version)})
        return str(body["artifact_uri"])

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        body = self._call(
            "GET",
            "/model-versions/search",
            {
                "filter": filter_string,
                "max_results": max_results,
                "order_by": list(order_by or []),
                "page_token": page_token,
            },
        )
        return Page(
            [rj.model_version_from_json(v) for v in body.get("model_versions", [])],
            body.get("next_page_token"),
        )

    # ---- logged models (MLflow 3) ----------------------------------------------------------

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        model_type: str = "",
        source_run_id: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        body = self._call(
            "POST",
            "/logged-models",
            {
                "experiment_id": experiment_id,
                "name": name or "",
                "model_type": model_type or "",
                "source_run_id": source_run_id or "",
                "params": _kv(params),
                "tags": _kv(tags),
            },
        )
        return rj.logged_model_from_json(body["model"])

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return rj.logged_model_from_json(self._call("GET", _logged(model_id))["model"])

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        body = self._call(
            "PATCH", _logged(model_id), {"model_id": model_id, "status": LoggedModelStatus(status).value}
        )
        return rj.logged_model_from_json(body["model"])

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self._call("PATCH", _logged(model_id, "/tags"), {"tags": _kv(tags)})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._call("DELETE", _logged(model_id, "/tags/" + urllib.parse.quote(key, safe="")))

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        self._call("POST", _logged(model_id, "/params"), {"model_id": model_id, "params": _kv(params)})

    def log_logged_model_metrics(
        self, model_id: str, metrics: Sequence[Metric], run_id: str = "", dataset: tuple[str, str] = ("", "")
    ) -> None:
        """MLflow's API records a model's metrics through its run: ``runs/log-batch`` with ``model_id``."""
        if not run_id:
            raise InvalidInput(
                "Over HTTP a logged model's metrics are logged through a run.", hint="Pass run_id."
            )
        on = {"model_id": model_id, "dataset_name": dataset[0], "dataset_digest": dataset[1]}
        self._call(
            "POST",
            "/runs/log-batch",
            {"run_id": run_id, "metrics": [{**mj.metric_to_json(m), **on} for m in metrics]},
        )

    def delete_logged_model(self, model_id: str) -> None:
        self._call("DELETE", _logged(model_id))

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        datasets: Sequence[tuple[str, str]] = (),
    ) -> Page[LoggedModel]:
        body = self._call(
            "POST",
            "/logged-models/search",
            {
                "experiment_ids": [str(e) for e in experiment_ids],
                "filter": filter_string,
                "max_results": max_results,
                "page_token": page_token,
                "datasets": [{"dataset_name": n, "dataset_digest": d} for n, d in datasets],
            },
        )
        return Page(
            [rj.logged_model_from_json(m) for m in body.get("models", [])], body.get("next_page_token")
        )

    def log_outputs(self, run_id: str, model_ids: Sequence[str], steps: Sequence[int] = ()) -> None:
        """Record that run ``run_id`` produced these logged models (at these steps, default 0)."""
        models = [{"model_id": m, "step": steps[i] if i < len(steps) else 0} for i, m in enumerate(model_ids)]
        self._call("POST", "/runs/outputs", {"run_id": run_id, "models": models})
