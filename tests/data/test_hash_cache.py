"""The machine's hash cache (one SQLite file) opened by many processes or threads at once."""

from __future__ import annotations

import threading
from pathlib import Path

from loopline.data.hashing import HashCache


def _open_and_write(cache: HashCache, start: threading.Barrier, errors: list[BaseException]) -> None:
    start.wait()
    try:  # the first call opens the file: one thread's first write meets another's first open
        cache.track(f"/data/{id(cache)}", "images", 1, "0" * 64, None)
        cache.tracked()
    except BaseException as e:  # collected: a thread's exception would otherwise be lost
        errors.append(e)


def test_many_first_opens_of_a_new_cache_at_once_all_succeed(tmp_path: Path) -> None:
    """Switching a new file to WAL needs it to itself, and SQLite says "locked" at once instead of
    waiting: clients racing to open a fresh cache (concurrent first adds) must not fail on it."""
    for round_ in range(60):  # before the fix, about one round in eight failed
        path = tmp_path / f"round{round_}" / "hashes.sqlite"
        caches = [HashCache(path) for _ in range(4)]
        start = threading.Barrier(len(caches))
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_open_and_write, args=(c, start, errors)) for c in caches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in caches:
            c.close()
        assert errors == []
        assert len(caches[0].tracked()) == len(caches)
