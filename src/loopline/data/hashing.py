"""Hashing trees of files fast: in parallel, and only what changed since it was last hashed.

A file's digest is cached by its stat fingerprint (device, inode, size, mtime in ns) in a small
SQLite file per machine, as DVC and git do: re-adding a directory of 10,000 unchanged files stats
them and hashes none. A file whose fingerprint moved is hashed again, so an in-place edit is
always seen (an edit within the same nanosecond and size is the one blind spot of every such
cache).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from loopline.artifacts.blobs import hash_file
from loopline.errors import InvalidInput, NotFound

# Threads for transfers to and from remote stores, which wait on the network.
WORKERS = min(8, (os.cpu_count() or 2) * 2)
_SKIP_DIRS = {".git", ".loopline", "__pycache__", ".ipynb_checkpoints", ".dvc"}


@dataclass(frozen=True, slots=True)
class LocalFile:
    rel: str  # '/'-separated, relative to the tree's root ("" when the tree is one file)
    path: str  # absolute
    size: int
    fingerprint: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def walk(root: Path) -> list[LocalFile]:
    """Every regular file under ``root`` (or ``root`` itself), sorted by relative path."""
    if not root.exists():
        raise NotFound(f"No file or folder at {str(root)!r}.", hint="Check the path; it is relative to here.")
    if root.is_file():
        st = root.stat()
        return [LocalFile("", str(root.resolve()), st.st_size, _fp(st))]
    if not root.is_dir():
        raise InvalidInput(f"{str(root)!r} is neither a file nor a folder.")
    out: list[LocalFile] = []
    base = str(root.resolve())
    stack = [base]
    while stack:
        top = stack.pop()
        with os.scandir(top) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in _SKIP_DIRS:
                        stack.append(entry.path)
                elif entry.is_file():  # follows symlinks to files, as a reader would
                    st = entry.stat()
                    rel = os.path.relpath(entry.path, base).replace(os.sep, "/")
                    out.append(LocalFile(rel, entry.path, st.st_size, _fp(st)))
    if not out:
        raise InvalidInput(f"The folder {str(root)!r} holds no files.", hint="Add a folder with data in it.")
    out.sort(key=lambda f: f.rel)
    return out


def _fp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class HashCache:
    """Digests by stat fingerprint, in one SQLite file shared by every process of this machine."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER,"
                " size INTEGER, mtime_ns INTEGER, digest TEXT NOT NULL)"
            )
            # What this machine last added or checked out at each path: `loopline data status`
            # compares the path's content with it, as `dvc status` does with its .dvc files.
            db.execute(
                "CREATE TABLE IF NOT EXISTS tracked (path TEXT PRIMARY KEY, name TEXT NOT NULL,"
                " version INTEGER NOT NULL, digest TEXT NOT NULL, single TEXT)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def lookup(self, files: list[LocalFile]) -> dict[str, str]:
        """Cached digests of the files whose fingerprint is unchanged, by absolute path."""
        if not files:
            return {}
        found: dict[str, str] = {}
        with closing(self._connect()) as db:
            if len(files) > 200:  # one scan beats thousands of point lookups
                rows = db.execute("SELECT path, dev, ino, size, mtime_ns, digest FROM hashes")
                want = {f.path: f.fingerprint for f in files}
                for path, dev, ino, size, mtime, digest in rows:
                    if want.get(path) == (dev, ino, size, mtime):
                        found[path] = digest
            else:
                for f in files:
                    row = db.execute(
                        "SELECT dev, ino, size, mtime_ns, digest FROM hashes WHERE path = ?", (f.path,)
                    ).fetchone()
                    if row and tuple(row[:4]) == f.fingerprint:
                        found[f.path] = row[4]
        return found

    def store(self, hashed: list[tuple[LocalFile, str]]) -> None:
        if not hashed:
            return
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)",
                [(f.path, *f.fingerprint, d) for f, d in hashed],
            )
            db.execute("COMMIT")

    def track(self, path: str, name: str, version: int, digest: str, single: str | None) -> None:
        """Remember that ``path`` holds version ``version`` of ``name`` (``single``: its one file's name)."""
        with closing(self._connect()) as db:
            db.execute(
                "INSERT OR REPLACE INTO tracked VALUES (?, ?, ?, ?, ?)", (path, name, version, digest, single)
            )

    def tracked(self) -> list[tuple[str, str, int, str, str | None]]:
        with closing(self._connect()) as db:
            return [
                tuple(r)
                for r in db.execute("SELECT path, name, version, digest, single FROM tracked ORDER BY path")
            ]


def hash_files(
    files: list[LocalFile], cache: HashCache | None, progress: Callable[[int], None] | None = None
) -> dict[str, str]:
    """BLAKE3 of every file (by absolute path), from the cache where the file has not changed."""
    digests = cache.lookup(files) if cache else {}
    todo = [f for f in files if f.path not in digests]
    if progress:
        progress(sum(f.size for f in files if f.path in digests))
    hashed: list[tuple[LocalFile, str]] = []
    for f, digest in _parallel(todo, lambda f: hash_file(f.path), progress):
        digests[f.path] = digest
        hashed.append((f, digest))
    if cache:
        cache.store(hashed)
    return digests


def _parallel(
    files: list[LocalFile], fn: Callable[[LocalFile], str], progress: Callable[[int], None] | None
) -> Iterator[tuple[LocalFile, str]]:
    # In order, on this thread: a big file is already hashed with every core (mmap + BLAKE3's
    # threads), and for small ones a thread pool measured slower than a plain loop (the GIL).
    for f in files:
        yield f, fn(f)
        if progress:
            progress(f.size)
