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

import pickle
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.flavors import skops_format
from loopline.registry.flavors.base import Saved, Trust, pinned
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
        fmt, filename, untrusted = skops_format.save(model, path)  # a pickle when skops cannot save it
        trusted = sorted(set(TRUSTED) | set(untrusted)) if untrusted is not None else None
        reqs += pinned("skops") if fmt == "skops" else []
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
        return skops_format.load(file, conf.get("skops_trusted_types"), trust, always=TRUSTED)
    trust.require_code_execution(f"{file.name} (a {fmt} of {cls})")
    with open(file, "rb") as f:
        return pickle.load(f)  # cloudpickle files are read by the standard unpickler
