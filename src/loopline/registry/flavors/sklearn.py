"""scikit-learn models (and pipelines), saved with skops where it can, as MLflow 3 does.

skops files hold no code: loading one only rebuilds types on skops' safe list, plus those the
model's MLmodel names (trusted because the registry verified that file's digest). Models skops
cannot save fall back to pickle, which loads only with an explicit opt-in. A verified file is
loaded without ``import skops.io`` when it can be (``skops_lean``: a third of a cold load).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.flavors.base import ALLOW_PICKLE_ENV, Saved, Trust, pinned
from loopline.registry.mlmodel import pyfunc_conf

NAME = "sklearn"


def matches(model: Any) -> bool:
    return type(model).__module__.startswith("sklearn.") or (
        hasattr(model, "get_params") and hasattr(model, "predict") and hasattr(model, "fit")
    )


def save(model: Any, path: Path) -> Saved:
    import sklearn

    fmt, filename, trusted = "skops", "model.skops", None
    try:
        import skops.io as sio

        sio.dump(model, path / filename)
        untrusted = sio.get_untrusted_types(file=path / filename)
        trusted = untrusted or None  # our own model, just written: its types are the ones it uses
    except Exception:  # skops missing, or a type it cannot serialise
        (path / "model.skops").unlink(missing_ok=True)
        fmt, filename = "pickle", "model.pkl"
        with open(path / filename, "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    flavor = {
        "code": None,
        "pickled_model": filename,
        "serialization_format": fmt,
        "sklearn_version": sklearn.__version__,
        "skops_trusted_types": trusted,
    }
    reqs = pinned("scikit-learn", "numpy", "scipy", *(["skops"] if fmt == "skops" else []))
    return Saved(
        flavor, pyfunc_conf("mlflow.sklearn", filename, path_key="model_path", predict_fn="predict"), reqs
    )


def load(path: Path, conf: dict[str, Any], trust: Trust) -> Any:
    file = path / conf.get("pickled_model", "model.pkl")
    fmt = conf.get("serialization_format", "cloudpickle")
    if fmt == "skops":
        if trust.verified:  # the registry vouched for the file: skip skops' import-time type census
            from loopline.registry.flavors import skops_lean

            done, model = skops_lean.load_verified(file, conf.get("skops_trusted_types"))
            if done:
                return model
        import skops.io as sio

        if trust.allow_pickle or os.environ.get(ALLOW_PICKLE_ENV) == "1":  # the user trusts the author
            trusted = sio.get_untrusted_types(file=file)
        else:  # the model's own list counts only when the registry vouched for that file
            trusted = conf.get("skops_trusted_types") if trust.verified else None
        try:
            return sio.load(file, trusted=trusted)
        except sio.exceptions.UntrustedTypesFoundException as e:
            raise InvalidInput(
                f"The skops file names types that are not on the trusted list: {str(e).rstrip('.')}.",
                hint="Load it through the registry (which verifies the model's files), or pass "
                "allow_pickle=True if you trust its author.",
            ) from None
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
