"""scikit-learn models (and pipelines), saved with skops where it can, as MLflow 3 does.

skops files hold no code: loading one only rebuilds types on skops' safe list, plus those the
model's MLmodel names (trusted because the registry verified that file's digest): see
``skops_format``. Models skops cannot save fall back to pickle, which loads only with an explicit
opt-in.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.flavors import skops_format
from loopline.registry.flavors.base import Saved, Trust, pinned
from loopline.registry.mlmodel import pyfunc_conf

NAME = "sklearn"


def matches(model: Any) -> bool:
    return type(model).__module__.startswith("sklearn.") or (
        hasattr(model, "get_params") and hasattr(model, "predict") and hasattr(model, "fit")
    )


def save(model: Any, path: Path) -> Saved:
    import sklearn

    fmt, filename, trusted = skops_format.save(model, path)
    flavor = {
        "code": None,
        "pickled_model": filename,
        "serialization_format": fmt,
        "sklearn_version": sklearn.__version__,
        "skops_trusted_types": trusted or None,
    }
    reqs = pinned("scikit-learn", "numpy", "scipy", *(["skops"] if fmt == "skops" else []))
    return Saved(
        flavor, pyfunc_conf("mlflow.sklearn", filename, path_key="model_path", predict_fn="predict"), reqs
    )


def load(path: Path, conf: dict[str, Any], trust: Trust) -> Any:
    file = path / conf.get("pickled_model", "model.pkl")
    fmt = conf.get("serialization_format", "cloudpickle")
    if fmt == "skops":
        return skops_format.load(file, conf.get("skops_trusted_types"), trust)
    trust.require_code_execution(f"{file.name} ({fmt})")
    if fmt == "cloudpickle":
        try:
            import cloudpickle
        except ImportError:
            raise InvalidInput(
                "This model was saved with cloudpickle.", hint="pip install cloudpickle"
            ) from None
        with open(file, "rb") as f:
            return cloudpickle.load(f)
    with open(file, "rb") as f:
        return pickle.load(f)


def predict(native: Any, data: Any) -> Any:
    """Predict; a model fitted on a plain array gets one (scikit-learn warns when handed named columns
    it never saw, and checking names costs about a millisecond a call)."""
    if hasattr(data, "to_numpy") and getattr(native, "feature_names_in_", None) is None:
        data = data.to_numpy()
    return native.predict(data)
