"""Flavors: how each kind of model is saved and loaded.

Each flavor module offers ``NAME``, ``matches(model)``, ``save(model, path) -> Saved`` and
``load(path, conf, trust) -> predictor``. ``matches`` looks at the object's type by name, so no
machine-learning library is imported until a model of that kind shows up.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from loopline.errors import InvalidInput

# Most specific first: XGBoost and LightGBM models also look like scikit-learn estimators.
ORDER = ("xgboost", "lightgbm", "onnx", "pytorch", "sklearn", "pyfunc")
MLFLOW_NAMES = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "pytorch": "pytorch",
    "sklearn": "sklearn",
    "pyfunc": "loopline_pyfunc",
}


def module(name: str) -> ModuleType:
    if name not in ORDER:
        raise InvalidInput(f"Unknown flavor {name!r}.", hint=f"Known flavors: {', '.join(ORDER)}.")
    return importlib.import_module(f"loopline.registry.flavors.{name}")


def for_model(model: Any) -> ModuleType:
    """The flavor that saves ``model``."""
    for name in ORDER:
        try:
            mod = module(name)
        except ImportError:
            continue
        if mod.matches(model):
            return mod
    raise InvalidInput(
        f"Loopline does not know how to save a {type(model).__module__}.{type(model).__name__}.",
        hint="Wrap it in a class with a predict(data) method (the generic flavor saves that).",
    )


def for_mlmodel(flavors: dict[str, Any]) -> tuple[ModuleType, dict[str, Any]]:
    """The flavor that loads a saved model, from its MLmodel ``flavors`` block."""
    for name in ORDER:
        key = MLFLOW_NAMES[name]
        if key in flavors:
            try:
                return module(name), flavors[key]
            except ImportError as e:
                raise InvalidInput(f"This model needs the {name} flavor: {e}.") from None
    raise InvalidInput(
        f"No flavor Loopline can load in {sorted(flavors)}.",
        hint=f"Loopline loads: {', '.join(MLFLOW_NAMES.values())}.",
    )
