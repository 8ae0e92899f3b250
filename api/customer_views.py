"""Records to response models for the customer routes, and the views several routes share
(the overview serves both ``/v1/me/overview`` and ``/v1/customers/{id}/overview``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from api.customer_schemas import (
    AlertSummary,
    BookingSummary,
    ConsentRecordPublic,
    ConsentStatePublic,
    CustomerPublic,
    EntitlementPublic,
    MyVehiclePublic,
    NotificationSummary,
    OfferSummary,
    OverviewPublic,
    OwnershipPeriodPublic,
    QuietHours,
    SubscriptionPublic,
    VehicleHealthPublic,
)
from api.customers.consent import ConsentRecord, ConsentState, current_consents
from api.customers.garage import OwnedVehicle, SubscriptionRecord, owned_vehicles
from api.customers.ownership import OwnershipPeriod
from api.customers.store import CustomerRecord, CustomerStore
from api.notifications.model import Channel
from api.notifications.store import NotificationRecord, recent_notifications
from api.schemas import SignalValuePublic, VehiclePublic
from api.service.bookings import bookings_for_customer
from api.service.records import BookingRecord
from api.vehicle_registry import VehicleRecord
from diagnostics.alert_queries import AlertFilter, list_alerts
from diagnostics.alert_store import AlertRecord
from diagnostics.findings import Severity

OVERVIEW_ALERTS = 100
OVERVIEW_NOTIFICATIONS = 20
OVERVIEW_BOOKINGS = 20
OVERVIEW_OFFERS = 20


def customer_public(record: CustomerRecord) -> CustomerPublic:
    quiet = (
        QuietHours(start=record.quiet_hours_start, end=record.quiet_hours_end)
        if record.quiet_hours_start is not None and record.quiet_hours_end is not None
        else None
    )
    return CustomerPublic(
        id=record.id,
        email=record.email,
        given_name=record.given_name,
        family_name=record.family_name,
        phone=record.phone,
        address_line=record.address_line,
        postal_code=record.postal_code,
        city=record.city,
        country=record.country,
        language=record.language,
        preferred_channels=list(record.preferred_channels),
        quiet_hours=quiet,
        timezone=record.timezone,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def consent_state_public(state: ConsentState) -> ConsentStatePublic:
    return ConsentStatePublic(
        purpose=state.purpose.value,
        granted=state.granted,
        source=state.source.value if state.source else None,
        changed_at=state.changed_at,
    )


def consent_record_public(record: ConsentRecord) -> ConsentRecordPublic:
    return ConsentRecordPublic(
        id=record.id,
        purpose=record.purpose.value,
        granted=record.granted,
        source=record.source.value,
        recorded_at=record.recorded_at,
    )


def period_public(period: OwnershipPeriod) -> OwnershipPeriodPublic:
    return OwnershipPeriodPublic(
        vin=period.vin,
        customer_id=period.customer_id,
        source=period.source,
        started_at=period.started_at,
        ended_at=period.ended_at,
    )


def vehicle_public(record: VehicleRecord) -> VehiclePublic:
    return VehiclePublic(
        vin=record.vin,
        brand=record.brand,
        model=record.model,
        model_year=record.model_year,
        powertrain=record.powertrain,
        created_at=record.created_at,
        revoked=record.revoked_at is not None,
        last_seen_at=record.last_seen_at,
    )


def subscription_public(record: SubscriptionRecord) -> SubscriptionPublic:
    return SubscriptionPublic.model_validate(record, from_attributes=True)


def my_vehicle_public(
    owned: OwnedVehicle, active_alerts: Sequence[AlertRecord] = ()
) -> MyVehiclePublic:
    return MyVehiclePublic(
        vehicle=vehicle_public(owned.vehicle),
        owned_since=owned.owned_since,
        latest_state={s.signal: SignalValuePublic(value=s.value, ts=s.ts) for s in owned.state},
        health=vehicle_health(active_alerts),
        subscriptions=[subscription_public(s) for s in owned.subscriptions],
        entitlements=[
            EntitlementPublic.model_validate(e, from_attributes=True) for e in owned.entitlements
        ],
    )


def vehicle_health(active_alerts: Sequence[AlertRecord]) -> VehicleHealthPublic:
    """From the vehicle's active alerts: critical if one is, attention if any is open."""
    severities = {a.severity for a in active_alerts}
    status: Literal["ok", "attention", "critical"] = (
        "critical" if Severity.CRITICAL in severities else "attention" if severities else "ok"
    )
    return VehicleHealthPublic(status=status, open_alerts=len(active_alerts))


def alert_summary(alert: AlertRecord) -> AlertSummary:
    return AlertSummary(
        id=alert.id,
        vin=alert.vin,
        type=alert.type,
        severity=alert.severity.value,
        status=alert.status.value,
        predicted_failure_at=alert.predicted_failure_at,
        confidence=alert.confidence,
        created_at=alert.opened_at,
    )


def booking_summary(booking: BookingRecord) -> BookingSummary:
    return BookingSummary(
        id=booking.id,
        vin=booking.vin,
        centre_id=booking.centre_id,
        status=booking.status.value,
        slot_start=booking.slot_start,
        slot_end=booking.slot_end,
    )


def notification_summary(record: NotificationRecord) -> NotificationSummary:
    app = record.delivery(Channel.APP)
    state = app.state.value if app is not None else "queued"
    return NotificationSummary(
        id=record.id,
        channel="app",
        title=record.title,
        state=state if state in ("queued", "sent", "delivered", "read") else "queued",
        created_at=record.created_at,
    )


async def overview(pool: asyncpg.Pool, customer_id: UUID, now: datetime) -> OverviewPublic:
    """Profile, consents, vehicles with health, active alerts, bookings, open offers, recent
    notifications."""
    customer = await CustomerStore(pool).require(customer_id)
    owned = await owned_vehicles(pool, customer_id, now)
    async with pool.acquire() as conn:
        consents = await current_consents(conn, customer_id)
        alerts, _ = await list_alerts(
            conn,
            windows=[(v.vehicle.vin, v.owned_since, None) for v in owned],
            where=AlertFilter(active_only=True),
            limit=OVERVIEW_ALERTS,
            offset=0,
        )
        bookings = await bookings_for_customer(conn, customer_id, limit=OVERVIEW_BOOKINGS)
        notifications = await recent_notifications(conn, customer_id, OVERVIEW_NOTIFICATIONS)
        offers = await conn.fetch(
            "SELECT id, title, vin, code, expires_at FROM offers WHERE customer_id = $1"
            " AND redeemed_at IS NULL AND expires_at > $2 ORDER BY triggered_at DESC LIMIT $3",
            customer_id,
            now,
            OVERVIEW_OFFERS,
        )
    vehicles = [my_vehicle_public(v, [a for a in alerts if a.vin == v.vehicle.vin]) for v in owned]
    return OverviewPublic(
        customer=customer_public(customer),
        consents=[consent_state_public(c) for c in consents],
        vehicles=vehicles,
        entitlements=[e for v in vehicles for e in v.entitlements],
        alerts=[alert_summary(a) for a in alerts],
        ota=[],
        bookings=[booking_summary(b) for b in bookings],
        offers=[
            OfferSummary(
                id=o["id"],
                title=o["title"],
                vin=o["vin"],
                code=o["code"],
                valid_until=o["expires_at"],
            )
            for o in offers
        ],
        notifications=[notification_summary(n) for n in notifications],
        generated_at=now,
    )
