"""The generic flavor: any object with a ``predict(data)`` method, pickled.

Its MLmodel names this module as the ``python_function`` loader, so ``mlflow.pyfunc.load_model``
can load it too wherever Loopline is installed (through ``_load_pyfunc``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from loopline.registry.flavors.base import Saved, Trust, pinned
from loopline.registry.mlmodel import pyfunc_conf

NAME = "pyfunc"
FILE = "python_model.pkl"


def matches(model: Any) -> bool:
    return callable(getattr(model, "predict", None))


def save(model: Any, path: Path) -> Saved:
    with open(path / FILE, "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    cls = type(model)
    flavor = {"python_model": FILE, "class": f"{cls.__module__}.{cls.__qualname__}"}
    return Saved(flavor, pyfunc_conf(__name__, FILE), pinned("loopline"))


def load(path: Path, conf: dict[str, Any], trust: Trust) -> Any:
    trust.require_code_execution(f"{FILE} (a pickled {conf.get('class', 'Python object')})")
    with open(path / conf.get("python_model", FILE), "rb") as f:
        return pickle.load(f)


def _load_pyfunc(data_path: str) -> Any:
    """MLflow's ``pyfunc`` entry point (``data_path`` is the file named by ``model_path``)."""
    with open(data_path, "rb") as f:
        return pickle.load(f)
