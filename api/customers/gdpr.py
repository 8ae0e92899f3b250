"""GDPR: what FleetLink holds about a customer (export, art. 15 and 20) and erasure (art. 17).

The export holds the profile, consents with their history, ownership periods, vehicles,
subscriptions, the alerts of their vehicles raised while they owned them, their service
bookings and every notification sent to them; telemetry and events by link (too large to
inline).

Erasure, in one transaction, leaves no personal data of the customer in any table:

- deleted: the profile, the current consent state, ownership periods and subscriptions (the
  features they paid for are revoked), and, by ``ON DELETE CASCADE``, every notification and
  its deliveries;
- anonymised: consent records (customer_id NULL: the controller must be able to demonstrate
  that consent was given, art. 7(1), and purpose, decision, source and time without a person
  are no longer personal data); bookings stay as the centre's record of the car without the
  person (trigger ``service_booking_forget_customer``: customer, notes and the van's destination
  cleared, a visit not begun cancelled); work orders of their bookings keep the repair (recall
  and warranty history of the car) with the customer's name, e-mail, phone and address struck
  from the workshop's free text;
- deleted from the outbox: events carrying the customer's id, in the column or in the payload
  (a booking's public JSON holds their notes). Events not yet consumed for an erased customer
  are moot; consumed ones are history nobody needs.

Vehicles stay registered (they belong to the OEM's fleet and may get a new owner) and are
unlinked. Telemetry is keyed by VIN, not by person; once the link is gone it no longer relates to
the customer through FleetLink (ADR 0006 lists what a stricter regime would purge as well).
Service clients (``api_clients``) are organisations, not customers: erasure does not touch them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.customers.consent import (
    ConsentRecord,
    ConsentState,
    consent_history,
    current_consents,
    lock_customer,
)
from api.customers.garage import OwnedVehicle, SubscriptionRecord, customer_subscriptions
from api.customers.garage import owned_vehicles as load_owned_vehicles
from api.customers.ownership import OwnershipPeriod, customer_periods
from api.customers.store import CustomerRecord, CustomerStore
from api.notifications.store import NotificationRecord, list_notifications
from api.offers.store import my_offers
from api.service.bookings import bookings_for_customer
from api.service.records import BookingRecord
from diagnostics.alert_queries import AlertFilter, list_alerts
from diagnostics.alert_store import AlertRecord

#: Far more consent changes than a person makes in a lifetime; bounds the export's size.
MAX_EXPORTED_CONSENT_RECORDS = 100_000
#: Likewise for alerts, bookings and notifications: decades of a busy driver's service life.
MAX_EXPORTED_ALERTS = 100_000
MAX_EXPORTED_BOOKINGS = 100_000
MAX_EXPORTED_NOTIFICATIONS = 100_000
MAX_EXPORTED_OFFERS = 100_000
#: What replaces the customer's identifiers in a workshop's free text.
REDACTED = "[erased]"
# The work-order columns' CHECKs (api migration 005): a redaction may lengthen the text.
MAX_COMPLAINT_LENGTH = 4000
MAX_LINE_DESCRIPTION_LENGTH = 300
#: Profile fields that identify the person in free text (struck from work orders at erasure).
IDENTIFYING_FIELDS = (
    "email",
    "given_name || ' ' || family_name",
    "given_name",
    "family_name",
    "phone",
    "address_line",
    "postal_code",
    "city",
)


@dataclass(frozen=True, slots=True)
class CustomerData:
    customer: CustomerRecord
    consents: list[ConsentState]
    consent_history: list[ConsentRecord]
    ownership: list[OwnershipPeriod]
    vehicles: list[OwnedVehicle]
    subscriptions: list[SubscriptionRecord]
    alerts: list[AlertRecord]
    bookings: list[BookingRecord]
    notifications: list[NotificationRecord]
    offers: list[dict[str, Any]]
    offer_decisions: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    customer_id: UUID
    erased_at: datetime
    vehicles_unlinked: list[str]
    consent_records_anonymised: int
    bookings_anonymised: int


async def collect(pool: asyncpg.Pool, customer_id: UUID, now: datetime) -> CustomerData:
    customer = await CustomerStore(pool).require(customer_id)
    vehicles = await load_owned_vehicles(pool, customer_id, now)
    async with pool.acquire() as conn:
        consents = await current_consents(conn, customer_id)
        history, _ = await consent_history(
            conn, customer_id, limit=MAX_EXPORTED_CONSENT_RECORDS, offset=0
        )
        periods = await customer_periods(conn, customer_id)
        subscriptions = await customer_subscriptions(conn, customer_id)
        # The alerts of each car raised while it was theirs, past cars included (the periods of
        # one customer never overlap on a car, so no alert is listed twice).
        alerts, _ = await list_alerts(
            conn,
            windows=[(p.vin, p.started_at, p.ended_at) for p in periods],
            where=AlertFilter(),
            limit=MAX_EXPORTED_ALERTS,
            offset=0,
        )
        bookings = await bookings_for_customer(conn, customer_id, limit=MAX_EXPORTED_BOOKINGS)
        notifications, _ = await list_notifications(
            conn, customer_id, unread=False, limit=MAX_EXPORTED_NOTIFICATIONS, offset=0
        )
        offers, _ = await my_offers(conn, customer_id, limit=MAX_EXPORTED_OFFERS, offset=0)
        decisions = [
            dict(r)
            for r in await conn.fetch(
                "SELECT rule_id, rule_version, campaign, vin, subject_key, outcome, reason,"
                " offer_id, triggered_at, decided_at FROM offer_decisions WHERE customer_id = $1"
                " ORDER BY decided_at DESC, id DESC LIMIT $2",
                customer_id,
                MAX_EXPORTED_OFFERS,
            )
        ]
    return CustomerData(
        customer,
        consents,
        history,
        periods,
        vehicles,
        subscriptions,
        alerts,
        bookings,
        notifications,
        offers,
        decisions,
    )


async def _blank_offer_places(conn: asyncpg.Connection, customer_id: UUID) -> None:
    """Offers and decisions stay for the KPIs, but not where the car was (VIN, place and time
    together trace a person's movements)."""
    await conn.execute(
        "UPDATE offers SET place_id = NULL, redeemed_place_id = NULL, details = '{}',"
        " subject_key = 'erased' WHERE customer_id = $1",
        customer_id,
    )
    await conn.execute(
        "UPDATE offer_decisions SET subject_key = 'erased' WHERE customer_id = $1", customer_id
    )


async def erase(pool: asyncpg.Pool, customer_id: UUID, now: datetime) -> ErasureReceipt:
    """Erase ``customer_id`` in one transaction; their tokens stop working at once because
    every request checks that the customer still exists."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_customer(conn, customer_id)
        profile = await conn.fetchrow(
            f"SELECT {', '.join(IDENTIFYING_FIELDS)} FROM customers WHERE id = $1", customer_id
        )
        # Open periods first: the ownership trigger tells ingest these cars changed hands.
        unlinked = await conn.fetch(
            "DELETE FROM vehicle_ownership WHERE customer_id = $1 RETURNING vin, ended_at",
            customer_id,
        )
        # Their subscriptions end, and so do the features they paid for: an entitlement whose
        # subscription is gone would otherwise stay on the car, free, for the next owner.
        await conn.execute(
            "UPDATE entitlements SET revoked_at = $2 WHERE revoked_at IS NULL AND subscription_id"
            " IN (SELECT id FROM subscriptions WHERE customer_id = $1)",
            customer_id,
            now,
        )
        await conn.execute("DELETE FROM subscriptions WHERE customer_id = $1", customer_id)
        anonymised = await conn.fetchval(
            "WITH a AS (UPDATE consent_records SET customer_id = NULL WHERE customer_id = $1"
            " RETURNING 1) SELECT count(*) FROM a",
            customer_id,
        )
        await conn.execute("DELETE FROM customer_consents WHERE customer_id = $1", customer_id)
        # Before the bookings lose their customer: which work orders were for this person.
        await _redact_work_orders(conn, customer_id, identifiers(profile.values()), now)
        await _blank_offer_places(conn, customer_id)
        bookings = await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE customer_id = $1", customer_id
        )
        # Cascades to notifications and deliveries; bookings forget the customer (trigger).
        await conn.execute("DELETE FROM customers WHERE id = $1", customer_id)
        # After the delete, which waited for any transaction holding one of their bookings
        # (a closing work order): the events such a transaction appended are committed now and
        # this statement's snapshot sees them.
        await conn.execute(
            "DELETE FROM outbox WHERE customer_id = $1"
            " OR payload @> jsonb_build_object('customer_id', $1::text)",
            customer_id,
        )
    return ErasureReceipt(
        customer_id=customer_id,
        erased_at=now,
        vehicles_unlinked=sorted(r["vin"] for r in unlinked if r["ended_at"] is None),
        consent_records_anonymised=int(anonymised),
        bookings_anonymised=int(bookings),
    )


def identifiers(values: Iterable[str | None]) -> list[str]:
    """The strings that identify a person in free text, from their profile values
    (:data:`IDENTIFYING_FIELDS`); with the full name when both names are known."""
    found = {v.strip() for v in values if v is not None and len(v.strip()) >= 2}
    # Longest first, so "Ada Lovelace" goes before "Ada"; one-letter initials would strike
    # too much.
    return sorted(found, key=lambda v: (-len(v), v))


def redact(text: str, strings: Iterable[str]) -> str:
    """``text`` with each of ``strings`` replaced where it stands as a whole word (ignoring
    case): the family name "Field" goes, the word "Fieldwork" stays."""
    for value in strings:
        pattern = rf"(?<!\w){re.escape(value)}(?!\w)"
        text = re.sub(pattern, REDACTED, text, flags=re.IGNORECASE)
    return text


async def _redact_work_orders(
    conn: asyncpg.Connection, customer_id: UUID, strings: list[str], now: datetime
) -> None:
    """Strike the customer's identifiers from the complaint and line descriptions of the work
    orders of their bookings: the workshop wrote them, often in the customer's words."""
    if not strings:
        return
    orders = await conn.fetch(
        "SELECT w.id, w.complaint FROM work_orders w JOIN bookings b ON b.id = w.booking_id"
        " WHERE b.customer_id = $1 ORDER BY w.id FOR UPDATE OF w",
        customer_id,
    )
    for order in orders:
        complaint = redact(order["complaint"], strings)[:MAX_COMPLAINT_LENGTH]
        if complaint != order["complaint"]:
            await conn.execute(
                "UPDATE work_orders SET complaint = $2, updated_at = $3, revision = revision + 1"
                " WHERE id = $1",
                order["id"],
                complaint,
                now,
            )
    lines = await conn.fetch(
        "SELECT id, description FROM work_order_lines WHERE work_order_id = ANY($1::bigint[])",
        [o["id"] for o in orders],
    )
    for line in lines:
        description = redact(line["description"], strings)[:MAX_LINE_DESCRIPTION_LENGTH]
        if description != line["description"]:
            await conn.execute(
                "UPDATE work_order_lines SET description = $2 WHERE id = $1",
                line["id"],
                description,
            )
