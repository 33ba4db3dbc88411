"""When a wait until a weekday and time ends, in the subscriber's own time zone."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta


def zone_of(name: str | None, fallback: str) -> zoneinfo.ZoneInfo:
    """The subscriber's time zone attribute, or the sequence's when it is missing or wrong."""
    for candidate in (name, fallback, "UTC"):
        if not candidate:
            continue
        try:
            return zoneinfo.ZoneInfo(str(candidate))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return zoneinfo.ZoneInfo("UTC")


def next_weekday_time(
    now: datetime, *, weekday: int, at: time | None, zone: str | None, fallback: str
) -> datetime:
    """The next moment (after now) that is `weekday` (0 is Monday) at `at` (midnight when
    None) in the zone; today counts when that time is still to come."""
    tz = zone_of(zone, fallback)
    local = now.astimezone(tz)
    days = (weekday - local.weekday()) % 7
    target_day = local.date() + timedelta(days=days)
    target = datetime.combine(target_day, at or time(0), tzinfo=tz)
    if target <= local:
        target = datetime.combine(target_day + timedelta(days=7), at or time(0), tzinfo=tz)
    return target.astimezone(UTC)
