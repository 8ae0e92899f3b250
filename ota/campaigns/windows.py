"""Maintenance windows in the vehicle's local time: when a car may be offered an update (for
instance at night, when it is parked at home). Pure: ``now`` is passed in, the zone too.

A window may cross midnight (22:00-05:00). Wall-clock times are interpreted in the vehicle's
zone with the usual rules: on a DST change day the window is simply shorter or longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ota.campaigns.errors import CampaignInvalidError

ALL_DAYS = frozenset(range(1, 8))  # ISO weekdays, Monday = 1


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CampaignInvalidError(
            f"unknown time zone {name!r}", field="timezone", value=name
        ) from exc


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    start: time
    end: time
    #: ISO weekdays on which the window *starts* (a 22:00-05:00 window on Friday runs into
    #: Saturday morning).
    days: frozenset[int] = ALL_DAYS

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise CampaignInvalidError(
                "a maintenance window needs a start and a different end",
                field="window",
                value=str(self.start),
            )
        if not self.days or not self.days <= ALL_DAYS:
            raise CampaignInvalidError(
                "days are ISO weekdays 1 (Monday) .. 7", field="window", value=sorted(self.days)
            )

    def is_open(self, now: datetime, tz: ZoneInfo) -> bool:
        local = now.astimezone(tz)
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= clock < self.end and local.isoweekday() in self.days
        # Crossing midnight: the evening part belongs to today, the morning to yesterday.
        if clock >= self.start:
            return local.isoweekday() in self.days
        if clock < self.end:
            yesterday = (local - timedelta(days=1)).isoweekday()
            return yesterday in self.days
        return False
