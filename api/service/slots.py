"""The slot grid of a service provider, and free capacity per slot. Pure: no I/O.

Opening hours are local wall-clock times in the centre's IANA time zone. Each opening interval
is cut into slots from its opening time, every ``slot_minutes``; a slot must end by closing time.
A slot's start is a real instant: a local time that does not exist (the hour skipped when
daylight saving time begins) yields no slot, and an ambiguous one (the repeated hour) is taken
at its first occurrence (``fold=0``). Slot lengths are absolute durations.

Capacity is counted the way the database enforces it (``service_booking_capacity`` in
migration 005): the number of open bookings overlapping a slot, against the number of bays (a
van: one).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class OpeningInterval:
    weekday: int  # ISO weekday, 1 = Monday
    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # UTC
    end: datetime


@dataclass(frozen=True, slots=True)
class FreeSlot:
    start: datetime
    end: datetime
    free: int
    capacity: int


def check_opening_hours(hours: Iterable[OpeningInterval]) -> None:
    """Raise ValueError for an empty or inverted interval, or two intervals of a weekday that
    overlap (they would offer the same bay twice)."""
    by_day: dict[int, list[OpeningInterval]] = {}
    for interval in hours:
        if not 1 <= interval.weekday <= 7:
            raise ValueError(f"weekday {interval.weekday}: ISO weekdays are 1 (Mon) to 7 (Sun)")
        if interval.opens >= interval.closes:
            raise ValueError(f"weekday {interval.weekday}: opens must be before closes")
        by_day.setdefault(interval.weekday, []).append(interval)
    for weekday, intervals in by_day.items():
        ordered = sorted(intervals, key=lambda i: i.opens)
        for before, after in itertools.pairwise(ordered):
            if after.opens < before.closes:
                raise ValueError(f"weekday {weekday}: opening intervals overlap")


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """``day`` at wall-clock ``at`` in ``zone`` as UTC, or None if that time does not exist."""
    naive = datetime.combine(day, at)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        return None  # skipped by a DST change
    return instant


def slots_between(
    hours: Sequence[OpeningInterval],
    zone: ZoneInfo,
    slot_minutes: int,
    start: datetime,
    end: datetime,
) -> list[Slot]:
    """Every slot lying wholly inside ``[start, end)``, in time order."""
    if end <= start:
        return []
    length = timedelta(minutes=slot_minutes)
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date()
    found: list[Slot] = []
    day = first_day
    while day <= last_day:
        for interval in hours:
            if interval.weekday != day.isoweekday():
                continue
            closes = datetime.combine(day, interval.closes)
            wall = datetime.combine(day, interval.opens)
            while wall + length <= closes:
                instant = _local_instant(day, wall.time(), zone)
                if instant is not None and start <= instant and instant + length <= end:
                    found.append(Slot(instant, instant + length))
                wall += length
        day += timedelta(days=1)
    found.sort(key=lambda s: s.start)
    return found


def is_slot(
    hours: Sequence[OpeningInterval], zone: ZoneInfo, slot_minutes: int, start: datetime
) -> bool:
    """Whether ``start`` is the start of one of the provider's slots."""
    length = timedelta(minutes=slot_minutes)
    local = start.astimezone(zone).replace(tzinfo=None)
    for interval in hours:
        if interval.weekday != local.isoweekday():
            continue
        opens = datetime.combine(local.date(), interval.opens)
        offset = local - opens
        if (
            offset >= timedelta(0)
            and offset % length == timedelta(0)
            and local + length <= datetime.combine(local.date(), interval.closes)
        ):
            return _local_instant(local.date(), local.time(), zone) == start
    return False


def free_slots(
    slots: Iterable[Slot], busy: Sequence[tuple[datetime, datetime]], capacity: int
) -> list[FreeSlot]:
    """The slots with at least one free place: ``capacity`` minus the open bookings
    (``busy`` intervals) overlapping each."""
    result: list[FreeSlot] = []
    for slot in slots:
        taken = sum(1 for b_start, b_end in busy if b_start < slot.end and b_end > slot.start)
        if taken < capacity:
            result.append(FreeSlot(slot.start, slot.end, capacity - taken, capacity))
    return result
