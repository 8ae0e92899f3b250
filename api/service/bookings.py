"""Bookings in PostgreSQL: create (with the slot, skill and mobile-service checks), read, list,
and the lifecycle transitions. Every change appends a ``booking.<status>`` outbox event in the
same transaction (``booking.suggested`` for a suggestion), its payload the booking's public
JSON (ADR 0007).

Functions taking a connection run in the caller's transaction (the suggester, work orders);
:class:`BookingStore` opens one per call for the routes. Double booking is refused by the
database itself (trigger ``service_booking_capacity``); its errors are translated here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from api.service.centres import get_centre, get_van
from api.service.errors import (
    AlertAlreadyBookedError,
    AlertMismatchError,
    BookingNotFoundError,
    CentreNotFoundError,
    MobileServiceNotEligibleError,
    NotASlotError,
    PositionUnknownError,
    SkillMissingError,
    SlotFullError,
    VanNotFoundError,
    VehicleAlreadyBookedError,
    WorkOrderStateError,
)
from api.service.geo import haversine_km
from api.service.lifecycle import (
    STAMP_COLUMN,
    Actor,
    BookingAction,
    BookingStatus,
    next_status,
)
from api.service.records import BookingRecord, CentreRecord, VanRecord
from api.service.slots import is_slot
from api.service.vehicle_facts import VehicleFacts
from api.service.views import booking_payload
from diagnostics.outbox import append

_OPEN = "('requested', 'confirmed', 'checked_in')"
_SELECT = """
SELECT b.id, b.vin, b.customer_id, b.centre_id, b.van_id, b.service_lat, b.service_lon,
       b.slot_start, b.slot_end, b.required_skills, b.status, b.source, b.alert_id, b.notes,
       b.requested_at, b.confirmed_at, b.checked_in_at, b.completed_at, b.cancelled_at,
       b.no_show_at, b.cancelled_by, b.updated_at, b.revision,
       c.name AS centre_name, c.address AS centre_address, c.timezone AS centre_timezone,
       v.name AS van_name, w.id AS work_order_id
FROM bookings b
JOIN service_centres c ON c.id = b.centre_id
LEFT JOIN service_vans v ON v.id = b.van_id
LEFT JOIN work_orders w ON w.booking_id = b.id
"""
MAX_BOOKING_AHEAD = timedelta(days=365)
# Raised by the capacity trigger (migration 005).
SLOT_FULL_SQLSTATE = "FLB01"
VEHICLE_BOOKED_SQLSTATE = "FLB02"


@dataclass(frozen=True, slots=True)
class Provider:
    """Who does the job: a workshop, or a van of (and booked through) its home centre."""

    centre: CentreRecord
    van: VanRecord | None = None

    @property
    def name(self) -> str:
        return self.van.id if self.van else self.centre.id

    @property
    def skills(self) -> tuple[str, ...]:
        return self.van.skills if self.van else self.centre.skills

    @property
    def slot_minutes(self) -> int:
        return self.van.slot_minutes if self.van else self.centre.slot_minutes

    @property
    def capacity(self) -> int:
        return 1 if self.van else self.centre.bays


@dataclass(frozen=True, slots=True)
class NewBooking:
    vin: str
    customer_id: UUID | None
    centre_id: str | None
    van_id: str | None
    slot_start: datetime
    source: str  # customer | suggestion | service_center | admin
    required_skills: tuple[str, ...] = ()
    alert_id: int | None = None
    notes: str | None = None
    location: tuple[float, float] | None = None  # mobile service: (lat, lon)


def _record(row: asyncpg.Record) -> BookingRecord:
    values = dict(row)
    return BookingRecord(
        **{
            **values,
            "status": BookingStatus(values["status"]),
            "required_skills": tuple(values["required_skills"]),
        }
    )


async def resolve_provider(
    conn: asyncpg.Connection, centre_id: str | None, van_id: str | None
) -> Provider:
    """The active workshop or van named; inactive ones are refused like unknown ones."""
    if van_id is not None:
        van = await get_van(conn, van_id)
        if van is None or not van.active:
            raise VanNotFoundError(van_id)
        centre = await get_centre(conn, van.home_centre_id)
        if centre is None or not centre.active:
            raise VanNotFoundError(van_id)
        return Provider(centre, van)
    assert centre_id is not None
    centre = await get_centre(conn, centre_id)
    if centre is None or not centre.active:
        raise CentreNotFoundError(centre_id)
    return Provider(centre)


async def get_booking(
    conn: asyncpg.Connection, booking_id: int, *, lock: bool = False
) -> BookingRecord | None:
    row = await conn.fetchrow(
        f"{_SELECT} WHERE b.id = $1{' FOR UPDATE OF b' if lock else ''}", booking_id
    )
    return _record(row) if row else None


async def require_booking(
    conn: asyncpg.Connection, booking_id: int, *, lock: bool = False
) -> BookingRecord:
    record = await get_booking(conn, booking_id, lock=lock)
    if record is None:
        raise BookingNotFoundError(booking_id)
    return record


async def open_booking_for_alert(conn: asyncpg.Connection, alert_id: int) -> BookingRecord | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE b.alert_id = $1 AND b.status IN {_OPEN}", alert_id)
    return _record(row) if row else None


async def _publish(
    conn: asyncpg.Connection, record: BookingRecord, topic: str, now: datetime
) -> None:
    await append(
        conn,
        topic,
        f"booking:{record.id}",
        booking_payload(record),
        occurred_at=now,
        vin=record.vin,
        customer_id=record.customer_id,
    )


def _check_request(
    provider: Provider, new: NewBooking, facts: VehicleFacts, *, now: datetime
) -> None:
    missing = sorted(set(new.required_skills) - set(provider.skills))
    if missing:
        raise SkillMissingError(provider.name, missing)
    if new.slot_start <= now:
        raise NotASlotError("slot_start is in the past")
    if new.slot_start > now + MAX_BOOKING_AHEAD:
        raise NotASlotError(f"slots are bookable up to {MAX_BOOKING_AHEAD.days} days ahead")
    centre = provider.centre
    if not is_slot(centre.hours, centre.zone, provider.slot_minutes, new.slot_start):
        raise NotASlotError(
            f"{new.slot_start.isoformat()} is not a slot of {provider.name}; see "
            "GET /v1/service/slots"
        )
    if provider.van is None:
        return
    if not facts.mobile_service_eligible:
        raise MobileServiceNotEligibleError(
            f"mobile service is for electric vehicles; {new.vin} is {facts.powertrain}"
        )
    if new.location is None:
        raise PositionUnknownError("mobile service needs a location: give one, or the car's")
    distance = haversine_km(provider.centre.lat, provider.centre.lon, *new.location)
    if distance > provider.van.range_km:
        raise MobileServiceNotEligibleError(
            f"{provider.van.id} goes up to {provider.van.range_km:g} km from its centre; "
            f"that place is {distance:.1f} km away"
        )


async def _check_alert(conn: asyncpg.Connection, alert_id: int, vin: str) -> None:
    row = await conn.fetchrow("SELECT vin, status FROM alerts WHERE id = $1", alert_id)
    if row is None or row["vin"] != vin or row["status"] == "resolved":
        raise AlertMismatchError([alert_id], vin)


async def create_booking(
    conn: asyncpg.Connection, new: NewBooking, facts: VehicleFacts, *, now: datetime
) -> BookingRecord:
    """Book ``new`` in ``conn``'s transaction. The insert runs in a savepoint, so a refused
    booking leaves the caller's transaction usable."""
    provider = await resolve_provider(conn, new.centre_id, new.van_id)
    _check_request(provider, new, facts, now=now)
    if new.alert_id is not None:
        await _check_alert(conn, new.alert_id, new.vin)
    slot_end = new.slot_start + timedelta(minutes=provider.slot_minutes)
    try:
        async with conn.transaction():
            booking_id: int = await conn.fetchval(
                """
                INSERT INTO bookings (vin, customer_id, centre_id, van_id, service_lat,
                    service_lon, slot_start, slot_end, required_skills, source, alert_id,
                    notes, requested_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
                RETURNING id
                """,
                new.vin,
                new.customer_id,
                provider.centre.id,
                provider.van.id if provider.van else None,
                new.location[0] if provider.van and new.location else None,
                new.location[1] if provider.van and new.location else None,
                new.slot_start,
                slot_end,
                sorted(new.required_skills),
                new.source,
                new.alert_id,
                new.notes,
                now,
            )
    except asyncpg.UniqueViolationError as exc:
        assert new.alert_id is not None
        raise AlertAlreadyBookedError(new.alert_id) from exc
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == SLOT_FULL_SQLSTATE:
            raise SlotFullError(provider.name) from exc
        if exc.sqlstate == VEHICLE_BOOKED_SQLSTATE:
            raise VehicleAlreadyBookedError(new.vin) from exc
        raise
    record = await require_booking(conn, booking_id)
    topic = "booking.suggested" if new.source == "suggestion" else "booking.requested"
    await _publish(conn, record, topic, now)
    return record


async def transition(
    conn: asyncpg.Connection,
    booking_id: int,
    action: BookingAction,
    actor: Actor,
    *,
    now: datetime,
) -> BookingRecord:
    """Take ``action`` on the booking as ``actor`` (row locked), in ``conn``'s transaction."""
    current = await require_booking(conn, booking_id, lock=True)
    target = next_status(
        current.status, action, actor, slot_start=current.slot_start, now=now, booking_id=booking_id
    )
    if action is BookingAction.COMPLETE and actor is not Actor.SYSTEM:
        open_order = await conn.fetchval(
            "SELECT id FROM work_orders WHERE booking_id = $1 AND status = 'open'", booking_id
        )
        if open_order is not None:
            raise WorkOrderStateError(
                f"booking {booking_id} has open work order {open_order}: close that instead"
            )
    await conn.execute(
        f"UPDATE bookings SET status = $2, {STAMP_COLUMN[target]} = $3, updated_at = $3,"
        " revision = revision + 1,"
        " cancelled_by = CASE WHEN $2 = 'cancelled' THEN $4 ELSE cancelled_by END"
        " WHERE id = $1",
        booking_id,
        target.value,
        now,
        actor.value,
    )
    record = await require_booking(conn, booking_id)
    await _publish(conn, record, f"booking.{target.value}", now)
    return record


async def page_bookings(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    customer_id: UUID | None = None,
    centres: Collection[str] | None = None,
    status: str | None = None,
    vin: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[BookingRecord], int]:
    """Bookings, newest slot first, narrowed by the arguments given (``centres``: any of)."""
    where = (
        "($1::uuid IS NULL OR b.customer_id = $1)"
        " AND ($2::text[] IS NULL OR b.centre_id = ANY($2))"
        " AND ($3::text IS NULL OR b.status = $3) AND ($4::text IS NULL OR b.vin = $4)"
        " AND ($5::timestamptz IS NULL OR b.slot_start >= $5)"
        " AND ($6::timestamptz IS NULL OR b.slot_start < $6)"
    )
    args = (customer_id, list(centres) if centres is not None else None, status, vin, since, until)
    count = await conn.fetchval(f"SELECT count(*) FROM bookings b WHERE {where}", *args)
    rows = await conn.fetch(
        f"{_SELECT} WHERE {where} ORDER BY b.slot_start DESC, b.id DESC LIMIT $7 OFFSET $8",
        *args,
        limit,
        offset,
    )
    return [_record(r) for r in rows], int(count)


async def bookings_for_customer(
    conn: asyncpg.Connection, customer_id: UUID, *, open_only: bool = False, limit: int = 100
) -> list[BookingRecord]:
    """A customer's bookings, newest slot first (the 720-degree overview, GDPR export)."""
    status_filter = f" AND b.status IN {_OPEN}" if open_only else ""
    rows = await conn.fetch(
        f"{_SELECT} WHERE b.customer_id = $1{status_filter}"
        " ORDER BY b.slot_start DESC, b.id DESC LIMIT $2",
        customer_id,
        limit,
    )
    return [_record(r) for r in rows]


class BookingStore:
    """The routes' entry: one transaction per call."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, new: NewBooking, facts: VehicleFacts, *, now: datetime) -> BookingRecord:
        async with self._pool.acquire() as conn, conn.transaction():
            return await create_booking(conn, new, facts, now=now)

    async def get(self, booking_id: int) -> BookingRecord | None:
        async with self._pool.acquire() as conn:
            return await get_booking(conn, booking_id)

    async def transition(
        self, booking_id: int, action: BookingAction, actor: Actor, *, now: datetime
    ) -> BookingRecord:
        async with self._pool.acquire() as conn, conn.transaction():
            return await transition(conn, booking_id, action, actor, now=now)
