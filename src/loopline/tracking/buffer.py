"""Metric buffering: ``log_metric`` appends to a queue and returns; a thread writes in batches.

Why: MLflow's client does a blocking HTTP round trip per ``log_metric`` (MLflow #3010, #5269),
about 5 ms each. Here a call costs an append (~1 µs); a background thread flushes every
``interval`` seconds, or sooner when the queue is long, as MLflow-sized batches (1,000 metrics).

Nothing is lost: ``flush()`` (called by ``end_run``, at interpreter exit and when a run's
``with`` block raises) writes everything queued and raises the error if the store refused it.
Points whose write failed for a transient reason go back to the queue and are retried.

Runs are buffered too (``PendingRun``): ``start_run`` names a run at once but writes it with its
first batch — at the first flush, at ``end_run`` (then the whole run is one request), or when its
ID is handed out — so a short run costs one round trip instead of three.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from loopline.errors import BackendUnavailable, InvalidInput, LooplineError
from loopline.tracking.names import RUN_NAME_TAG
from loopline.tracking.store import TrackingStore
from loopline.tracking.types import Metric, Param, RunStatus, RunTag
from loopline.tracking.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    validate_batch,
)

BATCH = 1000  # MLflow's per-request metric limit
_WAKE_AT = 5 * BATCH

Writer = Callable[[str, Sequence[Metric]], None]
_live: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


@dataclass
class PendingRun:
    """A run whose ID is given out but which is not in the store yet, with its first batch."""

    experiment_id: str
    name: str
    user: str
    start_time: int
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)

    def merge(self, run_id: str, params: Mapping[str, str], tags: Mapping[str, str]) -> None:
        """Add params and tags, refusing (with the store's messages) what the store would refuse."""
        validate_batch((), [Param(k, v) for k, v in params.items()], [RunTag(k, v) for k, v in tags.items()])
        for key, value in params.items():
            old = self.params.get(key)
            if old is not None and old != value:
                raise InvalidInput(
                    f"Changing param values is not allowed. Param with key='{key}' was already logged "
                    f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{value}'.",
                    hint="Params are immutable; log a metric or a tag for values that change.",
                )
        self.params.update(params)
        self.tags.update(tags)
        self.name = self.tags.get(RUN_NAME_TAG, self.name)


class DeferredRuns:
    """Runs named but not in the store yet; each is written once, with its first batch.

    ``lock`` is held while a run is written, so a call adding to that run waits for the write
    instead of racing it. Lock order: a ``MetricBuffer``'s flush lock, then this one, never the
    reverse (nothing here calls into a buffer).
    """

    def __init__(self, store: TrackingStore) -> None:
        self.store = store
        self.lock = threading.RLock()
        self._runs: dict[str, PendingRun] = {}

    def __contains__(self, run_id: object) -> bool:
        # Unlocked: a dict lookup is atomic, misses are the usual case, and a run leaves the dict
        # only once it is in the store (see ``create``).
        return run_id in self._runs

    def add(self, run_id: str, run: PendingRun) -> None:
        with self.lock:
            self._runs[run_id] = run

    def take(self, run_id: str) -> PendingRun | None:
        """Remove a deferred run (the caller writes it, or gives it back with ``restore``)."""
        with self.lock:
            return self._runs.pop(run_id, None)

    def restore(self, run_id: str, run: PendingRun) -> None:
        with self.lock:
            self._runs.setdefault(run_id, run)

    def write(
        self,
        run_id: str,
        run: PendingRun,
        metrics: Sequence[Metric] = (),
        status: RunStatus = RunStatus.RUNNING,
        end_time: int | None = None,
    ) -> None:
        """Create the run in the store, with ``metrics``, ended if ``status`` is terminal."""
        self.store.create_run(
            run.experiment_id,
            run.user,
            run.start_time,
            [RunTag(k, v) for k, v in run.tags.items()],
            run.name,
            run_id=run_id,
            params=[Param(k, v) for k, v in run.params.items()],
            metrics=metrics,
            status=status,
            end_time=end_time,
        )

    def room(self, run: PendingRun) -> int:
        """How many metrics fit in the run's first request beside its params."""
        return MAX_ENTITIES_PER_BATCH - len(run.params)

    def create(self, run_id: str, metrics: Sequence[Metric] = ()) -> Sequence[Metric]:
        """Write a deferred run with the first of ``metrics``; returns the points left to write the
        usual way (all of them when the run was in the store already)."""
        with self.lock:
            run = self._runs.get(run_id)
            if run is None:
                return metrics
            n = self.room(run)
            # The run stays listed until its write commits: a thread that finds it listed waits on
            # the lock, and one that does not may write to it. Popping first let the background
            # writer send points to a run not yet in the store, which refused them all.
            try:
                self.write(run_id, run, metrics[:n])
            except BackendUnavailable:
                raise  # still listed: retried at the next flush
            except BaseException:
                del self._runs[run_id]  # refused for good: the caller gets the store's error
                raise
            del self._runs[run_id]
            return metrics[n:]

    def create_all(self) -> None:
        """Write every deferred run, oldest first (a parent before its children)."""
        while self._runs:
            try:
                run_id = next(iter(self._runs))
            except (StopIteration, RuntimeError):  # emptied or changed by another thread meanwhile
                continue
            self.create(run_id)

    def extend(self, run_id: str, params: Mapping[str, str], tags: Mapping[str, str]) -> bool:
        """Add to a deferred run's first batch; False when the run is in the store (write it there)."""
        if run_id not in self._runs:
            return False
        with self.lock:
            run = self._runs.get(run_id)
            if run is None:
                return False
            if (
                len(run.params) + len(params) > MAX_PARAMS_PER_BATCH
                or len(run.tags) + len(tags) > MAX_TAGS_PER_BATCH
            ):
                self.create(run_id)  # the first batch is full: write it, the rest goes after
                return False
            run.merge(run_id, params, tags)
            return True


class MetricBuffer:
    """A queue of ``(run_id, Metric)`` drained by one daemon thread into ``write``.

    ``on_flush`` runs at the end of every flush, under the same lock (the client writes its
    pending runs there).
    """

    def __init__(
        self, write: Writer, interval: float = 0.5, *, on_flush: Callable[[], None] | None = None
    ) -> None:
        self._write = write
        self._on_flush = on_flush
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

    def start(self) -> None:
        """Make sure the background writer runs (it starts on the first point otherwise)."""
        if self._thread is None:
            self._start()

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
            stuck = bool(self._queue) or not self._flush_extra()
        if raise_errors:
            err = self._refused or (self._transient if stuck else None)
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

    def _flush_extra(self) -> bool:
        """Run ``on_flush``; False when the store is unreachable (it is retried at the next flush)."""
        if self._on_flush is None:
            return True
        try:
            self._on_flush()
        except BackendUnavailable as e:
            self._transient = e
            return False
        except LooplineError as e:
            self._refused = e
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
