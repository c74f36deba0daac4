"""XGBoost models (``Booster`` and the scikit-learn API), in XGBoost's own file format.

The layout is ``mlflow.xgboost``'s: ``model.ubj`` (or ``model.json``) written by the model's own
``save_model``, and a flavor block naming the class to rebuild. Both formats hold only numbers and
trees, no code, so loading one never needs ``allow_pickle``. Only classes of the ``xgboost``
package are rebuilt; an MLmodel naming any other class is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.flavors.base import Saved, Trust, pinned
from loopline.registry.mlmodel import pyfunc_conf

NAME = "xgboost"
FORMAT = "ubj"  # MLflow's default; "json" is the other native format and loads the same way
_FORMATS = ("ubj", "json", "xgb", "deprecated")


def matches(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "xgboost" and hasattr(model, "save_model")


def _class_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__name__}"  # as MLflow writes it: xgboost.sklearn.XGBClassifier


def save(model: Any, path: Path) -> Saved:
    import xgboost as xgb

    filename = f"model.{FORMAT}"
    model.save_model(str(path / filename))
    flavor = {
        "code": None,
        "data": filename,
        "model_class": _class_name(model),
        "model_format": FORMAT,
        "xgb_version": xgb.__version__,
    }
    reqs = [f"xgboost=={xgb.__version__}", *pinned("numpy", "scipy")]
    if not isinstance(model, xgb.Booster):
        reqs += pinned("scikit-learn")
    return Saved(flavor, pyfunc_conf("mlflow.xgboost", filename), reqs)


def _model_class(qualified: str) -> Any:
    import xgboost as xgb

    module, _, name = qualified.rpartition(".")
    cls = getattr(xgb, name, None)
    if module.split(".")[0] != "xgboost" or not isinstance(cls, type) or not hasattr(cls, "load_model"):
        raise InvalidInput(
            f"The xgboost flavor names model class {qualified!r}, which is not an XGBoost model class.",
            hint="Only xgboost.core.Booster and the xgboost.sklearn estimators can be loaded.",
        )
    return cls


def load(path: Path, conf: dict[str, Any], trust: Trust) -> Any:
    fmt = str(conf.get("model_format", "xgb"))
    if fmt not in _FORMATS:
        raise InvalidInput(f"Unknown XGBoost model format {fmt!r}.", hint=f"Known: {', '.join(_FORMATS)}.")
    model = _model_class(str(conf.get("model_class", "xgboost.core.Booster")))()
    model.load_model(str(path / str(conf.get("data", f"model.{fmt}"))))
    return model


def predict(native: Any, data: Any) -> Any:
    import xgboost as xgb

    if isinstance(native, xgb.Booster):
        return native.predict(xgb.DMatrix(data))
    return native.predict(data)
