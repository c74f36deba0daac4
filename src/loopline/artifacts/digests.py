"""BLAKE3 digests of files: the names of blobs.

Big files are hashed through mmap with every core; small ones are read into one reusable buffer
per thread, since many small files are hashed in parallel (``loopline.slices``).
"""

from __future__ import annotations

import os
import re
import threading

from loopline.errors import InvalidInput

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pathlib import Path

CHUNK = 1 << 20  # the unit of streamed reads and writes
MMAP_MIN = 1 << 20  # below this, plain reads beat mmap + threads


def hash_file(path: str | Path, size: int | None = None) -> str:
    """BLAKE3 hex digest of a file; big files are hashed with every core via mmap.

    ``size``: the file's size if the caller has just stat'ed it (saves a stat per file).
    """
    import blake3

    if size is None:
        size = os.path.getsize(path)
    if size >= MMAP_MIN:
        return str(blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(str(path)).hexdigest())
    return str(blake3.blake3(read_small(path)).hexdigest())


_buffers = threading.local()


def read_small(path: str | Path) -> memoryview:
    """A small file's bytes, in this thread's reusable buffer: valid until this thread's next call.

    A fresh ``bytes`` per file cost an allocation and its page faults each time: hashing 10,000
    files of 105 KiB on 2 threads took 0.24 s that way, 0.18 s with a buffer per thread. A file
    bigger than the buffer (``MMAP_MIN``) is read whole into a new ``bytes``.
    """
    buf: bytearray | None = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = bytearray(MMAP_MIN)
    view = memoryview(buf)
    fd = os.open(path, os.O_RDONLY)
    try:
        n = 0
        while n < len(buf):
            got = os.readv(fd, [view[n:]])
            if got == 0:
                return view[:n]
            n += got
        rest = [bytes(buf)]
        while chunk := os.read(fd, CHUNK):
            rest.append(chunk)
        return memoryview(b"".join(rest))
    finally:
        os.close(fd)


_DIGEST = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise InvalidInput(f"Not a BLAKE3 hex digest: {digest!r}.")
    return digest
