"""The inference log: what every request asked, what it got, from which model version.

A request only appends a record to an in-memory buffer (a ``deque.append``); a background thread
turns the buffer into Parquet files every few seconds and writes them to the artifact store, so
the log never sits on a request's critical path. If the writer falls behind (the store is down or
slow), the oldest records beyond ``max_buffer`` are dropped and counted, rather than the server
running out of memory or slowing down.

The files' layout, columns and Arrow types are declared once, in :mod:`loopline.serving.log_schema`,
which monitoring reads them by too.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loopline.artifacts import ArtifactStore
from loopline.errors import NotFound
from loopline.serving import log_schema as ls
from loopline.serving.http import dumps

log = logging.getLogger("loopline.serving")


@dataclass(slots=True)
class Prediction:
    request_id: str
    timestamp_ms: int
    deployment: str
    model: str
    version: str
    role: str
    rows: int
    inputs: Any  # encoded to JSON on the writer thread, not on the request's
    outputs: Any
    latency_ms: float
    status: int
    error: str = ""


@dataclass(slots=True)
class Feedback:
    request_id: str
    timestamp_ms: int
    ground_truth: Any


def _json(value: Any) -> str:
    return dumps(value).decode()


class _Writer:
    """A buffer drained to Parquet by one daemon thread."""

    def __init__(
        self,
        store: ArtifactStore,
        write: Callable[[ArtifactStore, list[Any]], int],
        *,
        flush_interval: float,
        max_buffer: int,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self._write = write
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.on_drop = on_drop
        self._buffer: deque[Any] = deque()
        self._lock = threading.Lock()  # one flush at a time (the thread's, or close()'s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0

    def append(self, record: Any) -> None:
        self._buffer.append(record)
        if len(self._buffer) > self.max_buffer:
            try:
                self._buffer.popleft()
            except IndexError:
                return
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(1)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="loopline-inference-log", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the store is down: keep the records, try again next round
                log.exception("inference log: write failed; will retry")

    def flush(self) -> int:
        with self._lock:
            records = []
            while self._buffer:
                records.append(self._buffer.popleft())
            if not records:
                return 0
            try:
                n = self._write(self.store, records)
            except Exception:
                self._buffer.extendleft(reversed(records))
                raise
            self.written += n
            return n

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self.flush()
        except Exception:
            log.exception("inference log: final write failed; %d records lost", len(self._buffer))


_seq = itertools.count()


def _part_name(now_ms: int) -> str:
    return f"part-{now_ms}-{os.getpid()}-{next(_seq)}.parquet"


_CHUNK = 512


def _column(values: list[Any], kind: Any) -> Any:
    """A column built in small chunks: one ``pa.array`` call over 18,000 JSON strings holds the GIL
    for ~60 ms, which the event loop sees as a stall (measured: p99 8 ms → 127 ms under load)."""
    import pyarrow as pa

    return pa.chunked_array(
        [pa.array(values[i : i + _CHUNK], kind) for i in range(0, len(values), _CHUNK)], kind
    )


def _put_table(store: ArtifactStore, schema: Any, values: dict[str, list[Any]], path: str) -> None:
    """``values`` (column name → values) written as a Parquet file of ``schema``'s columns and types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([_column(values[f.name], f.type) for f in schema], schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    store.put_bytes(sink.getvalue(), path)


def _write_predictions(store: ArtifactStore, records: list[Prediction]) -> int:
    groups: dict[tuple[str, int], list[Prediction]] = {}
    for r in records:
        groups.setdefault((r.model, r.timestamp_ms // 3_600_000), []).append(r)
    now = int(time.time() * 1000)
    for (model, hours), rows in groups.items():
        t = dt.datetime.fromtimestamp(hours * 3600, dt.UTC)
        day, hour = t.strftime("%Y-%m-%d"), t.strftime("%H")
        values: dict[str, list[Any]] = {
            ls.REQUEST_ID: [r.request_id for r in rows],
            ls.TIMESTAMP: [r.timestamp_ms for r in rows],
            ls.DEPLOYMENT: [r.deployment for r in rows],
            ls.MODEL: [r.model for r in rows],
            ls.VERSION: [r.version for r in rows],
            ls.ROLE: [r.role for r in rows],
            ls.ROWS: [r.rows for r in rows],
            ls.INPUTS: [_json(r.inputs) for r in rows],
            ls.OUTPUTS: [_json(r.outputs) for r in rows],
            ls.LATENCY_MS: [r.latency_ms for r in rows],
            ls.STATUS: [r.status for r in rows],
            ls.ERROR: [r.error for r in rows],
        }
        path = f"{ls.predictions_dir(model)}/{ls.DATE}={day}/hour={hour}/{_part_name(now)}"
        _put_table(store, ls.prediction_schema(), values, path)
    return len(records)


def _write_feedback(store: ArtifactStore, records: list[Feedback]) -> int:
    groups: dict[int, list[Feedback]] = {}
    for r in records:
        groups.setdefault(r.timestamp_ms // 86_400_000, []).append(r)
    now = int(time.time() * 1000)
    for days, rows in groups.items():
        day = dt.datetime.fromtimestamp(days * 86400, dt.UTC).strftime("%Y-%m-%d")
        values: dict[str, list[Any]] = {
            ls.REQUEST_ID: [r.request_id for r in rows],
            ls.TIMESTAMP: [r.timestamp_ms for r in rows],
            ls.GROUND_TRUTH: [_json(r.ground_truth) for r in rows],
        }
        _put_table(store, ls.feedback_schema(), values, f"{ls.FEEDBACK}/{ls.DATE}={day}/{_part_name(now)}")
    return len(records)


class InferenceLog:
    """Predictions and feedback, appended without blocking and written as Parquet in the background."""

    def __init__(
        self,
        store: ArtifactStore,
        *,
        flush_interval: float = 5.0,
        max_buffer: int = 200_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.predictions = _Writer(
            store, _write_predictions, flush_interval=flush_interval, max_buffer=max_buffer, on_drop=on_drop
        )
        self.feedback = _Writer(
            store, _write_feedback, flush_interval=flush_interval, max_buffer=max_buffer, on_drop=on_drop
        )

    def start(self) -> None:
        # Import and exercise the Parquet writer now: done first by the writer thread under load, the
        # imports and codec set-up hold the GIL long enough to stall requests (~70 ms measured).
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"x": [1]}), io.BytesIO(), compression="zstd")
        self.predictions.start()
        self.feedback.start()

    def log_prediction(self, record: Prediction) -> None:
        self.predictions.append(record)

    def log_feedback(self, record: Feedback) -> None:
        self.feedback.append(record)

    def flush(self) -> None:
        self.predictions.flush()
        self.feedback.flush()

    def close(self) -> None:
        self.predictions.close()
        self.feedback.close()


def read_log(store: ArtifactStore, kind: str = "predictions", *, model: str | None = None) -> Any:
    """The log as one ``pyarrow.Table`` (empty if nothing was written yet). For monitoring and tests.

    ``model`` keeps one model's predictions (feedback is not kept per model).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "predictions":
        prefix = ls.PREDICTIONS if model is None else ls.predictions_dir(model)
    else:
        prefix = ls.FEEDBACK
    tables = []
    try:
        files = [f for f in store.walk(prefix) if f.path.endswith(".parquet")]
    except NotFound:
        files = []
    for f in sorted(files, key=lambda f: f.path):
        with store.open(f.path) as fh:
            # ParquetFile reads in this thread. read_table's async reader can drop its last hold on
            # our bytes in an Arrow worker, which then needs the GIL: at interpreter exit that
            # thread is killed mid-destructor and the process aborts ("terminate called…").
            tables.append(pq.ParquetFile(pa.BufferReader(fh.read())).read(use_threads=False))
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")
