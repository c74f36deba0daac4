"""Model registry and packaging: log, version, alias and load models, both ways with MLflow.

``log_model``/``save_model`` write MLflow's model layout with a signature and per-file BLAKE3
digests; ``load_model`` resolves ``models:/name@alias`` through the registry, verifies every
file against the digests recorded at registration, and returns a model whose ``predict`` checks
its input against the signature.
"""

from loopline.registry.client import RegistryClient
from loopline.registry.evaluate import EvaluationResult, evaluate
from loopline.registry.models import LoadedModel, ModelInfo, load_model, log_model, save_model
from loopline.registry.signature import Signature, infer_signature

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
