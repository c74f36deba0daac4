"""map_in_slices: the order, the errors and the threads of many small jobs."""

from __future__ import annotations

import threading
import time

import pytest

from loopline.slices import map_in_slices


def test_results_come_back_in_the_order_of_the_items() -> None:
    items = list(range(1000))
    assert map_in_slices(lambda x: x * x, items, workers=3) == [x * x for x in items]


def test_the_work_is_spread_over_the_threads() -> None:
    seen: set[int] = set()

    def work(x: int) -> int:
        seen.add(threading.get_ident())
        time.sleep(0.001)  # releases the GIL, as the I/O this is for does
        return x

    assert map_in_slices(work, list(range(40)), workers=4) == list(range(40))
    assert len(seen) == 4
    assert threading.get_ident() not in seen


def test_one_worker_or_one_item_runs_on_the_calling_thread() -> None:
    me = threading.get_ident()
    assert map_in_slices(lambda x: threading.get_ident(), [1, 2, 3], workers=1) == [me, me, me]
    assert map_in_slices(lambda x: threading.get_ident(), [1], workers=8) == [me]
    assert map_in_slices(lambda x: x, [], workers=8) == []


def test_an_error_in_any_slice_is_raised_after_every_thread_stopped() -> None:
    finished: list[int] = []

    def work(x: int) -> int:
        if x == 5:
            raise FileNotFoundError(f"item {x}")
        time.sleep(0.001)
        finished.append(x)
        return x

    before = threading.active_count()
    with pytest.raises(FileNotFoundError, match="item 5"):
        map_in_slices(work, list(range(20)), workers=2)
    assert threading.active_count() == before  # both threads joined before the raise
    # the other slice (10..19) ran to its end; the failing one stopped at its error
    assert set(range(10, 20)) <= set(finished)
    assert not set(range(5, 10)) & set(finished)
