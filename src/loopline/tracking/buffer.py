"""Metric buffering: ``log_metric`` appends to a queue and returns; a thread writes in batches.

Why: MLflow's client does a blocking HTTP round trip per ``log_metric`` (MLflow #3010, #5269),
about 5 ms each. Here a call costs an append (~1 µs); a background thread flushes every
``interval`` seconds, or sooner when the queue is long, as MLflow-sized batches (1,000 metrics).

Nothing is lost: ``flush()`` (called by ``end_run``, at interpreter exit and when a run's
``with`` block raises) writes everything queued and raises the error if the store refused it.
Points whose write failed for a transient reason go back to the queue and are retried.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence

from loopline.entities import Metric
from loopline.errors import BackendUnavailable, LooplineError

BATCH = 1000  # MLflow's per-request metric limit
_WAKE_AT = 5 * BATCH

Writer = Callable[[str, Sequence[Metric]], None]
_live: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


class MetricBuffer:
    """A queue of ``(run_id, Metric)`` drained by one daemon thread into ``write``."""

    def __init__(self, write: Writer, interval: float = 0.5) -> None:
        self._write = write
        self._interval = interval
        self._queue: deque[tuple[str, Metric]] = deque()
        self._flush_lock = threading.Lock()  # one writer at a time keeps batches in order
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._refused: LooplineError | None = None
        self._transient: BackendUnavailable | None = None
        _live.add(self)

    def add(self, run_id: str, metric: Metric) -> None:
        self._queue.append((run_id, metric))  # deque.append is atomic under the GIL
        if self._thread is None:
            self._start()
        elif len(self._queue) >= _WAKE_AT:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._queue)

    def _start(self) -> None:
        with self._flush_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="loopline-metrics", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        backoff = self._interval
        while not self._stop:
            self._wake.wait(backoff)
            self._wake.clear()
            self.flush(raise_errors=False)
            backoff = min(backoff * 2, 10.0) if self._transient else self._interval

    def flush(self, *, raise_errors: bool = True) -> None:
        """Write everything queued now. Raises the store's error if a write was refused."""
        with self._flush_lock:
            while self._queue and self._write_some():
                pass
        if raise_errors:
            err = self._refused or (self._transient if self._queue else None)
            self._refused = None
            if err is not None:
                raise err

    def _write_some(self) -> bool:
        """Write one drained slice; False when the store is unreachable (the slice is re-queued)."""
        batch = self._drain()
        chunks = [
            (run_id, ms[i : i + BATCH]) for run_id, ms in batch.items() for i in range(0, len(ms), BATCH)
        ]
        for n, (run_id, chunk) in enumerate(chunks):
            try:
                self._write(run_id, chunk)
            except BackendUnavailable as e:
                self._transient = e
                self._queue.extendleft(reversed([(r, m) for r, c in chunks[n:] for m in c]))
                return False
            except LooplineError as e:
                self._refused = e  # refused for good (bad value, deleted run): retrying cannot help
        self._transient = None
        return True

    def take(self, run_id: str) -> list[Metric]:
        """Remove and return the points queued for ``run_id`` (the caller writes them itself)."""
        with self._flush_lock:  # the background writer is not mid-batch while we sort the queue
            mine: list[Metric] = []
            others: list[tuple[str, Metric]] = []
            for _ in range(len(self._queue)):
                item = self._queue.popleft()
                (mine.append(item[1]) if item[0] == run_id else others.append(item))
            self._queue.extendleft(reversed(others))  # points added meanwhile stay behind these
            return mine

    def _drain(self) -> dict[str, list[Metric]]:
        out: dict[str, list[Metric]] = {}
        for _ in range(min(len(self._queue), 50 * BATCH)):
            run_id, metric = self._queue.popleft()
            out.setdefault(run_id, []).append(metric)
        return out

    def close(self, timeout: float = 30.0) -> None:
        """Flush, retrying transient failures for up to ``timeout`` seconds, then stop the thread."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.flush()
                break
            except BackendUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self._stop = True
        self._wake.set()


@atexit.register
def _flush_all_at_exit() -> None:
    for buf in list(_live):
        try:
            buf.close(timeout=10.0)
        except Exception as e:  # at exit there is nobody to raise to: say what was lost
            import sys

            print(f"loopline: could not write {len(buf)} buffered metrics: {e}", file=sys.stderr)
