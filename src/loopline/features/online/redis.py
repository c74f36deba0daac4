"""The scale-out online store: Redis, one string key per (view, entity).

A value is the row's event time (20 ASCII digits, offset to be non-negative so that string order
is time order) followed by the encoded features. Writes go through a small Lua script that keeps
the newer value, a thousand keys per call, pipelined; reads are one ``MGET`` per view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopline.errors import BackendUnavailable, MissingExtra

_OFFSET = 1 << 63
_HEADER = 20
_BATCH = 1000
_UPSERT = """
for i = 1, #KEYS do
  local new = ARGV[i]
  local cur = redis.call('GET', KEYS[i])
  if (not cur) or string.sub(cur, 1, 20) <= string.sub(new, 1, 20) then
    redis.call('SET', KEYS[i], new)
  end
end
return #KEYS
"""


class RedisOnlineStore:
    """:class:`~loopline.features.online.OnlineStore` on Redis (``redis://host:port/db``)."""

    def __init__(self, url: str, *, prefix: str = "loopline:default:") -> None:
        try:
            import redis
        except ImportError as e:
            raise MissingExtra("redis", "redis") from e
        self.url = url
        self.prefix = prefix
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._upsert: Any = self._redis.register_script(_UPSERT)
        self._errors: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        )

    def _key(self, view: str, key: str) -> str:
        return f"{self.prefix}{view}:{key}"

    def write(self, view: str, rows: Sequence[tuple[str, int, bytes]]) -> int:
        if not rows:
            return 0
        try:
            pipe = self._redis.pipeline(transaction=False)
            for i in range(0, len(rows), _BATCH):
                part = rows[i : i + _BATCH]
                self._upsert(
                    keys=[self._key(view, k) for k, _, _ in part],
                    args=[b"%020d" % (ts + _OFFSET) + v for _, ts, v in part],
                    client=pipe,
                )
            pipe.execute()
        except self._errors as e:
            raise BackendUnavailable(f"Redis at {self.url} did not answer: {e}.") from e
        return len(rows)

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        try:
            values = self._redis.mget([self._key(view, k) for k in keys])
        except self._errors as e:
            raise BackendUnavailable(f"Redis at {self.url} did not answer: {e}.") from e
        return [v[_HEADER:] if v is not None else None for v in values]

    def drop(self, view: str) -> None:
        pattern = f"{self.prefix}{view}:*"
        batch: list[bytes] = []
        for key in self._redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= _BATCH:
                self._redis.delete(*batch)
                batch.clear()
        if batch:
            self._redis.delete(*batch)

    def close(self) -> None:
        self._redis.close()
