"""Online stores: the latest feature values per entity, for serving.

``OnlineStore`` is the protocol; :class:`SqliteOnlineStore` (a file beside the metadata database,
the default) and :class:`RedisOnlineStore` (``redis://…``, for many serving processes on many
machines) implement it and pass one contract test suite. Rows are ``(key, ts_us, payload)``:
the encoded entity key, the row's event time in microseconds and the encoded feature values
(:mod:`loopline.features.online.codec`). A write never replaces a newer value with an older one,
so out-of-order pushes and overlapping materialisations are safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from loopline.errors import InvalidInput


@runtime_checkable
class OnlineStore(Protocol):
    """Where materialised features are kept for low-latency reads."""

    def write(self, view: str, rows: Sequence[tuple[str, int, bytes]]) -> int:
        """Upsert rows; a row older than what the key holds is skipped. Returns rows given."""
        ...

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        """The payload of each key (None where the view holds nothing for it), in order."""
        ...

    def drop(self, view: str) -> None:
        """Forget everything the view holds."""
        ...

    def close(self) -> None: ...


def open_online_store(uri: str, *, default_dir: Path, namespace: str = "default") -> OnlineStore:
    """``sqlite`` (``online.db`` in ``default_dir``), ``sqlite:///path`` or ``redis://host:port/db``."""
    if uri in ("", "sqlite"):
        from loopline.features.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(default_dir / "online.db", namespace=namespace)
    if uri.startswith("sqlite:///"):
        from loopline.features.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(Path(uri.removeprefix("sqlite:///")), namespace=namespace)
    if uri.startswith(("redis://", "rediss://", "unix://")):
        from loopline.features.online.redis import RedisOnlineStore

        return RedisOnlineStore(uri, prefix=f"loopline:{namespace}:")
    raise InvalidInput(
        f"Unknown online store {uri!r}.",
        hint="Set LOOPLINE_ONLINE_STORE to sqlite, sqlite:///path/online.db or redis://host:6379/0.",
    )


__all__ = ["OnlineStore", "open_online_store"]
