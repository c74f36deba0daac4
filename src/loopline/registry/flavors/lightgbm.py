"""LightGBM models: a ``Booster`` as LightGBM's text model, the scikit-learn API with skops.

The layout is ``mlflow.lightgbm``'s (MLflow 3), so either side loads the other's files:

- ``lightgbm.Booster`` → ``model.lgb``, LightGBM's own text format (trees and numbers, no code).
- ``LGBMClassifier`` / ``LGBMRegressor`` → ``model.skops``, as MLflow 3 saves them by default.
  MLflow rebuilds these through scikit-learn's loader, which does not read a native text file, so
  skops is the format both sides can load without running code. skops only rebuilds the types it is
  told to trust: LightGBM's own (always) plus, when the registry verified the files, those the
  MLmodel lists. Without skops the model is pickled, and loads only with ``allow_pickle=True``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.flavors.base import ALLOW_PICKLE_ENV, Saved, Trust, pinned
from loopline.registry.mlmodel import pyfunc_conf

NAME = "lightgbm"
BOOSTER = "lightgbm.basic.Booster"
# The types MLflow trusts for LightGBM's scikit-learn models; they hold no code.
TRUSTED = (
    "collections.OrderedDict",
    "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.sklearn.LGBMClassifier",
    BOOSTER,
)


def matches(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "lightgbm"


def _class_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__name__}"


def save(model: Any, path: Path) -> Saved:
    import lightgbm as lgb

    cls = _class_name(model)
    reqs = pinned("lightgbm", "numpy", "scipy")
    trusted: list[str] | None = list(TRUSTED)
    if isinstance(model, lgb.Booster):
        fmt, filename = "skops", "model.lgb"  # MLflow writes its default format name even for a Booster
        model.save_model(str(path / filename))
    else:
        reqs += pinned("scikit-learn")
        fmt, filename = "skops", "model.skops"
        try:
            import skops.io as sio

            sio.dump(model, path / filename)
            trusted = sorted(set(TRUSTED) | set(sio.get_untrusted_types(file=path / filename)))
            reqs += pinned("skops")
        except Exception:  # skops missing, or a type it cannot serialise (a custom objective, …)
            (path / filename).unlink(missing_ok=True)
            fmt, filename, trusted = "pickle", "model.pkl", None
            with open(path / filename, "wb") as f:
                pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    flavor = {
        "code": None,
        "data": filename,
        "lgb_version": lgb.__version__,
        "model_class": cls,
        "serialization_format": fmt,
        "skops_trusted_types": trusted,
    }
    return Saved(flavor, pyfunc_conf("mlflow.lightgbm", filename), reqs)


def load(path: Path, conf: dict[str, Any], trust: Trust) -> Any:
    file = path / str(conf.get("data", "model.lgb"))
    cls = str(conf.get("model_class", BOOSTER))
    if cls == BOOSTER:
        import lightgbm as lgb

        return lgb.Booster(model_file=str(file))
    if not cls.startswith("lightgbm."):
        raise InvalidInput(
            f"The lightgbm flavor names model class {cls!r}, which is not a LightGBM model class.",
            hint="Load it with the flavor that saved it.",
        )
    fmt = str(conf.get("serialization_format", "cloudpickle"))
    if fmt == "skops":
        import skops.io as sio

        trusted = set(TRUSTED)
        if trust.verified:
            trusted |= set(conf.get("skops_trusted_types") or [])
        if trust.allow_pickle or os.environ.get(ALLOW_PICKLE_ENV) == "1":
            trusted |= set(sio.get_untrusted_types(file=file))
        try:
            return sio.load(file, trusted=sorted(trusted))
        except sio.exceptions.UntrustedTypesFoundException as e:
            raise InvalidInput(
                f"The skops file names types that are not on the trusted list: {str(e).rstrip('.')}.",
                hint="Load it through the registry (which verifies the model's files), or pass "
                "allow_pickle=True if you trust its author.",
            ) from None
    trust.require_code_execution(f"{file.name} (a {fmt} of {cls})")
    with open(file, "rb") as f:
        return pickle.load(f)  # cloudpickle files are read by the standard unpickler
