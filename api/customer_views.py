"""Records to response models for the customer routes, and the views several routes share
(the overview serves both ``/v1/me/overview`` and ``/v1/customers/{id}/overview``)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from api.customer_schemas import (
    ConsentRecordPublic,
    ConsentStatePublic,
    CustomerPublic,
    EntitlementPublic,
    MyVehiclePublic,
    OverviewPublic,
    OwnershipPeriodPublic,
    QuietHours,
    SubscriptionPublic,
)
from api.customers.consent import ConsentRecord, ConsentState, current_consents
from api.customers.garage import OwnedVehicle, SubscriptionRecord, owned_vehicles
from api.customers.ownership import OwnershipPeriod
from api.customers.store import CustomerRecord, CustomerStore
from api.schemas import SignalValuePublic, VehiclePublic
from api.vehicle_registry import VehicleRecord


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


def my_vehicle_public(owned: OwnedVehicle) -> MyVehiclePublic:
    return MyVehiclePublic(
        vehicle=vehicle_public(owned.vehicle),
        owned_since=owned.owned_since,
        latest_state={s.signal: SignalValuePublic(value=s.value, ts=s.ts) for s in owned.state},
        health=None,
        subscriptions=[subscription_public(s) for s in owned.subscriptions],
        entitlements=[
            EntitlementPublic.model_validate(e, from_attributes=True) for e in owned.entitlements
        ],
    )


async def overview(pool: asyncpg.Pool, customer_id: UUID, now: datetime) -> OverviewPublic:
    """Profile, consents and vehicles now; alerts, OTA, bookings, offers and notifications are
    empty lists of their final shape until their issues fill them."""
    customer = await CustomerStore(pool).require(customer_id)
    vehicles = [my_vehicle_public(v) for v in await owned_vehicles(pool, customer_id, now)]
    async with pool.acquire() as conn:
        consents = await current_consents(conn, customer_id)
    return OverviewPublic(
        customer=customer_public(customer),
        consents=[consent_state_public(c) for c in consents],
        vehicles=vehicles,
        entitlements=[e for v in vehicles for e in v.entitlements],
        alerts=[],
        ota=[],
        bookings=[],
        offers=[],
        notifications=[],
        generated_at=now,
    )
