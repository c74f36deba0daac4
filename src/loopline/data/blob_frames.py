"""The body of a batched blob upload: many blobs, each framed by its digest and size, in one request.

::

    body   = MAGIC record*
    MAGIC  = b"loopline-blobs/1\\n"
    record = digest (32 bytes: the raw BLAKE3) | size (8 bytes, big-endian) | size bytes

The client (``loopline.data.rest_blobs``) writes it, the server (``loopline.server.blob_uploads``)
reads it with :class:`FrameReader` as it streams in, one record at a time: a blob is hashed and
written as its bytes arrive and never held whole in memory. Sizes come first so that a reader
knows where each blob ends without scanning for a delimiter; digests come first so that the
server can refuse a blob whose bytes are not its digest's before committing it.
"""

from __future__ import annotations

from typing import Protocol

from loopline.errors import BadRequest

MAGIC = b"loopline-blobs/1\n"
MEDIA_TYPE = "application/x-loopline-blobs"
HEADER = 40  # 32 bytes of digest, 8 of size
_HINT = "Send `loopline-blobs/1` frames: the magic line, then digest (32 bytes) | size (8) | bytes per blob."


def frame_header(digest: str, size: int) -> bytes:
    """The 40 bytes that open a record: the digest (hex here, raw on the wire) and the size."""
    return bytes.fromhex(digest) + size.to_bytes(8, "big")


class BlobSink(Protocol):
    """Where a :class:`FrameReader` sends each record: opened, written in pieces, closed."""

    def begin(self, digest: str, size: int | None) -> None: ...
    def write(self, data: memoryview) -> None: ...
    def end(self) -> None: ...


class FrameReader:
    """Parses a batch body fed in pieces of any size and drives ``sink`` record by record.

    Raises :class:`~loopline.errors.BadRequest` (400) for a body that is not this format or has
    more than ``max_records`` records; :meth:`close` raises it for a body cut off mid-record.
    """

    def __init__(self, sink: BlobSink, *, max_records: int) -> None:
        self._sink = sink
        self._max = max_records
        self._head = bytearray()  # the magic line or a record's header, as far as it has arrived
        self._want = len(MAGIC)  # bytes of ``_head`` to collect before acting on it
        self._left = 0  # bytes of the current record's blob still to come
        self._magic = False
        self.records = 0

    def feed(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        while view:
            if self._left:
                n = min(self._left, len(view))
                self._sink.write(view[:n])
                self._left -= n
                view = view[n:]
                if not self._left:
                    self._sink.end()
                continue
            take = self._want - len(self._head)
            self._head += view[:take]
            view = view[take:]
            if len(self._head) == self._want:
                self._header()

    def _header(self) -> None:
        head = bytes(self._head)
        self._head.clear()
        self._want = HEADER
        if not self._magic:
            if head != MAGIC:
                raise BadRequest(f"The body is not a blob batch: it starts {head[:24]!r}.", hint=_HINT)
            self._magic = True
            return
        self.records += 1
        if self.records > self._max:
            raise BadRequest(
                f"More than {self._max:,} blobs in one batch.", hint="Split the upload into several batches."
            )
        size = int.from_bytes(head[32:], "big")
        self._sink.begin(head[:32].hex(), size)
        if size:
            self._left = size
        else:
            self._sink.end()  # the empty blob: nothing follows its header

    def close(self) -> None:
        """The body has ended: it must have ended between records."""
        if not self._magic:
            raise BadRequest("The body is not a blob batch: it ends before the magic line.", hint=_HINT)
        if self._left or self._head:
            where = f"{self._left:,} bytes short of its blob's end" if self._left else "inside a header"
            record = self.records + (0 if self._left else 1)
            raise BadRequest(f"The batch ends {where} (record {record}).", hint=_HINT)


__all__ = ["HEADER", "MAGIC", "MEDIA_TYPE", "BlobSink", "FrameReader", "frame_header"]
