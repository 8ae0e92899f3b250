"""GDPR: what FleetLink holds about a customer (export, art. 15 and 20) and erasure (art. 17).

Erasure deletes the profile, the current consent state, ownership periods and subscriptions,
and unlinks the vehicles (they stay registered: they belong to the OEM's fleet and may get a new
owner). Consent records are kept, anonymised (customer_id set to NULL): the controller must be
able to demonstrate that consent was given (art. 7(1)) and the purpose, decision, source and
time without a person are no longer personal data. Telemetry is keyed by VIN, not by person;
once the link is gone it no longer relates to the customer through FleetLink (ADR 0006 lists
what a stricter regime would purge as well).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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

#: Far more consent changes than a person makes in a lifetime; bounds the export's size.
MAX_EXPORTED_CONSENT_RECORDS = 100_000


@dataclass(frozen=True, slots=True)
class CustomerData:
    customer: CustomerRecord
    consents: list[ConsentState]
    consent_history: list[ConsentRecord]
    ownership: list[OwnershipPeriod]
    vehicles: list[OwnedVehicle]
    subscriptions: list[SubscriptionRecord]


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    customer_id: UUID
    erased_at: datetime
    vehicles_unlinked: list[str]
    consent_records_anonymised: int


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
    return CustomerData(customer, consents, history, periods, vehicles, subscriptions)


async def erase(pool: asyncpg.Pool, customer_id: UUID, now: datetime) -> ErasureReceipt:
    """Erase ``customer_id`` in one transaction; their tokens stop working at once because
    every request checks that the customer still exists."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_customer(conn, customer_id)
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
        await conn.execute("DELETE FROM customers WHERE id = $1", customer_id)
    return ErasureReceipt(
        customer_id=customer_id,
        erased_at=now,
        vehicles_unlinked=sorted(r["vin"] for r in unlinked if r["ended_at"] is None),
        consent_records_anonymised=int(anonymised),
    )
