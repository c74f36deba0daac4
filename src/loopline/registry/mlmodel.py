"""The ``MLmodel`` file: MLflow's description of a saved model, read and written as MLflow does.

Keeping MLflow's layout is what lets models move both ways: ``mlflow.pyfunc.load_model`` reads a
Loopline model's ``MLmodel`` and ``loopline.load_model`` reads MLflow's.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline._version import __version__
from loopline.errors import InvalidInput
from loopline.registry.signature import Signature

FILENAME = "MLmodel"
PYFUNC = "python_function"


@dataclass
class MLmodel:
    flavors: dict[str, dict[str, Any]]
    signature: Signature | None = None
    run_id: str | None = None
    model_id: str | None = None
    artifact_path: str | None = None
    saved_input_example_info: dict[str, Any] | None = None
    utc_time_created: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    )
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"artifact_path": self.artifact_path, "flavors": self.flavors}
        if self.model_id:
            out["model_id"] = self.model_id
            out["model_uuid"] = self.model_id
        if self.run_id:
            out["run_id"] = self.run_id
        if self.saved_input_example_info:
            out["saved_input_example_info"] = self.saved_input_example_info
        if self.signature is not None:
            out["signature"] = self.signature.to_mlmodel()
        out["loopline_version"] = __version__
        out["utc_time_created"] = self.utc_time_created
        out.update(self.extra)
        return out

    def save(self, directory: Path) -> Path:
        import yaml

        path = directory / FILENAME
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False))
        return path

    @classmethod
    def load(cls, directory: Path) -> MLmodel:
        import yaml

        path = directory / FILENAME
        if not path.is_file():
            raise InvalidInput(
                f"{directory} is not a saved model: it has no MLmodel file.",
                hint="Point at the folder log_model or save_model wrote.",
            )
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise InvalidInput(f"The MLmodel file in {directory} is not valid YAML: {e}") from None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("flavors"), Mapping):
            raise InvalidInput(f"The MLmodel file in {directory} lists no flavors.")
        known = {
            "artifact_path",
            "flavors",
            "signature",
            "run_id",
            "model_id",
            "saved_input_example_info",
            "utc_time_created",
        }
        return cls(
            flavors={str(k): dict(v or {}) for k, v in raw["flavors"].items()},
            signature=Signature.from_mlmodel(raw.get("signature")),
            run_id=raw.get("run_id"),
            model_id=raw.get("model_id"),
            artifact_path=raw.get("artifact_path"),
            saved_input_example_info=raw.get("saved_input_example_info"),
            utc_time_created=str(raw.get("utc_time_created", "")),
            extra={k: v for k, v in raw.items() if k not in known},
        )


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def pyfunc_conf(loader_module: str, data: str, *, path_key: str = "data", **extra: Any) -> dict[str, Any]:
    """The ``python_function`` block MLflow's ``pyfunc.load_model`` dispatches on: it passes the file
    (or folder) under ``path_key`` to ``<loader_module>._load_pyfunc``. Most flavors name it ``data``;
    MLflow 3's scikit-learn flavor writes ``model_path`` (with ``predict_fn``)."""
    return {
        path_key: data,
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "loader_module": loader_module,
        "python_version": python_version(),
        **extra,
    }
