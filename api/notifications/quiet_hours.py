"""Quiet hours: is ``now`` inside the customer's quiet period, and when does it end? No I/O.

The window is wall-clock time in the customer's own time zone (``22:00``-``07:00`` means the
same local hours in winter and summer) and may span midnight. ``start == end`` is an empty
window: a whole-day silence would hold back everything but service-critical messages forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    timezone: ZoneInfo


def quiet_hours_of(start: time | None, end: time | None, zone: ZoneInfo) -> QuietHours | None:
    """A customer's quiet hours from their profile columns (both set, or none)."""
    return None if start is None or end is None else QuietHours(start, end, zone)


def quiet_until(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """The end of the quiet period ``now`` falls in (UTC), or None when it is not quiet.

    ``now`` must be timezone-aware. An end that does not exist locally (a spring-forward gap)
    resolves with the offset before the change, i.e. up to an hour late, never early.
    """
    if quiet is None or quiet.start == quiet.end:
        return None
    local = now.astimezone(quiet.timezone)
    clock = local.time().replace(tzinfo=None)
    today = local.date()
    if quiet.start < quiet.end:  # e.g. 13:00-15:00, within one day
        if quiet.start <= clock < quiet.end:
            return _at(today, quiet.end, quiet.timezone)
        return None
    # Spans midnight, e.g. 22:00-07:00.
    if clock >= quiet.start:
        return _at(today + timedelta(days=1), quiet.end, quiet.timezone)
    if clock < quiet.end:
        return _at(today, quiet.end, quiet.timezone)
    return None


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
