"""Durations and points in time as people type them: ``30d``, ``1h``, ``2024-05-01T12:00Z``.

``loopline dora --window 30d`` and ``loopline events --since 1h --until 2024-05-01`` read them here,
on the client, and send milliseconds (or, for a window, the same text) to a server.
"""

from __future__ import annotations

import datetime as dt
import re

from loopline.errors import InvalidInput

_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
DURATION_PATTERN = r"^[1-9][0-9]{0,5}[smhdw]$"  # at most 999999 units: a window, not a typo
_DURATION = re.compile(DURATION_PATTERN)
_DURATION_HINT = "Use a number and a unit: 90s, 30m, 12h, 30d or 2w."


def parse_duration_ms(text: str) -> int:
    """``"30d"`` → 2592000000; ``InvalidInput`` for anything but a positive count of s, m, h, d or w."""
    t = text.strip().lower()
    if not _DURATION.match(t):
        raise InvalidInput(f"Invalid duration {text!r}.", hint=_DURATION_HINT)
    return int(t[:-1]) * _UNITS_MS[t[-1]]


def parse_time_ms(text: str, now_ms: int) -> int:
    """A point in time: a duration ago (``1h`` is an hour before ``now_ms``), an ISO 8601 date or
    time (UTC unless it names a zone), or milliseconds since the epoch."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    if _DURATION.match(t.lower()):
        return now_ms - parse_duration_ms(t)
    try:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"Invalid time {text!r}.",
            hint="Use a duration ago (1h, 7d), an ISO time (2024-05-01 or 2024-05-01T12:00Z) "
            "or milliseconds since the epoch.",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


__all__ = ["DURATION_PATTERN", "parse_duration_ms", "parse_time_ms"]
