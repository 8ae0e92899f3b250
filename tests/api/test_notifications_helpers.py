"""What the notification tests share: owners with cars, outbox events shaped like the real
producers' (``diagnostics.alert_store``, ``api.service``), and reads of what the notifier wrote.
No tests here; the test modules import it (as they import ``customer_platform``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from api.notifications.notifier import Notifier
from diagnostics.outbox import OutboxConsumer, append
from tests.api.customer_platform import FakeClock, Platform


@dataclass
class Owner:
    id: UUID
    headers: dict[str, str]
    email: str


async def owner(platform: Platform, email: str, vin: str | None = None, **profile: Any) -> Owner:
    """A customer (password login) owning ``vin`` (registered here if it is new)."""
    customer_id = await platform.customer(email, **profile)
    if vin is not None:
        exists = await platform.pool.fetchval("SELECT 1 FROM vehicles WHERE vin = $1", vin)
        if exists is None:
            await platform.vehicle(vin)
        await platform.link(vin, customer_id)
    return Owner(UUID(customer_id), await platform.login(email), email)


async def emit(
    pool: asyncpg.Pool,
    topic: str,
    subject: str,
    payload: dict[str, Any],
    *,
    occurred_at: datetime,
    vin: str | None = None,
    customer_id: UUID | None = None,
) -> int:
    async with pool.acquire() as conn, conn.transaction():
        return await append(
            conn,
            topic,
            subject,
            payload,
            occurred_at=occurred_at,
            vin=vin,
            customer_id=customer_id,
        )


def alert_payload(alert_id: int, vin: str, **changes: Any) -> dict[str, Any]:
    """The public JSON of an alert, as ``AlertRecord.payload`` writes it."""
    opened = datetime(2026, 11, 20, 8, 0).isoformat() + "+00:00"
    payload: dict[str, Any] = {
        "id": alert_id,
        "vin": vin,
        "type": "brake_pad_wear",
        "component": "Row1.Left",
        "status": "open",
        "severity": "warning",
        "opened_at": opened,
        "updated_at": opened,
        "detected_at": opened,
        "acknowledged_at": None,
        "resolved_at": None,
        "resolution": None,
        "work_order_id": None,
        "predicted_failure_at": "2026-12-04T09:30:00+00:00",
        "confidence": 0.8,
        "evidence": {"pad_wear_pct": 81.0},
        "recommended_action": "Replace the front brake pads within two weeks.",
    }
    return payload | changes


def booking_payload(booking_id: int, vin: str, status: str, **changes: Any) -> dict[str, Any]:
    """The booking's public JSON (fields as ``api.service.schemas.BookingPublic``)."""
    payload: dict[str, Any] = {
        "id": booking_id,
        "vin": vin,
        "customer_id": None,
        "kind": "workshop",
        "centre_id": "berlin-mitte",
        "centre_name": "Autohaus Mitte",
        "centre_address": "Invalidenstr. 1, Berlin",
        "timezone": "Europe/Berlin",
        "van_id": None,
        "van_name": None,
        "location": None,
        "slot_start": "2026-11-24T08:00:00+00:00",
        "slot_end": "2026-11-24T09:00:00+00:00",
        "local_slot_start": "2026-11-24T09:00:00+01:00",
        "required_skills": [],
        "status": status,
        "source": "suggestion",
        "alert_id": 7,
        "notes": None,
    }
    return payload | changes


def work_order_payload(order_id: int, vin: str, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": order_id,
        "booking_id": 3,
        "vin": vin,
        "centre_id": "berlin-mitte",
        "status": "closed",
        "complaint": "Brake pads",
        "alert_ids": [7],
        "resolved_alert_ids": [7],
    }
    return payload | changes


def consumer(pool: asyncpg.Pool, clock: FakeClock) -> tuple[OutboxConsumer, Notifier]:
    """The notifier as the runtime runs it, with its handler kept for its counters."""
    handler = Notifier(clock)
    return OutboxConsumer(pool, "notifier", handler), handler


async def notifications_of(pool: asyncpg.Pool, customer_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM notifications WHERE customer_id = $1 ORDER BY id", customer_id
    )


async def deliveries_of(pool: asyncpg.Pool, notification_id: int) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch(
        "SELECT * FROM notification_deliveries WHERE notification_id = $1", notification_id
    )
    return {r["channel"]: r for r in rows}


def later(clock: FakeClock, seconds: float = 1.0) -> datetime:
    """A moment after ``clock``'s now: events happen after the ownership began."""
    return clock.now() + timedelta(seconds=seconds)
