"""Object-level authorisation: which vehicles and customers a principal may see, and from when.

One policy for every route. Admins see everything. A customer sees their own profile and the
vehicles they own now, each only from the start of their ownership (a new owner sees nothing of
the previous owner's data). A service centre sees the vehicles with a relevant booking at one of
its centres, through the :class:`BookingWindows` seam: the API wires
:class:`api.service.visibility.CentreBookingWindows` (open bookings, and closed ones for a week,
each from when it was made and never before the current ownership); :class:`NoBookings`, the
default, grants nothing. Callers answer 404 for anything not visible, so the existence of other
customers' objects is never revealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg

from api.security.principal import Principal, Role


@dataclass(frozen=True, slots=True)
class VehicleWindow:
    """A vehicle the principal may see, and the time range of its data they may see
    (None: unbounded)."""

    vin: str
    since: datetime | None = None
    until: datetime | None = None

    def admits(self, ts: datetime) -> bool:
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)


class BookingWindows(Protocol):
    """The vehicles booked at some of ``centres`` while the booking is relevant at ``now``, with
    the window of data the centre may see (implemented by ``CentreBookingWindows``)."""

    async def windows(
        self, conn: asyncpg.Connection, centres: frozenset[str], now: datetime
    ) -> Sequence[VehicleWindow]: ...


class NoBookings:
    """A policy without bookings (tools and tests that need no centres): a service centre sees
    no vehicle."""

    async def windows(
        self, conn: asyncpg.Connection, centres: frozenset[str], now: datetime
    ) -> Sequence[VehicleWindow]:
        return ()


class AccessPolicy:
    def __init__(self, pool: asyncpg.Pool, bookings: BookingWindows | None = None) -> None:
        self._pool = pool
        self._bookings: BookingWindows = bookings or NoBookings()

    async def vehicles(self, principal: Principal, now: datetime) -> list[VehicleWindow] | None:
        """The vehicles ``principal`` may see; None means all (admins)."""
        if principal.role is Role.FLEET_ADMIN:
            return None
        async with self._pool.acquire() as conn:
            customer_id = principal.customer_id
            if customer_id is not None:
                return await owned_windows(conn, customer_id)
            if principal.role is Role.SERVICE_CENTER and principal.centres:
                return list(await self._bookings.windows(conn, principal.centres, now))
        return []

    async def vehicle(self, principal: Principal, vin: str, now: datetime) -> VehicleWindow | None:
        """The window on ``vin`` for ``principal``, or None: not visible (answer 404). For
        admins the vehicle must exist."""
        visible = await self.vehicles(principal, now)
        if visible is None:
            exists = await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM vehicles WHERE vin = $1)", vin
            )
            return VehicleWindow(vin) if exists else None
        return next((w for w in visible if w.vin == vin), None)

    def may_see_customer(self, principal: Principal, customer_id: UUID) -> bool:
        """Admins see every customer, a customer only themselves. Service centres see no
        customer profile: their bookings carry what a visit needs (vehicle, slot, notes)."""
        return principal.is_admin or principal.customer_id == customer_id


async def owned_windows(conn: asyncpg.Connection, customer_id: UUID) -> list[VehicleWindow]:
    """The vehicles ``customer_id`` owns now, each visible from the start of the ownership."""
    rows = await conn.fetch(
        "SELECT vin, started_at FROM vehicle_ownership"
        " WHERE customer_id = $1 AND ended_at IS NULL ORDER BY started_at, vin",
        customer_id,
    )
    return [VehicleWindow(r["vin"], since=r["started_at"]) for r in rows]
