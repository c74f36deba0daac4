"""Arrow tables as bytes (the IPC stream format) for entity frames and training sets over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.errors import BadRequest

if TYPE_CHECKING:
    import pyarrow as pa

MEDIA_TYPE = "application/vnd.apache.arrow.stream"


def to_ipc(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(data: bytes, what: str = "body") -> pa.Table:
    """The table in ``data``; BadRequest (400) when it is not an Arrow IPC stream."""
    import pyarrow as pa

    try:
        with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
            return reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as e:
        raise BadRequest(
            f"The {what} is not an Arrow IPC stream: {e}.",
            hint=f"Send the table as {MEDIA_TYPE} (pyarrow.ipc.new_stream).",
        ) from None


__all__ = ["MEDIA_TYPE", "from_ipc", "to_ipc"]
