"""The batcher's rules, driven deterministically: a manual executor runs a batch only when told to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, Future
from typing import Any

import pytest

from loopline.serving.batching import BatchConfig, Batcher, hold_seconds
from loopline.serving.http import Overloaded


class ManualExecutor(Executor):
    """Holds each submitted batch until ``release()``: the test decides when predict "finishes"."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        f: Future[Any] = Future()
        self.waiting.append((f, fn, args))
        return f

    def release(self) -> None:
        f, fn, args = self.waiting.pop(0)
        try:
            f.set_result(fn(*args))
        except BaseException as e:
            f.set_exception(e)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def doubler(batches: list[list[int]]) -> Callable[[list[int]], list[int]]:
    def fn(items: list[int]) -> list[int]:
        batches.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * 2 for i in items]

    return fn


def test_a_lone_request_is_dispatched_at_once_even_with_a_long_max_wait() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        batches: list[list[int]] = []
        b: Batcher[int, int] = Batcher(doubler(batches), BatchConfig(max_wait_ms=10_000), executor=ex)
        task = asyncio.ensure_future(b.submit(21, 1))
        await settle()
        assert len(ex.waiting) == 1  # no timer: it went to the executor straight away
        ex.release()
        assert await asyncio.wait_for(task, 1) == 42

    run(scenario())


def test_requests_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        batches: list[list[int]] = []
        b: Batcher[int, int] = Batcher(
            doubler(batches), BatchConfig(max_batch_size=8, max_wait_ms=0), executor=ex
        )
        first = asyncio.ensure_future(b.submit(1, 1))
        await settle()
        rest = [asyncio.ensure_future(b.submit(i, 1)) for i in range(2, 7)]
        await settle()
        assert len(ex.waiting) == 1 and b.queued_rows == 5  # queued behind the running batch
        ex.release()
        await settle()
        assert len(ex.waiting) == 1  # the five went together as soon as the slot freed
        ex.release()
        assert await first == 2
        assert [await t for t in rest] == [4, 6, 8, 10, 12]  # each caller gets its own answer
        assert batches == [[1], [2, 3, 4, 5, 6]]

    run(scenario())


def test_max_batch_size_counts_rows_not_requests() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        seen: list[list[int]] = []
        b: Batcher[int, int] = Batcher(
            doubler(seen), BatchConfig(max_batch_size=8, max_wait_ms=0), executor=ex
        )
        blocker = asyncio.ensure_future(b.submit(0, 1))
        await settle()
        tasks = [asyncio.ensure_future(b.submit(i, 3)) for i in (1, 2, 3, 4)]  # 4 requests x 3 rows
        await settle()
        for _ in range(3):
            ex.release()
            await settle()
        await asyncio.gather(blocker, *tasks)
        assert seen == [[0], [1, 2], [3, 4]]  # 3+3 <= 8 < 3+3+3

    run(scenario())


def test_a_full_queue_answers_overloaded_with_retry_after_and_ordinary_load_is_never_shed() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        b: Batcher[int, int] = Batcher(
            doubler([]), BatchConfig(max_batch_size=4, max_wait_ms=0, max_queue_rows=16), executor=ex
        )
        running = asyncio.ensure_future(b.submit(0, 1))
        await settle()
        queued = [asyncio.ensure_future(b.submit(i, 1)) for i in range(16)]  # exactly the bound
        await settle()
        assert not any(t.done() for t in queued)
        with pytest.raises(Overloaded) as err:
            await b.submit(99, 1)
        assert err.value.status_code == 429 and err.value.retry_after >= 1
        while ex.waiting:
            ex.release()
            await settle()
        assert [await t for t in queued] == [i * 2 for i in range(16)]  # none of the queued was dropped
        await running

    run(scenario())


def test_a_failing_request_does_not_fail_the_others_in_its_batch() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        batches: list[list[int]] = []
        b: Batcher[int, int] = Batcher(doubler(batches), BatchConfig(max_wait_ms=0), executor=ex)
        blocker = asyncio.ensure_future(b.submit(0, 1))
        await settle()
        good, bad, other = (asyncio.ensure_future(b.submit(i, 1)) for i in (5, -1, 7))
        await settle()
        ex.release()
        await settle()
        ex.release()
        assert await good == 10 and await other == 14
        with pytest.raises(ValueError, match="negative"):
            await bad
        assert batches[1] == [5, -1, 7] and batches[2:] == [[5], [-1], [7]]  # retried one by one
        await blocker

    run(scenario())


def test_a_cancelled_caller_is_skipped() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        batches: list[list[int]] = []
        b: Batcher[int, int] = Batcher(doubler(batches), BatchConfig(max_wait_ms=0), executor=ex)
        blocker = asyncio.ensure_future(b.submit(0, 1))
        await settle()
        gone = asyncio.ensure_future(b.submit(1, 1))
        kept = asyncio.ensure_future(b.submit(2, 1))
        await settle()
        gone.cancel()
        await settle()
        ex.release()
        await settle()
        ex.release()
        assert await kept == 4
        assert batches == [[0], [2]]
        await blocker

    run(scenario())


def test_hold_only_while_recently_seen_clients_are_missing_and_never_past_max_wait() -> None:
    common = {"max_wait": 0.002, "max_rows": 64}
    # One client (peak 1): never held, however fast it sends.
    assert hold_seconds(**common, queued_rows=1, oldest_age=0.0, active=1, peak=1) == 0
    # Sixteen clients were concurrent a moment ago, four are back: hold for the rest of the window.
    assert hold_seconds(**common, queued_rows=4, oldest_age=0.0005, active=4, peak=16) == pytest.approx(
        0.0015
    )
    # All sixteen are back: go now.
    assert hold_seconds(**common, queued_rows=16, oldest_age=0.0005, active=16, peak=16) == 0
    # The window is used up: go.
    assert hold_seconds(**common, queued_rows=4, oldest_age=0.003, active=4, peak=16) == 0
    # A full batch: go.
    assert hold_seconds(max_wait=0.002, max_rows=4, queued_rows=4, oldest_age=0, active=4, peak=16) == 0
    # max_wait_ms=0: never hold.
    assert hold_seconds(max_wait=0, max_rows=64, queued_rows=1, oldest_age=0, active=1, peak=16) == 0


def test_holding_gathers_the_returning_clients_into_one_batch() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        batches: list[list[int]] = []
        b: Batcher[int, int] = Batcher(doubler(batches), BatchConfig(max_wait_ms=5_000), executor=ex)
        # Four concurrent clients: the first goes alone (nobody seen before), three queue behind it.
        first = [asyncio.ensure_future(b.submit(i, 1)) for i in range(4)]
        await settle()
        ex.release()
        await settle()
        ex.release()
        await asyncio.gather(*first)
        assert b.peak == 4
        # They come back one by one: held (the peak says three more are coming), then sent together.
        again = []
        for i in range(4):
            again.append(asyncio.ensure_future(b.submit(10 + i, 1)))
            await settle()
            assert len(ex.waiting) == (1 if i == 3 else 0)
        ex.release()
        assert [await t for t in again] == [20, 22, 24, 26]
        assert batches[-1] == [10, 11, 12, 13]

    run(scenario())


def test_holding_gives_up_after_max_wait() -> None:
    async def scenario() -> None:
        ex = ManualExecutor()
        b: Batcher[int, int] = Batcher(doubler([]), BatchConfig(max_wait_ms=20), executor=ex)
        warm = [asyncio.ensure_future(b.submit(i, 1)) for i in range(3)]
        await settle()
        while ex.waiting or not all(t.done() for t in warm):
            if ex.waiting:
                ex.release()
            await settle()
        lone = asyncio.ensure_future(b.submit(5, 1))  # the other two never come back
        await settle()
        assert not ex.waiting
        await asyncio.sleep(0.05)
        assert len(ex.waiting) == 1
        ex.release()
        assert await lone == 10

    run(scenario())


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        BatchConfig(max_batch_size=0)
    with pytest.raises(ValueError):
        BatchConfig(max_batch_size=64, max_queue_rows=10)
    with pytest.raises(ValueError):
        BatchConfig(max_wait_ms=-1)
