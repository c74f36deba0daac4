"""Receiving dataset blobs: a request body streamed to a worker thread that hashes, writes, commits.

Both upload routes end here — ``PUT data/blobs/<digest>`` (one raw blob) and ``POST
data/blobs/batch`` (many, framed by :mod:`loopline.data.blob_frames`) — so every blob a client
sends takes one path into the store: written to a temporary file beside its place (a local
store) or in the staging folder (an object store) while it is hashed, compared with its digest,
and only then renamed into place (or uploaded) whole. A blob whose bytes are not its digest's is
refused (400) and nothing of it remains; a body cut off mid-blob leaves nothing of that blob.
Blobs of a batch that were whole and verified before the cut or the refusal stay: each is named
by its content, so it is correct, and a version can only use it once the manifest is complete.

Why a thread: the event loop then only passes the body's chunks along, and BLAKE3 and the writes
(which release the GIL) run beside it, so receiving, hashing and writing overlap instead of taking
turns. At most ``IN_FLIGHT`` hand-offs of ~``HANDOFF`` bytes wait between them: a slow disk slows
the sender (TCP flow control) instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from starlette.requests import Request

from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.digests import MMAP_MIN
from loopline.artifacts.local_files import READ_ONLY
from loopline.data.blob_frames import FrameReader
from loopline.errors import InvalidInput

MAX_BATCH_BLOBS = 10_000  # blobs in one batch request
HANDOFF = 1 << 20  # bytes of body gathered on the event loop before the worker thread takes them
IN_FLIGHT = 8  # hand-offs waiting for the worker thread, at most
UPLOADS = 8  # an object store: blobs of one request uploaded at once (each is one PUT)


class BlobWriter:
    """Stages, hashes and commits the blobs of one request, one at a time (a ``BlobSink``)."""

    def __init__(self, store: BlobArtifactStore) -> None:
        self.store = store
        self.received = 0  # blobs whole and verified
        self.stored = 0  # of which new to the store
        self._digest = ""
        self._tmp: str | None = None
        self._fd = -1
        self._hasher: Any = None
        self._uploads: list[Future[bool]] = []
        self._pool: ThreadPoolExecutor | None = None

    def begin(self, digest: str, size: int | None) -> None:
        import blake3

        store = self.store
        if store.is_local:
            tmp = store.stage_blob(digest)  # beside the blob: the final rename is free
        else:
            fd, tmp = tempfile.mkstemp(dir=store.staging_dir(), prefix="blob-")
            os.close(fd)
        self._digest, self._tmp, self._hasher = digest, tmp, blake3.blake3()
        # Read-only from the start (a blob is never written again); the open descriptor still writes.
        self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, READ_ONLY)
        if size is not None and size >= MMAP_MIN and hasattr(os, "posix_fallocate"):
            with contextlib.suppress(OSError):  # blocks allocated up front: less work per write
                os.posix_fallocate(self._fd, 0, size)

    def write(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def end(self) -> None:
        os.close(self._fd)
        self._fd = -1
        got = self._hasher.hexdigest()
        tmp, digest = self._tmp, self._digest
        assert tmp is not None
        if got != digest:
            kept = f" ({self.received} blobs before it were stored)" if self.received else ""
            raise InvalidInput(
                f"The bytes sent for blob {digest} hash to {got}: that blob was not stored{kept}.",
                hint="Send each file's exact bytes under its BLAKE3 digest.",
            )
        self.received += 1
        if self.store.is_local:
            self._tmp = None
            if self.store.has_blob(digest):
                os.unlink(tmp)
            else:
                self.store.commit_staged(tmp, digest)
                self.stored += 1
            return
        self._tmp = None  # the upload owns it now, and deletes it
        if self._pool is None:
            self._pool = ThreadPoolExecutor(UPLOADS, thread_name_prefix="blob-upload")
        if len(self._uploads) >= 2 * UPLOADS:  # bound the staged files waiting for their upload
            self.stored += self._uploads.pop(0).result()
        self._uploads.append(self._pool.submit(self._upload, tmp, digest))

    def _upload(self, tmp: str, digest: str) -> bool:
        try:
            return self.store.put_blob(tmp, digest) != "present"  # one PUT (or multipart): atomic
        finally:
            os.unlink(tmp)

    def finish(self) -> None:
        """Wait for the uploads to an object store still running (their errors are raised here)."""
        try:
            for upload in self._uploads:
                self.stored += upload.result()
        finally:
            self._uploads.clear()
            if self._pool is not None:
                self._pool.shutdown()

    def abort(self) -> None:
        """Forget the blob being written (its temporary file is deleted); harmless when none is."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None
        if self._pool is not None:  # an upload already started finishes; its file goes with it
            self._pool.shutdown(cancel_futures=True)


async def receive_blobs(request: Request, store: BlobArtifactStore, digest: str | None = None) -> BlobWriter:
    """Store the request's body: one raw blob named ``digest``, or (None) a batch of framed blobs.

    Returns the writer (its ``received`` and ``stored`` counts); raises the 400 of a refused blob
    or a malformed batch once the whole body has arrived (the client is still sending until then,
    and an answer before its end would reach it as a broken connection, not as the error).
    """
    writer = BlobWriter(store)
    reader = FrameReader(writer, max_records=MAX_BATCH_BLOBS) if digest is None else None
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(IN_FLIGHT)
    handoffs: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
    cut = threading.Event()  # the body was cut off: commit nothing more
    done: asyncio.Future[None] = loop.create_future()

    feed = reader.feed if reader is not None else writer.write
    close = reader.close if reader is not None else writer.end

    def work() -> None:
        error: BaseException | None = None
        opened = digest is None  # a raw blob is opened with its first bytes, here in the thread
        try:
            while (chunks := handoffs.get()) is not None:
                if error is None and not cut.is_set():
                    try:
                        if not opened:
                            writer.begin(str(digest), None)
                            opened = True
                        for chunk in chunks:
                            feed(chunk)
                    except BaseException as e:  # kept, raised once the body has ended
                        error = e
                        writer.abort()
                loop.call_soon_threadsafe(slots.release)  # every hand-off, used or skipped, frees its slot
            if error is None and not cut.is_set():
                try:
                    if not opened:  # an empty body
                        writer.begin(str(digest), None)
                    close()
                    writer.finish()
                except BaseException as e:  # handed to the event loop below
                    error = e
        finally:
            writer.abort()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(_settle, done, error)

    threading.Thread(target=work, name="blob-receiver", daemon=True).start()
    pending: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            pending.append(chunk)
            size += len(chunk)
            if size >= HANDOFF:
                await slots.acquire()
                handoffs.put(pending)
                pending, size = [], 0
        if pending:
            handoffs.put(pending)
    except BaseException:  # the client went away (or the server is stopping): clean up, then re-raise
        cut.set()
        handoffs.put(None)
        with contextlib.suppress(BaseException):
            await asyncio.shield(done)
        raise
    handoffs.put(None)
    await done
    return writer


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


__all__ = ["MAX_BATCH_BLOBS", "BlobWriter", "receive_blobs"]
