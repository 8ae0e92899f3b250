"""Slot search: the workshops (and, for an electric car, the mobile vans) that can do a job
near a position, nearest first, with their free slots in a time range.

Distances are great-circle (haversine) from the position to the workshop; a van qualifies when
the position is within its range of its home centre, and its distance is that drive. Free
capacity counts open bookings overlapping each slot, as the database's capacity trigger does,
so a slot listed here is one a booking can take unless someone books it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from api.service.bookings import Provider
from api.service.centres import active_centres, active_vans, get_centre
from api.service.geo import haversine_km
from api.service.slots import FreeSlot, free_slots, slots_between


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: Provider
    distance_km: float

    @property
    def mobile(self) -> bool:
        return self.provider.van is not None


@dataclass(frozen=True, slots=True)
class CandidateSlots:
    candidate: Candidate
    slots: list[FreeSlot]


async def candidates(
    conn: asyncpg.Connection,
    *,
    lat: float,
    lon: float,
    skills: Sequence[str],
    radius_km: float,
    with_vans: bool,
) -> list[Candidate]:
    """Active providers offering all ``skills``: workshops within ``radius_km``, and vans whose
    range covers the position when ``with_vans``; nearest first (then by id)."""
    centres = await active_centres(conn, skills)
    by_id = {c.id: c for c in centres}
    found = [
        Candidate(Provider(c), haversine_km(lat, lon, c.lat, c.lon))
        for c in centres
        if haversine_km(lat, lon, c.lat, c.lon) <= radius_km
    ]
    if with_vans:
        vans = await active_vans(conn, skills)
        homes = {v.home_centre_id for v in vans} - set(by_id)
        for centre_id in sorted(homes):  # a van may do what its home workshop does not
            home = await get_centre(conn, centre_id)
            if home is not None:
                by_id[centre_id] = home
        for van in vans:
            home = by_id.get(van.home_centre_id)
            if home is None:
                continue
            drive = haversine_km(home.lat, home.lon, lat, lon)
            if drive <= van.range_km:
                found.append(Candidate(Provider(home, van), drive))
    found.sort(key=lambda c: (c.distance_km, c.provider.name))
    return found


async def busy_intervals(
    conn: asyncpg.Connection, providers: Sequence[Provider], start: datetime, end: datetime
) -> dict[tuple[str, str | None], list[tuple[datetime, datetime]]]:
    """Open bookings overlapping ``[start, end)`` per (centre, van) of ``providers``."""
    rows = await conn.fetch(
        "SELECT centre_id, van_id, slot_start, slot_end FROM bookings"
        " WHERE centre_id = ANY($1::text[]) AND status IN ('requested', 'confirmed', 'checked_in')"
        " AND slot_start < $3 AND slot_end > $2",
        sorted({p.centre.id for p in providers}),
        start,
        end,
    )
    busy: dict[tuple[str, str | None], list[tuple[datetime, datetime]]] = {}
    for r in rows:
        busy.setdefault((r["centre_id"], r["van_id"]), []).append((r["slot_start"], r["slot_end"]))
    return busy


async def with_free_slots(
    conn: asyncpg.Connection,
    found: Sequence[Candidate],
    *,
    start: datetime,
    end: datetime,
) -> list[CandidateSlots]:
    """Each candidate with its slots in ``[start, end)`` that still have a free place."""
    busy = await busy_intervals(conn, [c.provider for c in found], start, end)
    result = []
    for candidate in found:
        p = candidate.provider
        grid = slots_between(p.centre.hours, p.centre.zone, p.slot_minutes, start, end)
        key = (p.centre.id, p.van.id if p.van else None)
        result.append(CandidateSlots(candidate, free_slots(grid, busy.get(key, []), p.capacity)))
    return result
