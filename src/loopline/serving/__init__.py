"""Model serving: an inference server that speaks MLflow's scoring protocol and the Open Inference
Protocol, batches concurrent requests, splits traffic between versions, shadows a challenger and
logs what it serves.

``loopline serve models:/churn@champion`` runs :func:`create_app` under uvicorn. A
:class:`Runtime` holds what is served (one model, or a deployment of weighted versions and a
shadow) and swaps it when an alias or a deployment changes; each :class:`ServedModel` puts its
requests through a :class:`Batcher`; :class:`InferenceLog` writes requests and feedback as
Parquet in the artifact store. ``loopline deploy build`` writes container and Kubernetes files
(:func:`build_bundle`).
"""

from loopline.serving.app import ServingApp, create_app
from loopline.serving.batching import BatchConfig, Batcher
from loopline.serving.config import ServeConfig
from loopline.serving.deployments import (
    DeploymentSpec,
    Route,
    Router,
    Shadow,
    get_deployment,
    set_deployment,
)
from loopline.serving.inference_log import InferenceLog, read_log
from loopline.serving.model import ServedModel
from loopline.serving.packaging import build_bundle
from loopline.serving.runtime import Runtime

__all__ = [
    "BatchConfig",
    "Batcher",
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
    "get_deployment",
    "read_log",
    "set_deployment",
]
