"""When a monitor's cron schedule fires next."""

from __future__ import annotations

from loopline.errors import InvalidInput


def next_run(schedule: str, after_ms: int) -> int | None:
    """When a cron ``schedule`` next fires after ``after_ms`` (None without a schedule)."""
    if not schedule:
        return None
    from croniter import croniter

    try:
        it = croniter(schedule, after_ms / 1000)
    except (ValueError, KeyError) as e:
        raise InvalidInput(
            f"Invalid schedule {schedule!r}: {e}.", hint='Use cron syntax, e.g. "*/10 * * * *".'
        ) from None
    return int(it.get_next(float) * 1000)
