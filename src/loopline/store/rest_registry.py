"""The registry over HTTP: MLflow's model-registry REST API (filled in with the server routes)."""

from __future__ import annotations

from loopline.protocol.http import RestClient


class RestRegistryStore:
    """``SqlRegistryStore``'s methods over ``/api/2.0/mlflow/registered-models``, ``model-versions``
    and ``logged-models``."""

    def __init__(self, base_url: str) -> None:
        self.client = RestClient(base_url)
