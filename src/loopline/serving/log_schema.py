"""The inference log's layout and columns: the one declaration its writer and its readers share.

Serving writes the log (:mod:`loopline.serving.inference_log`); monitoring, a layer above, reads it
(:mod:`loopline.monitoring.logwindow`). Both take the paths, the column names and the Arrow types
from here. Under the artifact root (Hive-style partitions, so ``pyarrow.dataset`` reads it)::

    inference-log/predictions/model=<name>/date=<YYYY-MM-DD>/hour=<HH>/part-<ms>-<pid>-<n>.parquet
    inference-log/feedback/date=<YYYY-MM-DD>/part-<ms>-<pid>-<n>.parquet

``inputs``, ``outputs`` and ``ground_truth`` hold JSON text (``inputs`` as ``{"columns": [...],
"data": [[...]]}`` for tabular models); feedback joins predictions on ``request_id``. The Arrow
schemas are built on first use, so importing this module does not import pyarrow.
"""

from __future__ import annotations

import functools
from typing import Any

ROOT = "inference-log"
PREDICTIONS = f"{ROOT}/predictions"
FEEDBACK = f"{ROOT}/feedback"
DATE = "date"  # the day partition of both (``date=<YYYY-MM-DD>``)

REQUEST_ID = "request_id"
TIMESTAMP = "timestamp"
DEPLOYMENT = "deployment"
MODEL = "model"
VERSION = "version"
ROLE = "role"  # primary | shadow
ROWS = "rows"
INPUTS = "inputs"
OUTPUTS = "outputs"
LATENCY_MS = "latency_ms"
STATUS = "status"  # the HTTP status the request got
ERROR = "error"
GROUND_TRUTH = "ground_truth"


def predictions_dir(model: str) -> str:
    """The folder of one model's predictions (its ``date=``/``hour=`` partitions below it)."""
    return f"{PREDICTIONS}/{MODEL}={model}"


@functools.cache
def prediction_schema() -> Any:
    """The Arrow schema of a predictions file: these columns, in this order."""
    import pyarrow as pa

    return pa.schema(
        [
            (REQUEST_ID, pa.string()),
            (TIMESTAMP, pa.timestamp("ms", tz="UTC")),
            (DEPLOYMENT, pa.string()),
            (MODEL, pa.string()),
            (VERSION, pa.string()),
            (ROLE, pa.string()),
            (ROWS, pa.int32()),
            (INPUTS, pa.string()),
            (OUTPUTS, pa.string()),
            (LATENCY_MS, pa.float64()),
            (STATUS, pa.int16()),
            (ERROR, pa.string()),
        ]
    )


@functools.cache
def feedback_schema() -> Any:
    """The Arrow schema of a feedback file."""
    import pyarrow as pa

    return pa.schema(
        [
            (REQUEST_ID, pa.string()),
            (TIMESTAMP, pa.timestamp("ms", tz="UTC")),
            (GROUND_TRUTH, pa.string()),
        ]
    )
