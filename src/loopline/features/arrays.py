"""Arrow columns as NumPy arrays, straight from their buffers.

``pyarrow``'s own ``to_numpy`` (and ``np.asarray`` on an Arrow array) imports pandas on its first
use, 0.2 s that a materialisation or a serving process need not pay; reading the data buffer of a
fixed-width column is what it does anyway.
"""

from __future__ import annotations

from typing import Any

_NUMPY = {
    "int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8",
    "uint8": "u1", "uint16": "u2", "uint32": "u4", "uint64": "u8",
    "halffloat": "f2", "float": "f4", "double": "f8",
}  # fmt: skip


def numpy_of(column: Any, fill: Any = 0) -> Any:
    """A fixed-width Arrow array or chunked array (ints, floats, bools, timestamps) as NumPy.

    Nulls become ``fill``; timestamps come out as their integer ticks, bools as ``bool``. Without
    nulls and in one chunk, the result is a view of the Arrow buffer: no copy (a fresh 8 MB copy
    measured 1-20 ms in a fresh process, its pages faulted in one by one).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column
    if isinstance(arr, pa.ChunkedArray):
        arr = (
            arr.chunk(0) if arr.num_chunks == 1 else pa.concat_arrays(arr.chunks) if arr.num_chunks else None
        )
        if arr is None:
            return np.zeros(0, np.dtype(_NUMPY.get(str(column.type), "i8")))
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date64(t) or pa.types.is_duration(t):
        t = pa.int64()  # the same 8-byte ticks: read the buffer as int64, no cast
    elif pa.types.is_date32(t):
        t = pa.int32()
    boolean = pa.types.is_boolean(t)
    if boolean:
        arr = arr.cast(pa.uint8())
        t = arr.type
    if arr.null_count:
        arr = pc.fill_null(arr.view(t) if t != arr.type else arr, fill)
    dtype = np.dtype(_NUMPY.get(str(t)) or t.to_pandas_dtype())
    out = np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)
    return out.astype(bool) if boolean else out


def valid_of(column: Any) -> Any:
    """A NumPy bool array, True where ``column`` is not null (NaN counts as a value)."""
    import numpy as np
    import pyarrow.compute as pc

    if column.null_count == 0:
        return np.ones(len(column), dtype=bool)
    return numpy_of(pc.is_valid(column))


def take_indices(rows: Any, ok: Any) -> Any:
    """An Arrow int64 array of ``rows`` (NumPy), null where ``ok`` is False: for ``take``."""
    import numpy as np
    import pyarrow as pa

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    n = len(rows)
    if ok.all():
        return pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(rows)])
    validity = pa.py_buffer(np.packbits(ok, bitorder="little"))
    return pa.Array.from_buffers(pa.int64(), n, [validity, pa.py_buffer(rows)], null_count=int(n - ok.sum()))


def bool_array(mask: Any) -> Any:
    """An Arrow boolean array of a NumPy bool array (without ``pa.array``, which imports pandas)."""
    import numpy as np
    import pyarrow as pa

    return pa.Array.from_buffers(
        pa.bool_(), len(mask), [None, pa.py_buffer(np.packbits(mask, bitorder="little"))]
    )


def gather(column: Any, rows: Any, ok: Any) -> Any:
    """``column[rows]`` as an Arrow array, null where ``ok`` is False (or the value is null).

    Fixed-width columns are gathered by NumPy straight from the buffer (5x faster than Arrow's
    null-aware ``take`` on 100k indices); other types go through ``take``.
    """
    import numpy as np
    import pyarrow as pa

    t = column.type
    if not ok.any():  # also when there are no rows to take from
        return pa.nulls(len(rows), t)
    fixed = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t)
    if not fixed or pa.types.is_time(t) or pa.types.is_interval(t):
        return column.take(take_indices(rows, ok))
    values = np.ascontiguousarray(numpy_of(column)[rows])
    valid = ok & valid_of(column)[rows] if column.null_count else ok
    nulls = int(len(valid) - np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(t, len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)
