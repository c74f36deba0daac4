"""Many small jobs on a few threads: one contiguous slice of the list per thread.

For jobs whose time goes to system calls and C code that release the GIL (reads, BLAKE3,
copies, links). A pool with a task per job costs more in hand-offs than it overlaps when the
jobs take tens of microseconds; a slice per thread does not. Stdlib-only and without ``typing``
at run time: `loopline data add` imports it.
"""

from __future__ import annotations

import os
import threading

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeVar

    _T = TypeVar("_T")
    _R = TypeVar("_R")

# Local disks and page-cache copies stop scaling past a few threads; 2 cores gain ~2x.
LOCAL_WORKERS = min(os.cpu_count() or 1, 4)


def map_in_slices(work: Callable[[_T], _R], items: Sequence[_T], workers: int = LOCAL_WORKERS) -> list[_R]:
    """``[work(x) for x in items]``, in order, on up to ``workers`` threads.

    The first exception any thread meets is raised here once every thread has stopped; each
    thread stops at its own first error, so some later items may have been done, as in a loop
    that is not interrupted at once.
    """
    n = len(items)
    workers = min(workers, n)
    if workers <= 1:
        return [work(x) for x in items]
    out: list[_R] = [None] * n  # type: ignore[list-item]  # every slot is filled or we raise
    errors: list[BaseException] = []

    def run(lo: int, hi: int) -> None:
        try:
            for i in range(lo, hi):
                out[i] = work(items[i])
        except BaseException as e:  # re-raised on the caller's thread below
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=(k * n // workers, (k + 1) * n // workers), daemon=True)
        for k in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out
