"""Model serving: an inference server that speaks MLflow's scoring protocol and the Open Inference
Protocol, batches concurrent requests, splits traffic between versions, shadows a challenger and
logs what it serves.

``loopline serve models:/churn@champion`` runs :func:`create_app` under uvicorn. A
:class:`Runtime` holds what is served (one model, or a deployment of weighted versions and a
shadow) and swaps it when an alias or a deployment changes; each :class:`ServedModel` puts its
requests through a :class:`Batcher`; :class:`InferenceLog` writes requests and feedback as
Parquet in the artifact store. Deployments are metadata-store objects with a history
(:func:`set_deployment`, ``serving/store.py``). ``loopline deploy build`` writes container and
Kubernetes files (:func:`build_bundle`).

The names below load their modules on first use (PEP 562): the deployment store and its types do
not bring the inference server's NumPy and Prometheus with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.lazy import lazy_names

if TYPE_CHECKING:
    from loopline.serving.app import ServingApp, create_app
    from loopline.serving.batching import BatchConfig, Batcher
    from loopline.serving.config import ServeConfig
    from loopline.serving.deployments import (
        Router,
        delete_deployment,
        deployment_history,
        get_deployment,
        list_deployments,
        rollback_deployment,
        set_deployment,
    )
    from loopline.serving.inference_log import InferenceLog, read_log
    from loopline.serving.model import ServedModel
    from loopline.serving.packaging import build_bundle
    from loopline.serving.runtime import Runtime
    from loopline.serving.types import Deployment, DeploymentRevision, DeploymentSpec, Route, Shadow

_LAZY = {
    "BatchConfig": "loopline.serving.batching",
    "Batcher": "loopline.serving.batching",
    "Deployment": "loopline.serving.types",
    "DeploymentRevision": "loopline.serving.types",
    "DeploymentSpec": "loopline.serving.types",
    "InferenceLog": "loopline.serving.inference_log",
    "Route": "loopline.serving.types",
    "Router": "loopline.serving.deployments",
    "Runtime": "loopline.serving.runtime",
    "ServeConfig": "loopline.serving.config",
    "ServedModel": "loopline.serving.model",
    "ServingApp": "loopline.serving.app",
    "Shadow": "loopline.serving.types",
    "build_bundle": "loopline.serving.packaging",
    "create_app": "loopline.serving.app",
    "delete_deployment": "loopline.serving.deployments",
    "deployment_history": "loopline.serving.deployments",
    "get_deployment": "loopline.serving.deployments",
    "list_deployments": "loopline.serving.deployments",
    "read_log": "loopline.serving.inference_log",
    "rollback_deployment": "loopline.serving.deployments",
    "set_deployment": "loopline.serving.deployments",
}

__all__ = [
    "BatchConfig",
    "Batcher",
    "Deployment",
    "DeploymentRevision",
    "DeploymentSpec",
    "InferenceLog",
    "Route",
    "Router",
    "Runtime",
    "ServeConfig",
    "ServedModel",
    "ServingApp",
    "Shadow",
    "build_bundle",
    "create_app",
    "delete_deployment",
    "deployment_history",
    "get_deployment",
    "list_deployments",
    "read_log",
    "rollback_deployment",
    "set_deployment",
]


__getattr__ = lazy_names(__name__, _LAZY)
