"""Who sees which booking, and which vehicles a service centre sees through its bookings.

A centre sees a vehicle while a booking there is relevant: from the booking's creation while it
is open, and for :data:`RELEVANT_AFTER_CLOSE` after it was completed, cancelled or missed
(post-repair checks, questions about the invoice). Of the car's data it sees what was sampled
since the booking was made, and never anything from before the current owner's ownership. A
booking of a previous owner grants nothing once the car has changed hands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from api.security.access import VehicleWindow
from api.security.principal import Principal, Role
from api.service.records import BookingRecord

RELEVANT_AFTER_CLOSE = timedelta(days=7)

_WINDOWS = """
SELECT b.vin,
       min(greatest(b.requested_at, o.started_at)) AS since,
       bool_or(b.status IN ('requested', 'confirmed', 'checked_in')) AS open,
       max(coalesce(b.completed_at, b.cancelled_at, b.no_show_at)) AS closed_at
FROM bookings b
LEFT JOIN vehicle_ownership o ON o.vin = b.vin AND o.ended_at IS NULL
WHERE b.centre_id = ANY($1::text[])
  AND b.requested_at <= $2
  AND o.customer_id IS NOT DISTINCT FROM b.customer_id
  AND (b.status IN ('requested', 'confirmed', 'checked_in')
       OR coalesce(b.completed_at, b.cancelled_at, b.no_show_at) > $2 - $3::interval)
GROUP BY b.vin
ORDER BY b.vin
"""


class CentreBookingWindows:
    """:class:`api.security.access.BookingWindows` from the bookings table."""

    def __init__(self, relevant_after_close: timedelta = RELEVANT_AFTER_CLOSE) -> None:
        self._after_close = relevant_after_close

    async def windows(
        self, conn: asyncpg.Connection, centres: frozenset[str], now: datetime
    ) -> Sequence[VehicleWindow]:
        rows = await conn.fetch(_WINDOWS, sorted(centres), now, self._after_close)
        return [
            VehicleWindow(
                r["vin"],
                since=r["since"],
                until=None if r["open"] else r["closed_at"] + self._after_close,
            )
            for r in rows
        ]


def may_see_booking(principal: Principal, booking: BookingRecord) -> bool:
    """Admins see every booking, a customer their own, a centre those at its centres (a van's
    bookings are its home centre's). Callers answer 404 otherwise."""
    if principal.is_admin:
        return True
    if principal.role is Role.CUSTOMER:
        return principal.customer_id is not None and booking.customer_id == principal.customer_id
    return principal.role is Role.SERVICE_CENTER and booking.centre_id in principal.centres
