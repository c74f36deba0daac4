"""Model registry and packaging: log, version, alias and load models, both ways with MLflow.

``log_model``/``save_model`` write MLflow's model layout with a signature and per-file BLAKE3
digests; ``load_model`` resolves ``models:/name@alias`` through the registry, verifies every
file against the digests recorded at registration, and returns a model whose ``predict`` checks
its input against the signature.

Names load on first use (PEP 562): a cold ``load_model`` from the embedded store must not pay
for the tracking client and SQLAlchemy it does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.lazy import lazy_names

if TYPE_CHECKING:
    from loopline.registry.client import RegistryClient
    from loopline.registry.evaluation import EvaluationResult, evaluate
    from loopline.registry.models import LoadedModel, ModelInfo, load_model, log_model, save_model
    from loopline.registry.signature import Signature, infer_signature

_LAZY = {
    "EvaluationResult": "loopline.registry.evaluation",
    "LoadedModel": "loopline.registry.models",
    "ModelInfo": "loopline.registry.models",
    "RegistryClient": "loopline.registry.client",
    "Signature": "loopline.registry.signature",
    "evaluate": "loopline.registry.evaluation",
    "infer_signature": "loopline.registry.signature",
    "load_model": "loopline.registry.models",
    "log_model": "loopline.registry.models",
    "save_model": "loopline.registry.models",
}


__getattr__ = lazy_names(__name__, _LAZY)


__all__ = [
    "EvaluationResult",
    "LoadedModel",
    "ModelInfo",
    "RegistryClient",
    "Signature",
    "evaluate",
    "infer_signature",
    "load_model",
    "log_model",
    "save_model",
]
