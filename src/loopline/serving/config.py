"""How ``loopline serve`` is configured: one frozen object, read from ``LOOPLINE_SERVE_*`` variables.

The CLI writes the variables and uvicorn's worker processes read them back (a worker is a fresh
interpreter, so the environment is how the options reach it).

==================================  ============================================================
variable                            meaning (default)
==================================  ============================================================
``LOOPLINE_SERVE_MODEL_URI``        model to serve: ``models:/name@alias``, ``models:/name/3``, a folder
``LOOPLINE_SERVE_DEPLOYMENT``       or a deployment's name (see ``loopline deploy list``)
``LOOPLINE_SERVE_NAME``             the OIP model name for a folder (default: the registered name)
``LOOPLINE_SERVE_VERSION``          the version to report for a folder
``LOOPLINE_SERVE_MAX_BATCH_SIZE``   rows per predict call (``64``; ``1`` turns batching off)
``LOOPLINE_SERVE_MAX_WAIT_MS``      longest a request is held for others to join (``2``)
``LOOPLINE_SERVE_MAX_QUEUE_ROWS``   queued rows beyond which requests get 429 (``8192``)
``LOOPLINE_SERVE_MAX_IN_FLIGHT``   inference requests a worker handles at once; more get 429 with
                                    ``Retry-After`` at once (``0``: no limit)
``LOOPLINE_SERVE_POLL_INTERVAL``    seconds between registry/deployment polls (``5``; ``0``: never)
``LOOPLINE_SERVE_INFERENCE_LOG``    ``1`` to write the inference log, ``0`` not to (``1``)
``LOOPLINE_SERVE_LOG_FLUSH``        seconds between inference-log writes (``5``)
``LOOPLINE_SERVE_MAX_BODY_MB``      largest request body accepted (``64``)
``LOOPLINE_SERVE_LOAD_BEFORE_SERVING``  ``1``: accept connections only once loaded (``--workers`` > 1)
``LOOPLINE_SERVE_FEATURE_SERVICE``  a feature service: requests carry entity keys, the server adds
                                    the service's online features (see ``serving/features.py``)
``LOOPLINE_SERVE_AUTH``             ``1``: predictions and feedback need a bearer token (``0``)
``LOOPLINE_ALLOW_PICKLE``           ``1`` to load pickled models (their code runs on load)
==================================  ============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from loopline.errors import InvalidInput
from loopline.serving.batching import BatchConfig

PREFIX = "LOOPLINE_SERVE_"
_ENV = {
    "model_uri": "MODEL_URI",
    "deployment": "DEPLOYMENT",
    "name": "NAME",
    "version": "VERSION",
    "max_batch_size": "MAX_BATCH_SIZE",
    "max_wait_ms": "MAX_WAIT_MS",
    "max_queue_rows": "MAX_QUEUE_ROWS",
    "max_in_flight": "MAX_IN_FLIGHT",
    "poll_interval": "POLL_INTERVAL",
    "inference_log": "INFERENCE_LOG",
    "log_flush_interval": "LOG_FLUSH",
    "max_body_mb": "MAX_BODY_MB",
    "load_before_serving": "LOAD_BEFORE_SERVING",
    "feature_service": "FEATURE_SERVICE",
    "auth": "AUTH",
}


@dataclass(frozen=True)
class ServeConfig:
    model_uri: str | None = None
    deployment: str | None = None
    name: str | None = None
    version: str | None = None
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_queue_rows: int = 8192
    max_in_flight: int = 0  # inference requests handled at once per worker (0: unlimited)
    poll_interval: float = 5.0
    inference_log: bool = True
    log_flush_interval: float = 5.0
    max_body_mb: float = 64.0
    allow_pickle: bool = False
    load_before_serving: bool = False  # set with several workers: accept only once loaded
    feature_service: str | None = None  # requests carry entity keys; the server fetches these features
    auth: bool = False  # predictions need a bearer token of a viewer of the workspace (serving/auth.py)

    @property
    def batching(self) -> BatchConfig:
        try:
            return BatchConfig(
                self.max_batch_size, self.max_wait_ms, max(self.max_queue_rows, self.max_batch_size)
            )
        except ValueError as e:
            raise InvalidInput(f"Invalid batching option: {e}.") from None

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * (1 << 20))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeConfig:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "allow_pickle":
                values[f.name] = env.get("LOOPLINE_ALLOW_PICKLE") == "1"
                continue
            raw = env.get(PREFIX + _ENV[f.name])
            if raw is None or raw == "":
                continue
            default = getattr(cls(), f.name)
            kind: type[Any] = type(default) if default is not None else str
            try:
                if kind is bool:
                    values[f.name] = raw.lower() in ("1", "true", "yes", "on")
                elif kind is int:
                    values[f.name] = int(raw)
                elif kind is float:
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise InvalidInput(
                    f"{PREFIX + _ENV[f.name]}={raw!r} is not a valid {kind.__name__}."
                ) from None
        return cls(**values)  # type: ignore[arg-type]  # each value was converted to its field's type above

    def to_env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "allow_pickle":
                if value:
                    out["LOOPLINE_ALLOW_PICKLE"] = "1"
                continue
            if value is None:
                continue
            out[PREFIX + _ENV[f.name]] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out
