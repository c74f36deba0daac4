"""Adaptive micro-batching: concurrent requests merged into one ``predict`` call, results split back.

The rules, each a complaint about BentoML's dispatcher turned around (user asks #23-25):

* **A lone request is never held back.** When a batch slot is free and no other client has been
  seen recently, a request is dispatched the moment it arrives: batching costs one thread hop.
* **Batches form by themselves under load.** While a batch runs, arrivals queue; when it finishes,
  everything queued (up to ``max_batch_size`` rows) goes as the next batch. No timer is needed for
  this, and it is what makes throughput grow with concurrency.
* **``max_wait_ms`` is a bound, not a window.** A request is held to let others join only while
  clients that were concurrent within the last second have not yet sent their next request, and
  never longer than ``max_wait_ms``. ``max_wait_ms=0`` turns holding off.
* **``max_batch_size`` counts rows**, not requests. A request never shares a batch that would go
  over it; a request bigger than it is cut into chunks by the caller (:mod:`loopline.serving.model`).
* **Overload is explicit.** The queue holds at most ``max_queue_rows`` rows; past that ``submit``
  raises :class:`~loopline.serving.http.Overloaded` (HTTP 429 + ``Retry-After``) at once. Nothing
  queued is ever cancelled for being slow: under ordinary load no request is shed.
* **A bad request does not sink its batch.** If a batch fails, its requests are retried one by one
  so that only the one that fails gets the error.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loopline.serving.http import Overloaded

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """How requests are merged. See the module docstring for what each bound means."""

    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_queue_rows: int = 8192
    concurrency: int = 1  # batches in flight at once (prediction threads)

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if self.max_wait_ms < 0:
            raise ValueError("max_wait_ms must not be negative")
        if self.max_queue_rows < self.max_batch_size:
            raise ValueError("max_queue_rows must be at least max_batch_size")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")


def hold_seconds(
    *, max_wait: float, max_rows: int, queued_rows: int, oldest_age: float, active: int, peak: int
) -> float:
    """How long to hold the queue before dispatching it (0 = now). Pure, so it is tested alone.

    ``active`` requests are waiting or running now; ``peak`` is the most that were at once within the
    last second. Holding only makes sense while some of those recent clients have yet to come back.
    """
    if max_wait <= 0 or queued_rows >= max_rows or active >= peak:
        return 0.0
    return max(0.0, max_wait - oldest_age)


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


@dataclass(slots=True)
class _Pending(Generic[T, R]):
    item: T
    n: int
    future: asyncio.Future[R]
    queued_at: float


class Batcher(Generic[T, R]):
    """Queues items (each ``n`` rows) and runs them through ``run`` in batches, on worker threads.

    ``run(items)`` gets a list of items and must return one result per item, in order.
    """

    def __init__(
        self,
        run: Callable[[list[T]], Sequence[R]],
        config: BatchConfig | None = None,
        *,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_batch: Callable[[int, float], None] | None = None,
        peak_window: float = 1.0,
    ) -> None:
        self.run = run
        self.config = config or BatchConfig()
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="loopline-predict"
        )
        self.clock = clock
        self.on_batch = on_batch
        self.peak_window = peak_window
        self._queue: deque[_Pending[T, R]] = deque()
        self.queued_rows = 0
        self.running = 0
        self.active = 0  # submitted and not yet answered
        self._peak_now = 0  # the peak of ``active`` in the current and the previous window
        self._peak_prev = 0
        self._window_start = clock()
        self._timer: asyncio.TimerHandle | None = None
        self._rate = 0.0  # rows/s, smoothed: for Retry-After
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = False

    # ---- the caller's side -----------------------------------------------------------------

    async def submit(self, item: T, n: int) -> R:
        """Queue ``item`` (``n`` rows) and wait for its result."""
        cfg = self.config
        if self.queued_rows + n > cfg.max_queue_rows:
            raise Overloaded(
                f"The server is overloaded: {self.queued_rows} rows are queued (limit {cfg.max_queue_rows}).",
                retry_after=self.retry_after(),
                hint="Retry after the number of seconds in the Retry-After header, or add workers.",
            )
        loop = asyncio.get_running_loop()
        pending: _Pending[T, R] = _Pending(item, n, loop.create_future(), self.clock())
        self._queue.append(pending)
        self.queued_rows += n
        self.active += 1
        self._idle.clear()
        self._note_peak()
        self._pump()
        try:
            return await pending.future
        finally:
            self.active -= 1
            if self.active == 0:
                self._idle.set()

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained (at least 1)."""
        if self._rate <= 0:
            return 1
        return max(1, min(60, math.ceil(self.queued_rows / self._rate)))

    async def drain(self) -> None:
        """Wait until every submitted item has been answered."""
        await self._idle.wait()

    def close(self) -> None:
        """Stop the prediction threads once the work in flight is done (they finish it first)."""
        self.closed = True
        if self._own_executor:
            self.executor.shutdown(wait=False)

    # ---- the dispatcher --------------------------------------------------------------------

    def _note_peak(self) -> None:
        now = self.clock()
        if now - self._window_start > self.peak_window:
            self._peak_prev = self._peak_now if now - self._window_start < 2 * self.peak_window else 0
            self._peak_now = 0
            self._window_start = now
        self._peak_now = max(self._peak_now, self.active)

    @property
    def peak(self) -> int:
        return max(self._peak_now, self._peak_prev)

    def _pump(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.running < self.config.concurrency and self._queue:
            self._skip_cancelled()
            if not self._queue:
                return
            wait = hold_seconds(
                max_wait=self.config.max_wait_ms / 1000,
                max_rows=self.config.max_batch_size,
                queued_rows=self.queued_rows,
                oldest_age=self.clock() - self._queue[0].queued_at,
                active=self.active,
                peak=self.peak,
            )
            if wait > 0:
                self._timer = asyncio.get_running_loop().call_later(wait, self._pump)
                return
            self._dispatch()

    def _skip_cancelled(self) -> None:
        while self._queue and self._queue[0].future.done():
            self.queued_rows -= self._queue.popleft().n

    def _dispatch(self) -> None:
        batch: list[_Pending[T, R]] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if head.future.done():  # its caller went away while it waited
                self.queued_rows -= self._queue.popleft().n
                continue
            if batch and rows + head.n > self.config.max_batch_size:
                break
            self._queue.popleft()
            self.queued_rows -= head.n
            batch.append(head)
            rows += head.n
        if not batch:
            return
        self.running += 1
        started = self.clock()
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self.executor, self._execute, [p.item for p in batch])
        done.add_done_callback(lambda f: self._finish(batch, rows, started, f))

    def _execute(self, items: list[T]) -> list[R | _Failed]:
        """On a prediction thread: the batch, or each item alone if the batch fails."""
        try:
            results = list(self.run(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            return list(results)
        except Exception as e:
            if len(items) == 1:
                return [_Failed(e)]
        out: list[R | _Failed] = []
        for item in items:  # isolate the request that broke the batch
            try:
                out.append(self.run([item])[0])
            except Exception as e:
                out.append(_Failed(e))
        return out

    def _finish(
        self, batch: list[_Pending[T, R]], rows: int, started: float, done: asyncio.Future[list[R | _Failed]]
    ) -> None:
        self.running -= 1
        elapsed = self.clock() - started
        if elapsed > 0:
            rate = rows / elapsed
            self._rate = rate if self._rate == 0 else 0.8 * self._rate + 0.2 * rate
        if self.on_batch is not None:
            self.on_batch(rows, elapsed)
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        results: list[Any] = [_Failed(error)] * len(batch) if error is not None else done.result()
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, _Failed):
                pending.future.set_exception(result.error)
            else:
                pending.future.set_result(result)
        self._pump()
